"""Broker simulators as pytest fixtures, on the test's shared clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from infra.local.simulators.base import SimulatorServer

from broker_tokens.clock import WarpClock

S = TypeVar("S", bound=SimulatorServer)
# The chat the Telegram simulator fixture knows (a person who pressed Start in the bot's chat).
TELEGRAM_CHAT_ID = 424242


def simulator_fixture(name: str, simulator: Callable[..., S], doc: str) -> Any:
    """A fixture called ``name``: the simulator serving on the ``clock`` fixture, stopped after the test.

    Example:
        >>> angel = simulator_fixture("angel", AngelOneSimulator, "The Angel One simulator.")  # doctest: +SKIP
    """

    def serve(clock: WarpClock) -> Iterator[S]:
        with simulator(clock=clock) as sim:
            yield sim

    serve.__doc__ = doc
    return pytest.fixture(serve, name=name)
