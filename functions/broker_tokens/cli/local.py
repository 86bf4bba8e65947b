"""`broker-tokens local up | down | status | env | outbox | totp`: the embedded stack, in the background.

`up` starts moto and the broker simulators detached, seeds a demo account per broker and writes the
state file; every other command then reaches it with --local (or BROKER_TOKENS_LOCAL=1), from any
directory. `down` stops it. `env` prints the settings a bot needs, `outbox` the codes the AutoShares
simulator e-mailed, `totp` the demo BlinkX user's current code.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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
from broker_tokens.cli.output import render_table
from broker_tokens.table import local_time
from broker_tokens.totp import BrokerTOTP
from broker_tokens.totp_window import seconds_left_in_window

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
POLL_SECONDS = 0.1
DEFAULT_ZONE = "Asia/Kolkata"
# Where a bot finds the stack's token API (TokenApiClient's URL), in `local env`.
TOKEN_API_SETTING = "BROKER_TOKENS_API_URL"


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
        "env",
        local_env,
        help="the export lines a bot or a shell needs to use the stack",
        description="Print `export NAME=value` lines that lead boto3 and broker-tokens to the running stack.",
        epilog='example:\n  eval "$(broker-tokens local env)"',
    )
    outbox = command(
        actions,
        common,
        "outbox",
        local_outbox,
        help="the codes the AutoShares simulator e-mailed (its demo inbox)",
        description="The verification codes the AutoShares simulator sent, oldest first: what a person "
        "would read in their e-mail.",
        epilog="example:\n  broker-tokens local outbox etna-2fa-demo --latest",
    )
    outbox.add_argument("account", nargs="?", metavar="ACCOUNT", help="only this account's codes")
    outbox.add_argument("--latest", action="store_true", help="print only the latest code")
    totp = command(
        actions,
        common,
        "totp",
        local_totp,
        help="the current TOTP code of a demo login (BlinkX's browser login)",
        description="The code an authenticator app would show now for a demo user of a simulator.",
        epilog="example:\n  broker-tokens local totp blinkx-demo",
    )
    totp.add_argument("account", metavar="ACCOUNT", help="a demo account that logs in through a browser")
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
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
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
    zone = market_zone(state)
    stops = f", stops by itself at {when(state.get('stops_at'), zone)}" if state.get("stops_at") else ""
    out.print(f"broker-tokens local stack: up (pid {state['pid']}{stops})")
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
    for line in demo_login_lines(state):
        out.print(line)
    out.print("Use it with --local, e.g. `broker-tokens --local status` (or export BROKER_TOKENS_LOCAL=1).")


def demo_login_lines(state: dict[str, Any]) -> list[str]:
    """How a person plays the demo's person steps: the simulated users' logins and the e-mailed codes.

    These are credentials of the local simulators, made up at start and good nowhere else.

    Example:
        >>> demo_login_lines({"demo_logins": {"bx": {"user_id": "BX1", "password": "pw", "totp_secret": "AB"}}})[1]
        '  bx: user id BX1, password pw, TOTP secret AB (the code now: broker-tokens local totp bx)'
    """
    logins = state.get("demo_logins") or {}
    lines = ["Demo logins (simulated brokers; made up at start, good nowhere else):"] if logins else []
    for account, login in sorted(logins.items()):
        lines.append(
            f"  {account}: user id {login.get('user_id')}, password {login.get('password')}, "
            f"TOTP secret {login.get('totp_secret')} (the code now: broker-tokens local totp {account})"
        )
    if any(d.get("broker") == "autoshares" for d in state.get("demo_accounts", [])):
        lines.append("  AutoShares e-mailed codes: broker-tokens local outbox")
    return lines


def market_zone(state: dict[str, Any]) -> ZoneInfo:
    """The stack's market time zone (IST unless its environment says otherwise)."""
    return ZoneInfo(str(state.get("environment", {}).get("MARKET_TIMEZONE") or DEFAULT_ZONE))


def when(text: Any, zone: ZoneInfo) -> str:
    """An ISO time from the state file as a local table time ('?' when unreadable).

    Example:
        >>> when("2026-12-02T10:00:00+00:00", ZoneInfo("Asia/Kolkata"))
        '2026-12-02 15:30 IST'
    """
    try:
        return local_time(datetime.fromisoformat(str(text)), zone)
    except ValueError:
        return "?"


def running(ctx: Context) -> dict[str, Any]:
    """The state of the running stack, or a one-line error saying how to start one."""
    state = running_state(state_path(ctx.environ))
    if state is None:
        raise CliError("the local stack is not running: start it with `broker-tokens local up`")
    return state


def local_env(ctx: Context) -> int:
    """Print the exports that lead boto3 and broker-tokens to the running stack.

    Example: ``eval "$(broker-tokens local env)"``
    """
    state = running(ctx)
    settings = dict(state["environment"])
    if state.get("token_api"):
        settings[TOKEN_API_SETTING] = str(state["token_api"])
    for key in sorted(settings):
        ctx.out.print(f"export {key}={shlex.quote(str(settings[key]))}")
    return EXIT_OK


def local_outbox(ctx: Context) -> int:
    """The codes the AutoShares simulator e-mailed, oldest first (or the latest one).

    Example: ``broker-tokens local outbox etna-2fa-demo --latest``
    """
    state = running(ctx)
    mails = [m for m in state.get("outbox", []) if ctx.args.account in (None, m.get("account"))]
    whose = f" for '{ctx.args.account}'" if ctx.args.account else ""
    if not mails:
        ctx.out.note(f"No e-mailed code{whose} yet: `broker-tokens refresh` starts a login that sends one.")
        return EXIT_NOT_FRESH
    if ctx.args.latest:
        ctx.out.print(str(mails[-1]["code"]))
        return EXIT_OK
    zone = market_zone(state)
    rows = [[str(m.get("account")), when(m.get("sent_at"), zone), str(m.get("code"))] for m in mails]
    ctx.out.print(render_table(["account", "sent", "code"], rows))
    return EXIT_OK


def local_totp(ctx: Context) -> int:
    """The current TOTP code of a demo user who logs in through a browser.

    Example: ``broker-tokens local totp blinkx-demo``
    """
    logins = running(ctx).get("demo_logins") or {}
    login = logins.get(ctx.args.account)
    if not login or not login.get("totp_secret"):
        known = ", ".join(sorted(logins)) or "none"
        raise CliError(f"'{ctx.args.account}' is not a demo login of the local stack (demo logins: {known})")
    now = ctx.clock.time()
    ctx.out.print(BrokerTOTP(str(login["totp_secret"])).at(now))
    ctx.out.note(f"(good for {int(seconds_left_in_window(now))} more s)")
    return EXIT_OK


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
