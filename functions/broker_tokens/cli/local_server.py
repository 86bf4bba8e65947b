"""The background process behind `broker-tokens local up`: the embedded stack, until told to stop.

Started detached by `local up`; starts moto, the broker simulators and the template's resources,
seeds a demo account per broker, then writes the state file. It stops on SIGTERM or SIGINT (`local
down`), when its state file disappears or is taken over, or when its lifetime ends, so a forgotten
stack never lingers. Run by hand: ``python -m broker_tokens.cli.local_server --state-file F``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from broker_tokens.cli.localstate import (
    DEFAULT_LIFETIME_HOURS,
    SERVER_MODULE,
    import_embedded_stack,
)
from broker_tokens.logs import logger

POLL_SECONDS = 0.5


def serve(state_file: Path, lifetime_seconds: float) -> int:
    """Run the stack until a stop signal, the loss of the state file, or the end of the lifetime."""
    import_embedded_stack()
    from infra.local.session import StackRecord, open_demo  # noqa: PLC0415 - importable only after the path is set
    from infra.local.stack import LocalStack  # noqa: PLC0415

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    logger.setLevel("WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    pid = os.getpid()
    deadline = time.monotonic() + lifetime_seconds
    with LocalStack() as stack:
        demos = open_demo(stack)
        record = StackRecord(state_file, stack, demos, server=SERVER_MODULE, lifetime_seconds=lifetime_seconds, pid=pid)
        record.write()
        print(f"local stack up (pid {pid}), state file {state_file}", flush=True)
        try:
            while not stop.wait(POLL_SECONDS) and time.monotonic() < deadline:
                if not record.owned():
                    print("state file removed or replaced: stopping", flush=True)
                    break
                relay_alerts(stack)
        finally:
            record.close()
    print("local stack stopped", flush=True)
    return 0


def relay_alerts(stack: Any) -> None:
    """Alerts published meanwhile go to the notifier, as SNS would; what Telegram got goes to the log."""
    try:
        received = stack.relay_alerts()
    except Exception:  # a refused post must not stop the stack; the log says why
        logger.exception("alert relay failed")
        return
    for message in received:
        print(f"[Telegram, chat {message.chat_id}] " + " | ".join(message.readable.splitlines()), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments `local up` passes and serve."""
    parser = argparse.ArgumentParser(prog=f"python -m {SERVER_MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("--state-file", type=Path, required=True, help="where to write the state file")
    parser.add_argument(
        "--lifetime-hours", type=float, default=DEFAULT_LIFETIME_HOURS, help="stop by itself after this long"
    )
    args = parser.parse_args(argv)
    return serve(args.state_file.absolute(), args.lifetime_hours * 3600)


if __name__ == "__main__":
    sys.exit(main())
