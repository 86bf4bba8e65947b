"""Functional fixtures: one moto server for the session (reset per test) and simulators per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from infra.local.moto_server import MotoServer
from infra.local.simulators.angelone import AngelOneSimulator
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.kite import BlinkXSimulator, ZerodhaSimulator
from infra.local.simulators.pitrade import PiTradeSimulator
from infra.local.simulators.telegram import TelegramSimulator
from infra.local.simulators.tradejini import TradejiniSimulator
from infra.local.template import LocalResources, provision

from broker_tokens.clock import WarpClock
from tests.support.harness import PREFIX, Harness
from tests.support.simulators import TELEGRAM_CHAT_ID, simulator_fixture


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """moto's server on loopback; the process's boto3 configuration points at it for the session."""
    server = MotoServer().start()
    patch = pytest.MonkeyPatch()
    for key, value in server.environment().items():
        patch.setenv(key, value)
    yield server
    patch.undo()
    server.stop()


@pytest.fixture
def cloud(moto: MotoServer) -> LocalResources:
    """An empty moto with the template's resources freshly created."""
    moto.reset()
    return provision(moto.session(), parameters={"SecretPrefix": PREFIX})


@pytest.fixture
def harness(moto: MotoServer, cloud: LocalResources, clock: WarpClock) -> Harness:
    """Seeding, a Refresher wired like the Lambda function, and readers of what it wrote."""
    return Harness(moto, cloud, clock)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A client session for driving a simulator the way a broker's client does (keep-alive included)."""
    with requests.Session() as session:
        yield session


angel = simulator_fixture("angel", AngelOneSimulator, "The Angel One simulator on the shared clock.")
tradejini = simulator_fixture("tradejini", TradejiniSimulator, "The Tradejini CubePlus simulator on the shared clock.")
autoshares = simulator_fixture(
    "autoshares", AutoSharesSimulator, "The AutoShares (ETNA Trader) simulator on the shared clock."
)
zerodha = simulator_fixture(
    "zerodha", ZerodhaSimulator, "The Zerodha Kite Connect simulator (API root and login origin) on the shared clock."
)
blinkx = simulator_fixture(
    "blinkx", BlinkXSimulator, "The BlinkX simulator (API root /SmartApi and login origin) on the shared clock."
)
pitrade = simulator_fixture("pitrade", PiTradeSimulator, "The PiTrade Partner API simulator on the shared clock.")


@pytest.fixture
def telegram() -> Iterator[TelegramSimulator]:
    """The Telegram Bot API simulator, with one chat (TELEGRAM_CHAT_ID) that wrote to its bots."""
    with TelegramSimulator() as sim:
        sim.add_chat(TELEGRAM_CHAT_ID)
        yield sim
