"""The embedded stack: moto's server, the broker simulators, and the resources of template.yaml.

Everything listens on 127.0.0.1. The stack owns its process's AWS configuration: ``start()`` points
the standard boto3 environment variables at moto, so the same core code that runs in Lambda runs here
unchanged.
"""

from __future__ import annotations

import json
import os
import time
from types import TracebackType
from typing import Any, Self

from broker_tokens.clock import SYSTEM_CLOCK
from broker_tokens.config import telegram_secret_name
from infra.local.alert_tap import AlertTap
from infra.local.front import LocalFront, local_token_api
from infra.local.moto_server import MotoServer
from infra.local.simulators.angelone import AngelOneSimulator
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.base import SimulatorServer
from infra.local.simulators.kite import BlinkXSimulator, ZerodhaSimulator
from infra.local.simulators.pitrade import PiTradeSimulator
from infra.local.simulators.telegram import SentMessage, TelegramSimulator
from infra.local.simulators.tradejini import TradejiniSimulator
from infra.local.template import LocalResources, provision

# One simulator per broker; a new broker adds its line here (and a demo account in demo.py).
SIMULATORS: dict[str, type[SimulatorServer]] = {
    "angelone": AngelOneSimulator,
    "tradejini": TradejiniSimulator,
    "autoshares": AutoSharesSimulator,
    "zerodha": ZerodhaSimulator,
    "blinkx": BlinkXSimulator,
    "pitrade": PiTradeSimulator,
}

# Short enough that a hung broker call costs a test seconds, not minutes.
LOCAL_HTTP_TIMEOUT_SECONDS = "5"
# The demo's Telegram chat (a person who pressed Start in the demo bot's chat).
DEMO_CHAT_ID = 100200300


class LocalStack:
    """moto + one simulator per broker + the template's resources, on loopback.

    Example:
        >>> with LocalStack() as stack:                                  # doctest: +SKIP
        ...     stack.simulators["angelone"].url.startswith("http://127.0.0.1:")
        True
    """

    def __init__(
        self,
        *,
        clock: Any = time,
        prefix: str = "broker-tokens",
        moto: MotoServer | None = None,
        front_port: int = 0,
        auth_mode: str = "api_key",
    ):
        self.clock = clock
        # The token API's local front (Function URL events to token_api.app); `front.url` once started.
        self.front = LocalFront(port=front_port, auth_mode=auth_mode)
        self.prefix = prefix
        self.moto = moto or MotoServer()
        self._owns_moto = moto is None
        self.simulators: dict[str, SimulatorServer] = {}
        # The Telegram Bot API and the alert topic's stand-in Lambda subscription (see alert_tap).
        self.telegram = TelegramSimulator()
        self.alert_tap: AlertTap | None = None
        self.resources: LocalResources | None = None
        self.environment: dict[str, str] = {}

    def start(self) -> Self:
        """Start moto and the simulators, create the template's resources, configure this process."""
        self.moto.start()
        os.environ.update(self.moto.environment())
        self.resources = provision(self.moto.session(), parameters={"SecretPrefix": self.prefix})
        self.environment = {
            **self.resources.environment("RefresherFunction"),
            **self.moto.environment(),
            "BROKER_HTTP_TIMEOUT_SECONDS": LOCAL_HTTP_TIMEOUT_SECONDS,
        }
        os.environ.update(self.environment)
        self.simulators = {name: simulator(clock=self.clock).start() for name, simulator in SIMULATORS.items()}
        self._start_telegram(self.resources.topic_arn)
        api_clock = self.clock if hasattr(self.clock, "now") else SYSTEM_CLOCK
        self.front.api = local_token_api(
            self.environment, self.resources, clock=api_clock, auth_mode=self.front.auth_mode
        )
        self.front.start()
        return self

    def _start_telegram(self, topic_arn: str) -> None:
        """The demo bot and chat on the Telegram simulator, its token where the notifier reads it, and the
        topic's subscription that hands every alert to the notifier handler."""
        self.telegram.start()
        self.telegram.add_chat(DEMO_CHAT_ID)
        token = self.telegram.add_bot("broker_tokens_demo_bot")
        self.moto.session().client("secretsmanager", endpoint_url=self.moto.endpoint).create_secret(
            Name=telegram_secret_name(self.prefix), SecretString=json.dumps({"bot_token": token})
        )
        self.alert_tap = AlertTap.subscribe(self.moto.session(), topic_arn)
        telegram_env = {"TELEGRAM_CHAT_ID": str(DEMO_CHAT_ID), "TELEGRAM_API_URL": self.telegram.url}
        self.environment.update(telegram_env)
        os.environ.update(telegram_env)

    def relay_alerts(self) -> list[SentMessage]:
        """Hand the alert topic's new messages to the notifier handler, as SNS does in AWS; returns what
        the Telegram simulator received meanwhile."""
        from notifier.app import lambda_handler as notifier  # noqa: PLC0415 - the handler reads its env at call time

        if self.alert_tap is None:
            return []
        seen = len(self.telegram.inbox)
        self.alert_tap.deliver(notifier)
        return self.telegram.inbox[seen:]

    def stop(self) -> None:
        """Stop the token API front, the simulators (and moto, when this stack started it)."""
        self.front.stop()
        self.telegram.stop()
        for simulator in self.simulators.values():
            simulator.stop()
        self.simulators = {}
        if self._owns_moto:
            self.moto.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
