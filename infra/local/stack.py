"""The embedded stack: moto's server, the broker simulators, and the resources of template.yaml.

Everything listens on 127.0.0.1. The stack owns its process's AWS configuration: ``start()`` points
the standard boto3 environment variables at moto, so the same core code that runs in Lambda runs here
unchanged.
"""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import Any, Self

from broker_tokens.clock import SYSTEM_CLOCK
from infra.local.front import LocalFront, local_token_api
from infra.local.invoke import LocalFunctions
from infra.local.moto_server import MotoServer
from infra.local.simulators.angelone import AngelOneSimulator
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.base import SimulatorServer
from infra.local.simulators.kite import BlinkXSimulator, ZerodhaSimulator
from infra.local.simulators.pitrade import PiTradeSimulator
from infra.local.simulators.tradejini import TradejiniSimulator
from infra.local.template import LocalResources, provision
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
        self.resources: LocalResources | None = None
        self.environment: dict[str, str] = {}
        # The refresher function behind Lambda's Invoke API (`broker-tokens refresh` in function mode).
        self.functions: LocalFunctions | None = None

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
        return self

    def stop(self) -> None:
        """Stop the token API front, the simulators (and moto, when this stack started it)."""
        self.front.stop()
        if self.functions is not None:
            self.functions.stop()
            self.functions = None
        for simulator in self.simulators.values():
            simulator.stop()
        self.simulators = {}
        if self._owns_moto:
            self.moto.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
