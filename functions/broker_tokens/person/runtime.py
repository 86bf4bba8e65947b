"""Composition root of the person pages: the service built from the environment, one per container.

Environment (template.yaml sets these): ``STATE_TABLE_NAME`` (the pending steps, read only),
``REFRESHER_FUNCTION_NAME`` (completions run in the refresher function; unset, in this process),
``MARKET_TIMEZONE`` (how times are shown).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from broker_tokens.backend import RefreshBackend, build_backend, in_process
from broker_tokens.clock import SYSTEM_CLOCK, Clock
from broker_tokens.config import Settings
from broker_tokens.person.service import PersonService
from broker_tokens.slot import ContainerSlot
from broker_tokens.state import DynamoStateStore


def build_person_service(
    env: Mapping[str, str] | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
    backend: RefreshBackend | None = None,
    dynamodb_client: Any = None,
) -> PersonService:
    """A PersonService wired as the environment says (tests and the local stack pass their own parts).

    Example:
        >>> build_person_service({"STATE_TABLE_NAME": "t", "REFRESHER_FUNCTION_NAME": "f"})  # doctest: +SKIP
    """
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    if not settings.state_table:
        raise ValueError("STATE_TABLE_NAME must name the state table: the pending logins live there")
    return PersonService(
        states=DynamoStateStore(settings.state_table, clock=clock, client=dynamodb_client),
        backend=backend or build_backend(env, lambda: in_process(settings, clock)),
        settings=settings,
        clock=clock,
    )


_slot: ContainerSlot[PersonService] = ContainerSlot(build_person_service)


def container_person() -> PersonService:
    """The container's PersonService: the installed one, or one built from the environment on first use."""
    return _slot.get()


def install_person(service: PersonService | None) -> None:
    """Make ``service`` the container's PersonService (the local stack and tests); None forgets it.

    Example:
        >>> install_person(build_person_service(env, backend=LocalBackend(refresher)))  # doctest: +SKIP
    """
    _slot.install(service)
