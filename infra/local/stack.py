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

from broker_tokens.backend import LocalBackend
from broker_tokens.clock import SYSTEM_CLOCK
from broker_tokens.config import Settings, telegram_secret_name
from broker_tokens.person.runtime import build_person_service, install_person
from broker_tokens.runtime import build_refresher
from infra.local.alert_tap import AlertTap
from infra.local.front import LocalFront, local_token_api
from infra.local.inbox import AlertInbox
from infra.local.invoke import LocalFunctions
from infra.local.moto_server import MotoServer
from infra.local.simulators.angelone import AngelOneSimulator
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.base import SimulatorServer
from infra.local.simulators.kite import BlinkXSimulator, ZerodhaSimulator
from infra.local.simulators.pitrade import PiTradeSimulator
from infra.local.simulators.telegram import SentMessage, TelegramSimulator
from infra.local.simulators.tradejini import TradejiniSimulator
from infra.local.template import LocalResources, provision
from person_pages.app import lambda_handler as person_handler
from refresher.app import lambda_handler as refresher_handler

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
        person_port: int = 0,
        auth_mode: str = "api_key",
    ):
        self.clock = clock
        # The token API's local front (Function URL events to token_api.app); `front.url` once started.
        self.front = LocalFront(port=front_port, auth_mode=auth_mode)
        # The person pages' own public front (person_pages.app), as their second Function URL.
        self.person_front = LocalFront(handler=person_handler, port=person_port, function_name="broker-tokens-person")
        self.inbox: AlertInbox | None = None
        self.prefix = prefix
        self.moto = moto or MotoServer()
        self._owns_moto = moto is None
        self.simulators: dict[str, SimulatorServer] = {}
        # The Telegram Bot API and the alert topic's stand-in Lambda subscription (see alert_tap).
        self.telegram = TelegramSimulator()
        self.alert_tap: AlertTap | None = None
        self.resources: LocalResources | None = None
        self.environment: dict[str, str] = {}
        # The refresher function behind Lambda's Invoke API (`broker-tokens refresh` in function mode).
        self.functions: LocalFunctions | None = None

    def start(self) -> Self:
        """Start moto and the simulators, create the template's resources, configure this process."""
        self.moto.start()
        os.environ.update(self.moto.environment())
        self.resources = provision(self.moto.session(), parameters={"SecretPrefix": self.prefix})
        self.person_front.start()  # first: the refresher's alerts carry its URL
        self.environment = {
            **self.resources.environment("RefresherFunction"),
            **self.moto.environment(),
            "BROKER_HTTP_TIMEOUT_SECONDS": LOCAL_HTTP_TIMEOUT_SECONDS,
            "PERSON_URL": self.person_front.url + "/",
        }
        os.environ.update(self.environment)
        self.inbox = AlertInbox(self.moto.session(), self.resources.topic_arn)
        self.simulators = {name: simulator(clock=self.clock).start() for name, simulator in SIMULATORS.items()}
        self._start_telegram(self.resources.topic_arn)
        api_clock = self.clock if hasattr(self.clock, "now") else SYSTEM_CLOCK
        self.front.api = local_token_api(
            self.environment, self.resources, clock=api_clock, auth_mode=self.front.auth_mode
        )
        self.front.start()
        refresher_name = self.resources.names["RefresherFunction"]
        self.functions = LocalFunctions({refresher_name: refresher_handler}).start()
        # A client that names REFRESHER_FUNCTION_NAME reaches it here, through the real Invoke API.
        self.environment["AWS_ENDPOINT_URL_LAMBDA"] = self.functions.url
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = self.functions.url
        # The person function's own environment; completions run here, in the refresher's (LocalBackend).
        refresher = build_refresher(Settings.from_env(self.environment), api_clock)
        person_env = {**self.resources.environment("PersonPagesFunction"), **self.moto.environment()}
        person_env.pop("REFRESHER_FUNCTION_NAME", None)
        install_person(build_person_service(person_env, clock=api_clock, backend=LocalBackend(refresher)))
        return self

    @property
    def person_url(self) -> str:
        """The person pages' base URL (register ``{person_url}/callback/{account}`` as a Kite app's redirect)."""
        return self.person_front.url

    def person_link(self, account: str, *, fresh: bool = False) -> str | None:
        """The one-tap link of an account that awaits a person: the one in its newest alert, as the person
        got it; with ``fresh``, a new link to the same open step (what `broker-tokens login ACCOUNT` prints).
        None when nothing awaits.

        Example:
            >>> stack.person_link("blinkx-demo")  # doctest: +SKIP
            'http://127.0.0.1:8766/login/blinkx-demo?n=...'
        """
        if not fresh and self.inbox is not None:
            return self.inbox.link(account)
        return build_refresher(Settings.from_env(self.environment)).person_link(account)

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
        """Stop the fronts, the simulators (and moto, when this stack started it)."""
        self.front.stop()
        if self.functions is not None:
            self.functions.stop()
            self.functions = None
        self.person_front.stop()
        install_person(None)
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
