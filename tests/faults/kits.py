"""What the fault suite needs to know of each broker with a daily login: its simulator and its account.

A kit seeds one account (in the simulator and as a credentials secret), names its login and validation
endpoints, and knows how to spoil the credentials (wrong password, dead API key).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyotp
from infra.local.simulators.angelone import AngelOneSimulator
from infra.local.simulators.base import SimulatorServer


@dataclass(frozen=True)
class Kit:
    """One broker, as the fault suite drives it."""

    broker: str
    simulator: Callable[..., SimulatorServer]
    login_endpoint: str
    validate_endpoint: str
    has_totp: bool
    seed: Callable[[Any], dict[str, Any]]  # registers an account in the simulator, returns credentials
    user: Callable[[dict[str, Any]], str]  # the simulator's account key for login counts
    wrong_password: Callable[[dict[str, Any]], dict[str, Any]]
    dead_api_key: Callable[[dict[str, Any]], dict[str, Any]]
    # Answers that cannot tell a wrong secret from a stale code are retried once, in the next window.
    ambiguous_rejection: bool = False


def _angel_seed(sim: AngelOneSimulator) -> dict[str, Any]:
    secret = pyotp.random_base32()
    sim.add_account(client_code="F100001", pin="5791", totp_secret=secret, api_key="fault-angel-key")
    return {
        "broker": "angelone",
        "api_key": "fault-angel-key",
        "client_code": "F100001",
        "pin": "5791",
        "totp_secret": secret,
        "base_url": sim.url,
    }


ANGELONE = Kit(
    broker="angelone",
    simulator=AngelOneSimulator,
    login_endpoint="login",
    validate_endpoint="profile",
    has_totp=True,
    seed=_angel_seed,
    user=lambda creds: creds["client_code"],
    wrong_password=lambda creds: {**creds, "pin": "1133"},
    dead_api_key=lambda creds: {**creds, "api_key": "revoked-angel-key"},
)

KITS: list[Kit] = [ANGELONE]
