"""`broker-tokens refresh | login | verify | reset`: logins run here, through the same core as the Lambda.

Single flight holds across machines: the CLI takes the same DynamoDB lease as the scheduled run, so a
refresh here while the schedule runs waits for the schedule's login instead of making a second one.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Sequence
from textwrap import shorten
from typing import Any, TextIO

from broker_tokens.brokers.base import Broker
from broker_tokens.brokers.kite import KiteConnect, request_token_from
from broker_tokens.cli.context import EXIT_NOT_FRESH, EXIT_OK, CliError, Context, account_id, command
from broker_tokens.cli.output import isatty, paint, state_colour
from broker_tokens.cli.status import print_next_steps
from broker_tokens.models import AccountState, Outcome, Source
from broker_tokens.refresh import Refresher, Report
from broker_tokens.table import outcome_table

# The progress display stays quiet for one account: the table says it all.
PROGRESS_FROM = 2
# A progress line is a glance; the table below carries the whole error.
PROGRESS_NOTE_LENGTH = 80


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add refresh, login, verify and reset."""
    refresh = command(
        commands,
        common,
        "refresh",
        refresh_accounts,
        help="log accounts in now (fresh ones are skipped unless --force)",
        description="Make accounts fresh now, here, through the same core as the scheduled Lambda run "
        "(single flight across both, the same retries and the same no-lockout rule). A line per finished "
        "account goes to stderr, then the report table to stdout. Exit 0 when every account ends fresh, 1 "
        "otherwise.",
        epilog="examples:\n  broker-tokens refresh\n  broker-tokens refresh angel-main --force",
    )
    refresh.add_argument("accounts", nargs="*", type=account_id, metavar="ACCOUNT", help="default: every account")
    refresh.add_argument("--force", action="store_true", help="log in even when the token is fresh")
    refresh.add_argument("--json", action="store_true", help="print the report as JSON")

    login = command(
        commands,
        common,
        "login",
        login_account,
        help="a browser login (BlinkX; Zerodha with web login off)",
        description="Without a value: start the login and print the URL a person opens. With the value the "
        "broker's redirect brought back (the whole redirect URL, or just its request_token): finish it.",
        epilog="examples:\n  broker-tokens login blinkx-main\n"
        "  broker-tokens login blinkx-main 'https://example.com/cb?request_token=AbC123&action=login&status=success'",
    )
    login.add_argument("account", metavar="ACCOUNT", type=account_id, help="account id")
    login.add_argument("value", nargs="?", metavar="REQUEST_TOKEN_OR_REDIRECT_URL", help="what the redirect brought")
    login.add_argument("--force", action="store_true", help="start a new login even when the token is fresh")

    verify = command(
        commands,
        common,
        "verify",
        verify_account,
        help="finish a login with the code the broker e-mailed (AutoShares)",
        description="Finish a two-factor login that waits for the code the broker sent by e-mail or SMS. "
        "Without CODE, it is asked (or read from stdin).",
        epilog="example:\n  broker-tokens verify etna-main 482913",
    )
    verify.add_argument("account", metavar="ACCOUNT", type=account_id, help="account id")
    verify.add_argument("code", nargs="?", help="the code from the e-mail or SMS")

    reset = command(
        commands,
        common,
        "reset",
        reset_account,
        help="clear needs-attention so the next run tries again",
        description="After a permanent rejection (wrong PIN, blocked account...) an account is not tried "
        "again until its credentials secret changes. Once the cause is gone without a credentials change "
        "(say the broker unblocked it), reset lets the next run log in.",
        epilog="example:\n  broker-tokens reset angel-main && broker-tokens refresh angel-main",
    )
    reset.add_argument("account", metavar="ACCOUNT", type=account_id, help="account id")


# -- refresh --------------------------------------------------------------------------------------------


class Progress:
    """A line per finished account on stderr; on a terminal, a counter under them.

    Example:
        >>> import io
        >>> stream = io.StringIO(); progress = Progress(2, stream, colour=False)
        >>> progress.finished(Outcome("a1", "angelone", AccountState.FRESH, action="logged-in"))
        >>> stream.getvalue()
        '[1/2] a1  fresh  (logged-in)\\n'
    """

    def __init__(self, total: int, stream: TextIO, *, colour: bool, counter: bool | None = None):
        self.total = total
        self.done = 0
        self.stream = stream
        self.colour = colour
        self.counter = isatty(stream) if counter is None else counter
        self._lock = threading.Lock()  # accounts finish on the run's worker threads

    def start(self) -> None:
        """Show the counter at 0."""
        self._counter()

    def finished(self, outcome: Outcome) -> None:
        """Report one account (from any thread)."""
        with self._lock:
            self._finished(outcome)

    def _finished(self, outcome: Outcome) -> None:
        self.done += 1
        state = paint(outcome.state.value, state_colour(outcome.state), enabled=self.colour)
        detail = f"({outcome.action})"
        if not outcome.state.is_good and outcome.error:
            detail += " " + shorten(outcome.error, PROGRESS_NOTE_LENGTH)
        line = f"[{self.done}/{self.total}] {outcome.account}  {state}  {detail}"
        self._clear()
        print(line, file=self.stream, flush=True)
        self._counter()

    def close(self) -> None:
        """Remove the counter line."""
        self._clear()

    def _counter(self) -> None:
        if self.counter and self.done < self.total:
            print(f"refreshing: {self.done}/{self.total} done", end="", file=self.stream, flush=True)

    def _clear(self) -> None:
        if self.counter:
            print("\r\033[K", end="", file=self.stream, flush=True)


class ReportingRefresher(Refresher):
    """The core Refresher, telling a listener about each account the moment it finishes.

    The run itself (fan-out, pacing, single flight) stays the core's; only ``refresh`` is wrapped.

    Example:
        >>> ctx.build_refresher(ReportingRefresher, on_outcome=print).run(["angel-main"])  # doctest: +SKIP
    """

    def __init__(self, *, on_outcome: Callable[[Outcome], None], **collaborators: Any):
        super().__init__(**collaborators)
        self.on_outcome = on_outcome

    def refresh(self, account: str, **options: Any) -> Outcome:
        """Refresh as the core does (same options), then report the outcome."""
        outcome = super().refresh(account, **options)
        self.on_outcome(outcome)
        return outcome


def refresh_accounts(ctx: Context) -> int:
    """Refresh the named (or all) accounts concurrently, as the Lambda would, and report.

    Example: ``broker-tokens refresh angel-main --force``
    """
    names = ctx.require_accounts(list(ctx.args.accounts))
    if not names:
        ctx.out.print(ctx.no_accounts())
        return EXIT_OK
    progress = Progress(len(names), ctx.out.err, colour=ctx.out.err_colour)
    quiet = len(names) < PROGRESS_FROM
    refresher = ctx.build_refresher(ReportingRefresher, on_outcome=(lambda _: None) if quiet else progress.finished)
    if not quiet:
        progress.start()
    try:
        # All accounts: let the core discover them, so it can start per-IP-paced brokers first.
        report = refresher.run(names if ctx.args.accounts else None, force=ctx.args.force, source=Source.CLI)
    finally:
        if not quiet:
            progress.close()
    return print_report(ctx, report.outcomes)


def print_report(ctx: Context, outcomes: Sequence[Outcome]) -> int:
    """The report table (or JSON) and the next steps; the exit code says whether all are fresh."""
    report = Report(list(outcomes))
    if ctx.args.__dict__.get("json"):
        ctx.out.json(report.to_dict())
    else:
        ctx.out.print(outcome_table(report.outcomes, ctx.settings.market_timezone, colour=ctx.out.colour))
        print_next_steps(ctx, report.not_fresh)
    return EXIT_OK if report.ok else EXIT_NOT_FRESH


# -- person-completed logins ------------------------------------------------------------------------------


def completes_logins(cls: type[Broker]) -> bool:
    """True for brokers whose login a person can finish (their adapter implements ``complete``).

    Example:
        >>> from broker_tokens.brokers import broker_class
        >>> completes_logins(broker_class("angelone"))
        False
    """
    return cls.complete is not Broker.complete


def login_account(ctx: Context) -> int:
    """Start a browser login and show its URL, or finish it with what the redirect brought back.

    Example: ``broker-tokens login blinkx-main``
    """
    account = ctx.args.account
    cls = ctx.credentials(account).broker_class
    if not completes_logins(cls):
        raise CliError(f"'{account}' ({cls.title}) logs in without a browser: `broker-tokens refresh {account}`")
    if ctx.args.value is None:
        outcome = ctx.refresher.refresh(account, force=ctx.args.force, source=Source.CLI)
        if outcome.state is AccountState.AWAITING_LOGIN and outcome.login_url:
            ctx.out.note("Open this URL in a browser and log in:")
            ctx.out.print(outcome.login_url)
            ctx.out.note(
                "The broker then redirects to the app's redirect URL (the token API's /callback, which finishes "
                f"by itself) or, without it, give the address you land on to:\n"
                f"  broker-tokens login {account} 'REDIRECT_URL'"
            )
            return EXIT_OK
        return print_report(ctx, [outcome])
    value = request_token(ctx.args.value, cls)
    outcome = ctx.refresher.complete(account, value, source=Source.CLI)
    return print_report(ctx, [outcome])


def request_token(value: str, cls: type[Broker]) -> str:
    """The request token in a pasted value, checked before the broker sees it (a typo is exit 2)."""
    if not issubclass(cls, KiteConnect):
        return value.strip()
    try:
        return request_token_from(value)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def verify_account(ctx: Context) -> int:
    """Finish a login that waits for an e-mailed or texted code.

    Example: ``broker-tokens verify etna-main 482913``
    """
    account = ctx.args.account
    cls = ctx.credentials(account).broker_class
    if not completes_logins(cls):
        raise CliError(f"'{account}' ({cls.title}) never waits for a code")
    where = ctx.refresher.describe(account)
    if where.state is not AccountState.AWAITING_VERIFICATION:
        raise CliError(
            f"'{account}' is not waiting for a code (it is {where.state.value}); "
            f"`broker-tokens refresh {account}` starts a login that asks for one"
        )
    code = ctx.args.code
    if code is None:
        code = ctx.prompter.ask("verification code")
    if not code or not code.strip():
        raise CliError("no code given")
    outcome = ctx.refresher.complete(account, code.strip(), source=Source.CLI)
    return print_report(ctx, [outcome])


def reset_account(ctx: Context) -> int:
    """Clear needs-attention.

    Example: ``broker-tokens reset angel-main``
    """
    account = ctx.args.account
    ctx.require_account(account)
    if not ctx.table:
        raise CliError("reset needs the state table: set STATE_TABLE_NAME, --table or --stack")
    before = ctx.state.get(account)
    if not before.needs_attention:
        ctx.out.print(f"'{account}' is not marked needs-attention: nothing to clear.")
        return EXIT_OK
    ctx.refresher.reset(account)
    ctx.out.print(f"Cleared '{account}' ({before.error or 'needs-attention'}).")
    ctx.out.note(f"The next run logs it in again; now: broker-tokens refresh {account}")
    return EXIT_OK
