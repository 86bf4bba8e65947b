"""Demo accounts for the embedded stack: a credentials secret per broker, known to its simulator.

Each TOTP secret is generated fresh, so nothing here is a real credential.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyotp

from broker_tokens.events import RefreshRequest
from broker_tokens.models import Source
from infra.local.simulators.angelone import AngelOneSimulator
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.base import SimulatorServer
from infra.local.simulators.kite import BlinkXSimulator, KiteSimulator, ZerodhaSimulator
from infra.local.simulators.pitrade import PiTradeSimulator
from infra.local.simulators.tradejini import TradejiniSimulator
from refresher.app import closed_today


@dataclass(frozen=True)
class DemoAccount:
    """One seeded account: its id and the credentials secret's JSON object."""

    account: str
    credentials: dict[str, Any]

    @property
    def broker(self) -> str:
        """The broker named in the credentials."""
        return str(self.credentials["broker"])


def angelone_demo(sim: SimulatorServer) -> DemoAccount:
    """An Angel One account with an MPIN and a generated TOTP secret."""
    if not isinstance(sim, AngelOneSimulator):
        raise TypeError("angelone_demo needs the Angel One simulator")
    totp_secret = pyotp.random_base32()
    sim.add_account(
        client_code="D1234567", pin="4321", totp_secret=totp_secret, api_key="demo-angel-key", name="Demo Trader"
    )
    return DemoAccount(
        "angel-demo",
        {
            "broker": "angelone",
            "api_key": "demo-angel-key",
            "client_code": "D1234567",
            "pin": "4321",
            "totp_secret": totp_secret,
            "base_url": sim.url,
        },
    )


def tradejini_demo(sim: SimulatorServer) -> DemoAccount:
    """A Tradejini CubePlus account with a PIN and a generated TOTP secret (loopback is its static IP)."""
    if not isinstance(sim, TradejiniSimulator):
        raise TypeError("tradejini_demo needs the Tradejini simulator")
    totp_secret = pyotp.random_base32()
    sim.add_account(
        user_id="TJDEMO1", api_key="demo-tradejini-key", pin="8642", totp_secret=totp_secret, user_name="Demo Trader"
    )
    return DemoAccount(
        "tradejini-demo",
        {
            "broker": "tradejini",
            "api_key": "demo-tradejini-key",
            "password": "8642",
            "totp_secret": totp_secret,
            "base_url": sim.url,
        },
    )


def autoshares_demos(sim: SimulatorServer) -> list[DemoAccount]:
    """Two ETNA Trader users: one without two-factor login, one whose login waits for an e-mailed code."""
    if not isinstance(sim, AutoSharesSimulator):
        raise TypeError("autoshares_demos needs the AutoShares simulator")
    app_key = "demo-etna-app-key"
    sim.add_app_key(app_key)
    demos = []
    for account, username, two_factor in (("etna-demo", "demo.trader", False), ("etna-2fa-demo", "demo.2fa", True)):
        password = secrets.token_urlsafe(12)
        sim.add_account(username, password, two_factor=two_factor, first_name="Demo", last_name="Trader")
        credentials = {
            "broker": "autoshares",
            "app_key": app_key,
            "username": username,
            "password": password,
            "base_url": sim.url,
        }
        demos.append(DemoAccount(account, credentials))
    return demos


# The person pages' usual address; point_callbacks_at() names the running front once it is up.
# Zerodha's demo never follows its redirect; BlinkX's person does.
PERSON_LOCAL_URL = "http://127.0.0.1:8766"


def kite_callback_url(account: str) -> str:
    """The redirect URL a Kite-family app registers: the person pages' ``/callback/{account}``."""
    return f"{PERSON_LOCAL_URL}/callback/{account}"


def zerodha_demo(sim: SimulatorServer) -> DemoAccount:
    """A Zerodha account logged in unattended (web login with a generated TOTP secret)."""
    if not isinstance(sim, ZerodhaSimulator):
        raise TypeError("zerodha_demo needs the Zerodha simulator")
    account, api_key, api_secret = "zerodha-demo", "demo-kite-key", secrets.token_urlsafe(24)
    user_id, password, totp_secret = "ZD1234", secrets.token_urlsafe(12), pyotp.random_base32()
    sim.add_app(api_key, api_secret, kite_callback_url(account))
    sim.add_user(user_id, password, totp_secret, user_name="Demo Trader")
    credentials = {
        "broker": "zerodha",
        "api_key": api_key,
        "api_secret": api_secret,
        "user_id": user_id,
        "password": password,
        "totp_secret": totp_secret,
        "base_url": sim.url,
        "login_url": sim.login_url,
    }
    return DemoAccount(account, credentials)


def blinkx_demo(sim: SimulatorServer) -> DemoAccount:
    """A BlinkX account whose login waits for a person (user BX1234 on the simulator's login page)."""
    if not isinstance(sim, BlinkXSimulator):
        raise TypeError("blinkx_demo needs the BlinkX simulator")
    account, api_key, api_secret = "blinkx-demo", "demo-blinkx-key", secrets.token_urlsafe(24)
    password, totp_secret = secrets.token_urlsafe(12), pyotp.random_base32()
    sim.add_app(api_key, api_secret, kite_callback_url(account))
    sim.add_user("BX1234", password, totp_secret, user_name="Demo Trader")
    # password and totp_secret are unused by the adapter: they are there for the person who logs in.
    credentials = {
        "broker": "blinkx",
        "api_key": api_key,
        "api_secret": api_secret,
        "user_id": "BX1234",
        "password": password,
        "totp_secret": totp_secret,
        "base_url": sim.url,
        "login_url": sim.login_url,
    }
    return DemoAccount(account, credentials)


def pitrade_demo(sim: SimulatorServer) -> DemoAccount:
    """A PiTrade partner client with a generated signing key (checked, nothing stored)."""
    if not isinstance(sim, PiTradeSimulator):
        raise TypeError("pitrade_demo needs the PiTrade simulator")
    client_id, secret_key = "demo-pitrade-client", secrets.token_urlsafe(32)
    sim.add_client(client_id, secret_key)
    credentials = {"broker": "pitrade", "client_id": client_id, "secret_key": secret_key, "base_url": sim.url}
    return DemoAccount("pitrade-demo", credentials)


# A simulator may back several demo accounts (AutoShares shows a plain and a two-factor login).
DemoFactory = Callable[[SimulatorServer], DemoAccount | list[DemoAccount]]

DEMOS: dict[str, DemoFactory] = {
    "angelone": angelone_demo,
    "tradejini": tradejini_demo,
    "autoshares": autoshares_demos,
    "zerodha": zerodha_demo,
    "blinkx": blinkx_demo,
    "pitrade": pitrade_demo,
}


def create_credentials_secret(client: Any, prefix: str, demo: DemoAccount) -> None:
    """Write a credentials secret the way a user would (tagged with its broker, which IAM conditions read)."""
    client.create_secret(
        Name=f"{prefix}/{demo.account}/credentials",
        SecretString=json.dumps(demo.credentials),
        Tags=[{"Key": "broker", "Value": demo.broker}],
    )


def point_callbacks_at(person_url: str, simulators: dict[str, SimulatorServer], demos: list[DemoAccount]) -> None:
    """Register each Kite-family demo app's redirect URL as the running person pages' /callback/{account}."""
    for demo in demos:
        sim = simulators.get(demo.broker)
        if isinstance(sim, KiteSimulator):
            sim.set_redirect_url(demo.credentials["api_key"], f"{person_url}/callback/{demo.account}")


def demo_run_event() -> dict[str, Any]:
    """The event of the demo's refresher run: the schedule's ``{}``, except on a day the exchange is
    closed, when the schedule's run would do nothing: then the demo runs as the CLI would.

    Example:
        >>> demo_run_event() in ({}, {"source": "cli"})
        True
    """
    return {} if closed_today(RefreshRequest()) is None else {"source": Source.CLI.value}


def seed_demo_accounts(simulators: dict[str, SimulatorServer], client: Any, prefix: str) -> list[DemoAccount]:
    """The demo accounts of every running simulator, written to Secrets Manager."""
    seeded = []
    for broker, make in DEMOS.items():
        if broker in simulators:
            made = make(simulators[broker])
            for demo in made if isinstance(made, list) else [made]:
                create_credentials_secret(client, prefix, demo)
                seeded.append(demo)
    return seeded
