"""`broker-tokens status`: where every account stands, from its token and state, without any broker call."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError

from broker_tokens.cli.context import EXIT_NOT_FRESH, EXIT_OK, Context, command
from broker_tokens.cli.output import render_table, state_colour
from broker_tokens.cli.schedules import last_and_next, stack_schedules
from broker_tokens.errors import ErrorKind
from broker_tokens.models import AccountState, Outcome, iso
from broker_tokens.secrets import error_code
from broker_tokens.table import local_time
from broker_tokens.trading_days import packaged_calendar

# Reading many accounts' tokens one after another would take a while; a few at a time is plenty.
DESCRIBE_WORKERS = 8
HEADERS = ("account", "broker", "state", "issued", "expires", "last success", "source", "last error / next step")
# A needs-attention whose cause is a spent person step: a new login (reset, refresh) cures it.
SPENT_STEP_WORDS = ("verification code", "interim ticket", "request token")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the `status` command."""
    parser = command(
        commands,
        common,
        "status",
        status,
        help="every account's state, token times and last error",
        description="Every account: broker, state (fresh, expiring, expired, failed, needs-attention, "
        "awaiting-login, awaiting-verification, healthy, disabled), when its token was issued and expires, "
        "when it last logged in successfully, and the last error. No broker is called. Exit 0 when every "
        "account is fresh (or healthy, or disabled), 1 otherwise. Also: what wrote each token (schedule, cli, "
        "api, callback, logout), and the last and next scheduled runs (trading days only).",
        epilog="examples:\n  broker-tokens status\n  broker-tokens status --json | jq '.accounts[].state'",
    )
    parser.add_argument("accounts", nargs="*", metavar="ACCOUNT", help="only these accounts (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON ({ok, accounts: [...]})")


def status(ctx: Context) -> int:
    """Describe every (or the named) account.

    Example: ``broker-tokens status --json``
    """
    names = ctx.require_accounts(list(ctx.args.accounts))
    refresher = ctx.refresher

    with ThreadPoolExecutor(max_workers=DESCRIBE_WORKERS, thread_name_prefix="describe") as pool:
        described = list(pool.map(refresher.describe_with_records, names))
    outcomes = [outcome for outcome, _, _ in described]
    # What wrote each token and when the account last logged in, from the records its state was read from.
    sources = {outcome.account: token.source.value if token else None for outcome, _, token in described}
    successes = {outcome.account: status.last_success_at for outcome, status, _ in described}
    runs = schedule_summary(ctx)
    ok = all(o.state.is_good for o in outcomes)
    if ctx.args.json:
        accounts = [
            {**with_last_success(o.to_dict(), successes.get(o.account)), "source": sources[o.account]} for o in outcomes
        ]
        ctx.out.json({"ok": ok, "accounts": accounts, "schedule": runs})
        return EXIT_OK if ok else EXIT_NOT_FRESH
    if not outcomes:
        ctx.out.print(ctx.no_accounts())
        return EXIT_OK
    ctx.out.print(status_table(outcomes, ctx, sources, successes))
    print_summary(ctx, outcomes)
    ctx.out.note(schedule_line(runs, ctx.settings.market_timezone))
    return EXIT_OK if ok else EXIT_NOT_FRESH


def with_last_success(line: dict[str, Any], at: datetime | None) -> dict[str, Any]:
    """A status line with ``last_success_at`` when the account ever logged in.

    Example:
        >>> from datetime import UTC
        >>> with_last_success({"account": "a1"}, datetime(2026, 12, 2, 2, 0, tzinfo=UTC))
        {'account': 'a1', 'last_success_at': '2026-12-02T02:00:00Z'}
    """
    return {**line, "last_success_at": iso(at)} if at else line


def schedule_summary(ctx: Context) -> dict[str, Any]:
    """The stack's schedules with the last and next runs that do work (trading days), for JSON."""
    try:
        schedules = stack_schedules(ctx)
    except ClientError as exc:  # the schedules are a footnote: a missing permission must not cost the table
        return {"known": False, "reason": f"cannot read them ({error_code(exc)})"}
    if schedules is None:
        return {"known": False}
    last, upcoming = last_and_next(schedules, ctx.clock.now(), packaged_calendar())
    return {
        "known": True,
        "last": last.isoformat() if last else None,
        "next": upcoming.isoformat() if upcoming else None,
        "schedules": [s.to_dict() for s in schedules],
    }


def schedule_line(runs: dict[str, Any], zone: ZoneInfo) -> str:
    """One line: the last and next scheduled runs in market time, or why they are unknown.

    Example:
        >>> schedule_line({"known": True, "last": "2026-12-02T02:00:00+00:00", "next": None,
        ...                "schedules": [{"enabled": True}]}, ZoneInfo("Asia/Kolkata"))
        'Scheduled runs: last 2026-12-02 07:30 IST, next none (1 of 1 schedules enabled).'
    """
    if not runs["known"]:
        reason = runs.get("reason") or "unknown here (pass --stack NAME or set BROKER_TOKENS_STACK to read them)"
        return f"Scheduled runs: {reason}."

    def when(text: str | None) -> str:
        return local_time(datetime.fromisoformat(text), zone) if text else "none"

    enabled = sum(1 for s in runs["schedules"] if s["enabled"])
    return (
        f"Scheduled runs: last {when(runs['last'])}, next {when(runs['next'])} "
        f"({enabled} of {len(runs['schedules'])} schedules enabled)."
    )


def status_table(
    outcomes: Sequence[Outcome],
    ctx: Context,
    sources: Mapping[str, str | None],
    successes: Mapping[str, datetime | None],
) -> str:
    """Account, broker, state (coloured on a terminal), issued, expires, last success, what wrote the token,
    and the last error or next step."""
    zone = ctx.settings.market_timezone
    rows = [
        [
            o.account,
            o.broker or "-",
            o.state.value,
            local_time(o.issued_at, zone),
            local_time(o.expires_at, zone),
            local_time(successes.get(o.account), zone),
            sources.get(o.account) or "-",
            note(o),
        ]
        for o in outcomes
    ]
    return render_table(HEADERS, rows, colours=[{2: state_colour(o.state)} for o in outcomes], colour=ctx.out.colour)


def note(outcome: Outcome) -> str:
    """The last cell: a login URL, the error with its kind, or the pending step's message.

    Example:
        >>> from broker_tokens.errors import ErrorKind
        >>> note(Outcome("a1", "angelone", AccountState.NEEDS_ATTENTION, error_kind=ErrorKind.PERMANENT,
        ...              error="wrong MPIN [AB1007]"))
        'permanent: wrong MPIN [AB1007]'
    """
    if outcome.login_url:
        return f"log in at {outcome.login_url}"
    if outcome.error_kind and outcome.error:
        return f"{outcome.error_kind.value}: {outcome.error}"
    return outcome.error or ""


def next_step(outcome: Outcome) -> str | None:
    """The command that moves an account forward (runnable as printed, CAPITALS filled in; lines: choices).

    Example:
        >>> next_step(Outcome("bx", "blinkx", AccountState.AWAITING_LOGIN))
        'broker-tokens login bx REDIRECT_URL_OR_REQUEST_TOKEN'
    """
    account = outcome.account
    match outcome.state:
        case AccountState.NEEDS_ATTENTION if spent_step(outcome):
            return f"broker-tokens reset {account} && broker-tokens refresh {account}  # a new login"
        case AccountState.NEEDS_ATTENTION:
            return (
                f"broker-tokens accounts update {account}  # wrong credentials\n"
                f"broker-tokens reset {account} && broker-tokens refresh {account}  # fixed at the broker"
            )
        case AccountState.AWAITING_LOGIN:
            return f"broker-tokens login {account} REDIRECT_URL_OR_REQUEST_TOKEN"
        case AccountState.AWAITING_VERIFICATION:
            return f"broker-tokens verify {account} CODE"
        case AccountState.FAILED if outcome.error_kind is ErrorKind.CONFIGURATION:
            return f"broker-tokens accounts update {account}"
        case AccountState.EXPIRED | AccountState.EXPIRING | AccountState.FAILED:
            return f"broker-tokens refresh {account}"
    return None


def spent_step(outcome: Outcome) -> bool:
    """True when needs-attention came from a person's step (a refused code, a used ticket), not credentials.

    Example:
        >>> spent_step(Outcome("e", "autoshares", AccountState.NEEDS_ATTENTION,
        ...                    error="ETNA refused the verification code (Invalid verification code)"))
        True
    """
    text = (outcome.error or "").lower()
    return any(word in text for word in SPENT_STEP_WORDS)


def print_summary(ctx: Context, outcomes: Sequence[Outcome]) -> None:
    """One line of counts, then the next step for each account that is not fresh (on stderr)."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.state.value] = counts.get(o.state.value, 0) + 1
    ctx.out.note(f"{len(outcomes)} account(s): " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    print_next_steps(ctx, [o for o in outcomes if not o.state.is_good])


def next_steps(outcomes: Sequence[Outcome]) -> list[str]:
    """The next step of each account, with every plain refresh folded into one command.

    Example:
        >>> next_steps([Outcome("a1", "angelone", AccountState.EXPIRED),
        ...             Outcome("a2", "angelone", AccountState.FAILED),
        ...             Outcome("bx", "blinkx", AccountState.AWAITING_LOGIN)])
        ['broker-tokens login bx REDIRECT_URL_OR_REQUEST_TOKEN', 'broker-tokens refresh a1 a2']
    """
    steps: list[str] = []
    refresh: list[str] = []
    for outcome in outcomes:
        step = next_step(outcome)
        if step == f"broker-tokens refresh {outcome.account}":
            refresh.append(outcome.account)
        elif step:
            steps.extend(step.splitlines())
    if refresh:
        steps.append("broker-tokens refresh " + " ".join(refresh))
    return steps


def print_next_steps(ctx: Context, outcomes: Sequence[Outcome]) -> None:
    """Under a table, on stderr: what to run for the accounts that are not fresh."""
    steps = next_steps(outcomes)
    if steps:
        ctx.out.note("Next:")
        for step in steps:
            ctx.out.note(f"  {step}")
