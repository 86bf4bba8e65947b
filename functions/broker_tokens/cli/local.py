"""`broker-tokens local up | down | status`: the embedded stack (moto + broker simulators) in the background.

`up` starts it detached, seeds a demo account per broker and writes the state file; every other
command then reaches it with ``--local`` (or ``BROKER_TOKENS_LOCAL=1``). `down` stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from broker_tokens.cli.context import EXIT_NOT_FRESH, EXIT_OK, CliError, Context, command, command_group
from broker_tokens.cli.localstate import (
    DEFAULT_LIFETIME_HOURS,
    SERVER_MODULE,
    import_embedded_stack,
    is_stack_process,
    read_state,
    running_state,
    state_path,
)

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
POLL_SECONDS = 0.1


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the `local` command group."""
    actions = command_group(
        commands,
        common,
        "local",
        help="start, stop or show the embedded stack (no AWS account needed)",
        description=__doc__,
        defaults={"manages_stack": True},
    )

    up = command(
        actions,
        common,
        "up",
        local_up,
        help="start the stack in the background and seed demo accounts",
        description="Start moto and one simulator per broker in a background process, seed a demo account "
        "per broker, and write the state file that --local reads.",
        epilog="example:\n  broker-tokens local up\n  broker-tokens --local status",
    )
    up.add_argument(
        "--lifetime-hours",
        type=positive_hours,
        default=DEFAULT_LIFETIME_HOURS,
        help=f"stop by itself after this many hours (default {DEFAULT_LIFETIME_HOURS:g})",
    )

    command(
        actions, common, "down", local_down, help="stop the background stack", description="Stop the background stack."
    )
    command(
        actions,
        common,
        "status",
        local_status,
        help="is the stack up, and where (exit 1 when it is not)",
        description="Show whether the stack is up and its endpoints; exit 0 when up, 1 when not.",
    )


def positive_hours(value: str) -> float:
    """argparse type: a positive number of hours.

    Example:
        >>> positive_hours("0.5")
        0.5
    """
    try:
        hours = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of hours") from None
    if not 0 < hours <= 24 * 30:
        raise argparse.ArgumentTypeError("the lifetime must be between 0 and 720 hours")
    return hours


def local_up(ctx: Context) -> int:
    """Start the stack (unless it is up), wait until its state file says so, show it.

    Example: ``broker-tokens local up``
    """
    path = state_path(ctx.environ)
    state = running_state(path)
    if state is not None:
        ctx.out.note("The local stack is already up.")
        show(ctx, path, state)
        return EXIT_OK
    import_embedded_stack()  # a clear one-line error here, not a dead child later
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a stale file of a stack that died
    log_path = path.with_suffix(".log")
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own module, run by this very interpreter
            [
                sys.executable,
                "-m",
                SERVER_MODULE,
                "--state-file",
                str(path),
                "--lifetime-hours",
                str(ctx.args.lifetime_hours),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # detached: it outlives this command and ignores its terminal's Ctrl-C
            env=child_environment(ctx.environ),
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CliError(f"the local stack did not start: {last_line(log_path)} (log: {log_path})")
        state = read_state(path)
        if state is not None and state.get("pid") == process.pid:
            show(ctx, path, state)
            return EXIT_OK
        time.sleep(POLL_SECONDS)
    process.kill()
    process.wait(timeout=STOP_TIMEOUT_SECONDS)
    raise CliError(f"the local stack did not start within {START_TIMEOUT_SECONDS:g} s (log: {log_path})")


def local_down(ctx: Context) -> int:
    """Stop the stack by the pid in its state file (only if that process is really our server).

    Example: ``broker-tokens local down``
    """
    path = state_path(ctx.environ)
    state = read_state(path)
    if state is None:
        ctx.out.print("The local stack is not running.")
        return EXIT_OK
    pid = int(state["pid"])
    if is_stack_process(pid):
        os.kill(pid, signal.SIGTERM)
        if not wait_for_exit(pid, STOP_TIMEOUT_SECONDS):
            os.kill(pid, signal.SIGKILL)
            wait_for_exit(pid, STOP_TIMEOUT_SECONDS)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    ctx.out.print(f"The local stack (pid {pid}) is stopped.")
    return EXIT_OK


def local_status(ctx: Context) -> int:
    """Show the stack, or say it is not running (exit 1).

    Example: ``broker-tokens local status``
    """
    path = state_path(ctx.environ)
    state = running_state(path)
    if state is None:
        ctx.out.print("The local stack is not running (start it with `broker-tokens local up`).")
        return EXIT_NOT_FRESH
    show(ctx, path, state)
    return EXIT_OK


def show(ctx: Context, path: Path, state: dict[str, Any]) -> None:
    """What is up, and how to use it."""
    out = ctx.out
    out.print(f"broker-tokens local stack: up (pid {state['pid']}, stops by itself at {state.get('stops_at', '?')})")
    endpoints = [("moto (Secrets Manager, DynamoDB, SNS, KMS, SQS)", str(state.get("moto", "")))]
    if state.get("token_api"):
        endpoints.append(("token API (the Function URL's local front)", str(state["token_api"])))
    endpoints += [(f"{name} simulator", str(url)) for name, url in sorted(state.get("simulators", {}).items())]
    width = max(len(label) for label, _ in endpoints) + 2
    for label, url in endpoints:
        out.print(f"  {label:<{width}}{url}")
    demos = state.get("demo_accounts", [])
    if demos:
        out.print("  demo accounts: " + ", ".join(f"{d['account']} ({d['broker']})" for d in demos))
    out.print(f"  state file: {path}")
    out.print("Use it with --local, e.g. `broker-tokens --local status` (or export BROKER_TOKENS_LOCAL=1).")


def child_environment(environ: Any) -> dict[str, str]:
    """The server's environment: ours, minus any AWS endpoint or local switch it must not inherit."""
    env = {str(k): str(v) for k, v in environ.items()}
    for key in ("AWS_ENDPOINT_URL", "BROKER_TOKENS_LOCAL"):
        env.pop(key, None)
    return env


def wait_for_exit(pid: int, timeout: float) -> bool:
    """True once ``pid`` has exited (polling, bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_stack_process(pid):
            return True
        time.sleep(POLL_SECONDS)
    return False


def last_line(path: Path) -> str:
    """The last non-empty line of a log file (the error of a child that died)."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return "no log"
    return next((line for line in reversed(lines) if line), "no output")
