"""The broker simulators in a process of their own, as the brokers are not in the refresher's process.

In the benchmark's own process the simulators' threads would wait for the same GIL as the refresher's
worker threads: a request's arrival would be stamped late whenever the refresher is busy (jitter that
no real broker adds to our pacing), and their CPU would be charged to the run. So a child process
serves them, and the benchmark reaches each one through a proxy that forwards attribute reads and
method calls over a pipe (``sim.url``, ``sim.add_account(...)``, ``sim.requests``).

The child is spawned (a fresh interpreter, never a fork of this threaded process) and ends when the
``with`` block does, or at the latest when this process goes: it serves until its pipe closes.

Example:
    >>> from infra.local.simulators.tradejini import TradejiniSimulator
    >>> with simulator_process({"tradejini": TradejiniSimulator}, latency=0.0) as sims:   # doctest: +SKIP
    ...     sims["tradejini"].url.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from broker_tokens.clock import SYSTEM_CLOCK, Clock

# The child's start (an interpreter importing the simulators) and any one call are far shorter.
ANSWER_SECONDS = 60


class SimulatorProxy:
    """One simulator in the child process: attribute reads and method calls go over the pipe.

    Example:
        >>> sims["zerodha"].add_user("ZB0001", "pw", "JBSWY3DPEHPK3PXP")     # doctest: +SKIP
    """

    def __init__(self, process: SimulatorProcess, broker: str) -> None:
        self._process = process
        self._broker = broker

    def __getattr__(self, name: str) -> Any:
        kind, value = self._process.ask(("get", self._broker, name, (), {}))
        if kind != "method":
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._process.ask(("call", self._broker, name, args, kwargs))[1]

        return call


class SimulatorProcess:
    """The child process and its pipe; ``ask`` sends one request and waits (bounded) for its answer."""

    def __init__(self, classes: dict[str, type[Any]], latency: float, clock: Clock) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        self._child = context.Process(target=_serve, args=(child_end, classes, latency, clock), daemon=True)
        self._child.start()
        child_end.close()
        self._receive()  # the simulators are up

    def ask(self, request: tuple[str, str, str, tuple[Any, ...], dict[str, Any]]) -> tuple[str, Any]:
        """Send a ("get" | "call", broker, name, args, kwargs) request; the child's (kind, value) answer."""
        self._pipe.send(request)
        return self._receive()

    def _receive(self) -> tuple[str, Any]:
        if not self._pipe.poll(ANSWER_SECONDS):
            self.close()  # a late answer must never be read as the next request's
            raise TimeoutError("the simulator process did not answer")
        try:
            kind, value = self._pipe.recv()
        except EOFError:
            raise RuntimeError("the simulator process ended (see its error above)") from None
        if kind == "error":
            raise RuntimeError(f"simulator process: {value}")
        return kind, value

    def close(self) -> None:
        """Stop the simulators and the child (its pipe closing is its signal)."""
        self._pipe.close()
        self._child.join(ANSWER_SECONDS)
        if self._child.is_alive():
            self._child.kill()
            self._child.join()


@contextmanager
def simulator_process(
    classes: dict[str, type[Any]], latency: float, clock: Clock = SYSTEM_CLOCK
) -> Iterator[dict[str, SimulatorProxy]]:
    """Started simulators (broker -> class) in a child process, every call delayed by ``latency``.

    ``clock`` must read the same in both processes: the system clock, or one whose state is shared
    memory (``bench.fanout.ScheduleClock``).
    """
    process = SimulatorProcess(classes, latency, clock)
    try:
        yield {broker: SimulatorProxy(process, broker) for broker in classes}
    finally:
        process.close()


def _serve(pipe: Connection, classes: dict[str, type[Any]], latency: float, clock: Clock) -> None:
    """The child: start the simulators, answer requests until the pipe closes, stop them."""
    sims: dict[str, Any] = {}
    try:
        for broker, cls in classes.items():
            sims[broker] = cls(clock=clock).start()
            sims[broker].faults.latency = latency
        pipe.send(("ready", None))
        while True:
            try:
                verb, broker, name, args, kwargs = pipe.recv()
            except EOFError:
                return
            try:
                value = getattr(sims[broker], name)
                if verb == "call":
                    answer: tuple[str, Any] = ("value", value(*args, **kwargs))
                else:
                    answer = ("method", None) if callable(value) else ("value", value)
            except Exception as exc:  # the benchmark reports it; the child keeps serving
                answer = ("error", f"{broker}.{name}: {type(exc).__name__}: {exc}")
            pipe.send(answer)
    finally:
        for sim in sims.values():
            sim.stop()
