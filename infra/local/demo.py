"""Demo accounts for the embedded stack: a credentials secret per broker, known to its simulator.

Each TOTP secret is generated fresh, so nothing here is a real credential.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyotp

from infra.local.simulators.angelone import AngelOneSimulator
from infra.local.simulators.base import SimulatorServer


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


DEMOS: dict[str, Callable[[SimulatorServer], DemoAccount]] = {"angelone": angelone_demo}


def create_credentials_secret(client: Any, prefix: str, demo: DemoAccount) -> None:
    """Write a credentials secret the way a user would (tagged with its broker, which IAM conditions read)."""
    client.create_secret(
        Name=f"{prefix}/{demo.account}/credentials",
        SecretString=json.dumps(demo.credentials),
        Tags=[{"Key": "broker", "Value": demo.broker}],
    )


def seed_demo_accounts(simulators: dict[str, SimulatorServer], client: Any, prefix: str) -> list[DemoAccount]:
    """One demo account per running simulator, written to Secrets Manager."""
    seeded = []
    for broker, make in DEMOS.items():
        if broker in simulators:
            demo = make(simulators[broker])
            create_credentials_secret(client, prefix, demo)
            seeded.append(demo)
    return seeded
