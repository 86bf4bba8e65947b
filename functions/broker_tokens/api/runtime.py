"""Composition root of the token API: the service built from the environment, one per container.

Environment (template.yaml sets these): ``SECRET_PREFIX``, ``STATE_TABLE_NAME`` (account state and
callers), ``AUTH_MODE`` (``api_key`` by default, or ``iam``), ``REFRESHER_FUNCTION_NAME`` (when set,
logins run in the refresher function; otherwise in this process), plus the core's settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import boto3

from broker_tokens.api.accounts import AccountDescriber, AccountDirectory
from broker_tokens.api.auth import AuthMode, Gatekeeper
from broker_tokens.api.resolver import TokenApi
from broker_tokens.api.service import TokenService
from broker_tokens.backend import RefreshBackend, build_backend, in_process
from broker_tokens.callers import CallerStore
from broker_tokens.client import TokenCache
from broker_tokens.clock import SYSTEM_CLOCK, Clock
from broker_tokens.config import Settings
from broker_tokens.secrets import SecretStore
from broker_tokens.slot import ContainerSlot
from broker_tokens.state import DynamoStateStore


def build_service(
    env: Mapping[str, str] | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
    backend: RefreshBackend | None = None,
    secrets_client: Any = None,
    dynamodb_client: Any = None,
) -> TokenService:
    """A TokenService wired as the environment says (tests pass their own clock, clients and backend).

    Example:
        >>> service = build_service({"STATE_TABLE_NAME": "t", "AUTH_MODE": "iam"})  # doctest: +SKIP
        >>> service.gate.mode.value                                                # doctest: +SKIP
        'iam'
    """
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    if not settings.state_table:
        raise ValueError("STATE_TABLE_NAME must name the state table: the API's callers live there")
    secrets_client = secrets_client or boto3.client("secretsmanager")
    dynamodb_client = dynamodb_client or boto3.client("dynamodb")
    tokens = TokenCache(secrets_client, prefix=settings.secret_prefix, clock=clock)
    callers = CallerStore(settings.state_table, client=dynamodb_client, clock=clock)
    states = DynamoStateStore(settings.state_table, clock=clock, client=dynamodb_client)
    return TokenService(
        gate=Gatekeeper(callers, AuthMode.from_env(env)),
        directory=AccountDirectory(secrets_client, prefix=settings.secret_prefix, clock=clock),
        describer=AccountDescriber(states=states, tokens=tokens, settings=settings, clock=clock),
        tokens=tokens,
        backend=backend or build_backend(env, lambda: in_process(settings, clock)),
        secrets=SecretStore(secrets_client, prefix=settings.secret_prefix, kms_key_arn=settings.kms_key_arn),
        settings=settings,
        clock=clock,
    )


_slot: ContainerSlot[TokenApi] = ContainerSlot(lambda: TokenApi(lru_cache(maxsize=1)(build_service)))


def container_api() -> TokenApi:
    """The container's TokenApi: the installed one, or one built from the environment on first use."""
    return _slot.get()


def install(api: TokenApi | None) -> None:
    """Make ``api`` the container's TokenApi (the local stack and tests); None forgets it.

    Example:
        >>> install(TokenApi(build_service(env, clock=clock, backend=LocalBackend(refresher))))  # doctest: +SKIP
    """
    _slot.install(api)
