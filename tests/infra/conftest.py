"""Fixtures: template.yaml, its offline SAM transform, and the template as deployed with parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from infra.local.template import apply_conditions, load_template, parameter_values

from tests.infra.cloudformation import STACK, Deployed, sam_transform


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    return sam_transform(template)


@pytest.fixture(scope="session")
def deploy(template: dict[str, Any], transformed: dict[str, Any]) -> Callable[..., Deployed]:
    """deploy(**parameters) -> the template as deployed with those parameter overrides (``stack``: its name)."""

    def make(stack: str = STACK, **overrides: str) -> Deployed:
        values = parameter_values(template, overrides)
        return Deployed(apply_conditions(transformed, values), values, stack)

    return make


@pytest.fixture(scope="session")
def default(deploy: Callable[..., Deployed]) -> Deployed:
    """The lean profile (the defaults): the AWS-managed Secrets Manager key, no dashboard."""
    return deploy()


FULL_PROFILE = {"SecretsKeyMode": "customer-managed", "DashboardMode": "basic"}


@pytest.fixture(scope="session")
def full(deploy: Callable[..., Deployed]) -> Deployed:
    """The full profile: the stack's own KMS key for secrets, table and topic, and the dashboard."""
    return deploy(**FULL_PROFILE)
