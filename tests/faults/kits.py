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
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.base import SimulatorServer
from infra.local.simulators.kite import ZerodhaSimulator
from infra.local.simulators.tradejini import TradejiniSimulator

from tests.support.accounts import angel_credentials, etna_credentials, kite_credentials, tradejini_credentials


@dataclass(frozen=True)
class Kit:
    """One broker, as the fault suite drives it."""

    broker: str
    simulator: Callable[..., SimulatorServer]
    login_endpoint: str
    validate_endpoint: str
    has_totp: bool
    seed: Callable[[Any], dict[str, Any]]  # registers the one account of the simulator, returns credentials
    wrong_password: Callable[[dict[str, Any]], dict[str, Any]]
    dead_api_key: Callable[[dict[str, Any]], dict[str, Any]]
    # Answers that cannot tell a wrong secret from a stale code are retried once, in the next window.
    ambiguous_rejection: bool = False
    # Kite tokens die at 06:00 IST: before then no login can be fresh, so such kits run in the morning.
    daily_reset: bool = False
    # False where an earlier call of the login (whose Date header shows the skew) precedes the TOTP.
    totp_in_first_request: bool = True


ANGELONE = Kit(
    broker="angelone",
    simulator=AngelOneSimulator,
    login_endpoint="login",
    validate_endpoint="profile",
    has_totp=True,
    seed=lambda sim: angel_credentials(sim, "F100001", pin="5791", api_key="fault-angel-key"),
    wrong_password=lambda creds: {**creds, "pin": "1133"},
    dead_api_key=lambda creds: {**creds, "api_key": "revoked-angel-key"},
)

TRADEJINI = Kit(
    broker="tradejini",
    simulator=TradejiniSimulator,
    login_endpoint="login",
    validate_endpoint="details",
    has_totp=True,
    seed=lambda sim: tradejini_credentials(sim, "FTJ001", api_key="fault-tj-key", pin="4680", user_name="Fault"),
    wrong_password=lambda creds: {**creds, "password": "1122"},
    dead_api_key=lambda creds: {**creds, "api_key": "revoked-tj-key"},
    ambiguous_rejection=True,  # a bare 401 for key, PIN, code and IP alike
)

AUTOSHARES = Kit(
    broker="autoshares",
    simulator=AutoSharesSimulator,
    login_endpoint="token",
    validate_endpoint="user_info",
    has_totp=False,
    seed=lambda sim: etna_credentials(sim, "fault.user", "Fault-Passw0rd!", app_key="fault-etna-app"),
    wrong_password=lambda creds: {**creds, "password": "Wrong-Passw0rd!"},
    dead_api_key=lambda creds: {**creds, "app_key": "revoked-etna-app"},
)

ZERODHA = Kit(
    broker="zerodha",
    simulator=ZerodhaSimulator,
    login_endpoint="web_login",
    validate_endpoint="profile",
    has_totp=True,
    seed=lambda sim: kite_credentials(
        sim,
        "FZ1234",
        api_key="fault-kite-key",
        api_secret="fault-kite-api-secret",
        redirect_url="https://example.invalid/callback",
        password="fault-kite-password",
        totp_secret=pyotp.random_base32(),
    ),
    wrong_password=lambda creds: {**creds, "password": "not-the-kite-password"},
    dead_api_key=lambda creds: {**creds, "api_key": "revoked-kite-key"},
    daily_reset=True,
    totp_in_first_request=False,
)

KITS: list[Kit] = [ANGELONE, TRADEJINI, AUTOSHARES, ZERODHA]
