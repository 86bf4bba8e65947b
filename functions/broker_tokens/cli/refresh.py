"""`broker-tokens refresh | login | verify | reset`: logins through the same core as the Lambda.

`refresh` runs in the stack's refresher function when the CLI knows it (``--stack`` or
``REFRESHER_FUNCTION_NAME``): the logins then leave from the stack's network, whose static egress IP
is the one registered with Angel One and Tradejini. ``--here`` (or no known function) logs in from
this machine instead. The CLI says which it did.

Single flight holds across machines: the CLI takes the same DynamoDB lease as the scheduled run, so a
refresh here while the schedule runs waits for the schedule's login instead of making a second one.
"""

from __future__ import annotations

import argparse
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from broker_tokens.backend import BackendError, LambdaBackend, outcome_of
from broker_tokens.brokers.base import Broker
from broker_tokens.brokers.kite import KiteConnect, request_token_from
from broker_tokens.cli.context import EXIT_NOT_FRESH, EXIT_OK, CliError, Context, account_id, command
from broker_tokens.cli.output import isatty, paint, state_colour
from broker_tokens.cli.qr import encoder, qr_lines
from broker_tokens.cli.status import print_next_steps
from broker_tokens.models import AccountState, Outcome, Source
from broker_tokens.refresh import Refresher, Report
from broker_tokens.table import outcome_table

# The progress display stays quiet for one account: the table says it all.
PROGRESS_FROM = 2
# The refresher's own timeout (template.yaml: 600 s) and a margin: the CLI waits for the whole run.
FUNCTION_WAIT_SECONDS = 660.0
# A progress line is a glance; the table below carries the whole error.
PROGRESS_NOTE_LENGTH = 80
# What an e-mailed code looks like, per broker. ETNA does not document it; its codes are 6 digits (the
# docs' examples, the simulator), so a 5-digit typo is caught before it spends the login (--as-is sends
# any code anyway).
CODE_SHAPES: dict[str, tuple[re.Pattern[str], str]] = {"autoshares": (re.compile(r"[0-9]{6}"), "6 digits")}


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add refresh, login, verify and reset."""
    refresh = command(
        commands,
        common,
        "refresh",
        refresh_accounts,
        help="log accounts in now (fresh ones are skipped unless --force)",
        description="Make accounts fresh now, through the same core as the scheduled Lambda run (single "
        "flight across both, the same retries and the same no-lockout rule). With --stack or "
        "REFRESHER_FUNCTION_NAME the stack's refresher function does the logins, so they leave from the "
        "stack's egress IP (the one registered with brokers); --here logs in from this machine. A line says "
        "which; here, a line per finished account goes to stderr. Then the report table goes to stdout. "
        "Exit 0 when every account ends fresh, 1 otherwise.",
        epilog="examples:\n  broker-tokens refresh --stack broker-tokens\n  broker-tokens refresh angel-main --force"
        "\n  broker-tokens refresh angel-main --here",
    )
    refresh.add_argument("accounts", nargs="*", type=account_id, metavar="ACCOUNT", help="default: every account")
    refresh.add_argument("--force", action="store_true", help="log in even when the token is fresh")
    refresh.add_argument("--json", action="store_true", help="print the report as JSON")
    refresh.add_argument(
        "--here", action="store_true", help="log in from this machine, not in the stack's refresher function"
    )

    login = command(
        commands,
        common,
        "login",
        login_account,
        help="a browser login (BlinkX; Zerodha with web login off)",
        description="Without a value: start the login and print the URL a person opens. With the value the "
        "broker's redirect brought back (the whole redirect URL, or just its request_token): finish it.",
        epilog="examples:\n  broker-tokens login blinkx-main --qr\n"
        "  broker-tokens login blinkx-main 'https://example.com/cb?request_token=AbC123&action=login&status=success'",
    )
    login.add_argument("account", metavar="ACCOUNT", type=account_id, help="account id")
    login.add_argument("value", nargs="?", metavar="REQUEST_TOKEN_OR_REDIRECT_URL", help="what the redirect brought")
    login.add_argument("--force", action="store_true", help="start a new login even when the token is fresh")
    login.add_argument("--qr", action="store_true", help="also show the URL as a QR code to scan with a phone")

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
    verify.add_argument(
        "--as-is", action="store_true", help="send the code even when it does not look like the broker's codes"
    )

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
        '[1/2] a1  fresh  logged in\\n'
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
        line = f"[{self.done}/{self.total}] {outcome.account}  {state}  {progress_note(outcome)}".rstrip()
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


def progress_note(outcome: Outcome) -> str:
    """What a progress line says after the state: what was done when it went well, else why not (short).

    Example:
        >>> progress_note(Outcome("a1", "angelone", AccountState.FRESH, action="logged-in"))
        'logged in'
        >>> progress_note(Outcome("a1", "angelone", AccountState.NEEDS_ATTENTION, action="logged-in",
        ...                       error="login: Angel One refused the MPIN [AB1007]"))
        'login: Angel One refused the MPIN [AB1007]'
    """
    if not outcome.state.is_good and outcome.error:
        return glance(outcome.error, PROGRESS_NOTE_LENGTH)
    return outcome.action.replace("-", " ") if outcome.action not in ("none", "") else ""


def glance(text: str, width: int) -> str:
    """``text`` cut at a word to at most ``width`` characters, ending in "…" when cut (the table has it all).

    Example:
        >>> glance("ETNA refused the username or password", 20)
        'ETNA refused the…'
    """
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    return text[: width - 1].rsplit(" ", 1)[0].rstrip(" ,;:(") + "…"


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
    function = None if ctx.args.here else ctx.refresher_function
    if function:
        return refresh_in_function(ctx, function, names)
    if ctx.args.here:
        ctx.out.note("Logging in here: the logins leave from this machine's IP address (--here).")
    else:
        ctx.out.note(
            "Logging in here: the logins leave from this machine's IP address (no refresher function known: "
            "--stack NAME or REFRESHER_FUNCTION_NAME runs them in the stack)."
        )
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


def refresh_in_function(ctx: Context, function: str, names: list[str]) -> int:
    """Run the refresh in the stack's refresher function and report what it did.

    The function raises when an account ends not fresh (so its alarms fire), and Lambda then returns
    the error, not the report: where the accounts stand is read back from the state table and tokens.

    Example: ``broker-tokens refresh angel-main --stack broker-tokens``
    """
    event: dict[str, Any] = {"force": bool(ctx.args.force), "source": Source.CLI.value}
    if ctx.args.accounts:
        event["accounts"] = names
    backend = LambdaBackend(function, session=ctx.session, timeout=FUNCTION_WAIT_SECONDS)
    try:
        payload, raised = backend.invoke(event)
    except BackendError as exc:
        hint = "it did not answer in time" if exc.timed_out else "check the name, the region and lambda:InvokeFunction"
        raise CliError(
            f"the refresher function {function} could not be invoked ({hint}); --here logs in here"
        ) from None
    ctx.out.note(f"Refreshed in the refresher function {function}: the logins left from the stack's network.")
    if not raised:
        return print_report(ctx, [outcome_of(name, payload) for name in names])
    error = payload if isinstance(payload, dict) else {}
    if error.get("errorType") != "NotFreshError":
        failure = f"{error.get('errorType', 'error')}: {error.get('errorMessage', '')}"
        ctx.out.warn(f"the refresher function failed: {failure}")  # note() scrubs it
    return print_report(ctx, [ctx.refresher.describe(name) for name in names])


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
        if ctx.args.qr:
            encoder()  # a missing QR encoder is said before a login starts, not after
        outcome = ctx.refresher.refresh(account, force=ctx.args.force, source=Source.CLI)
        awaits = outcome.state is AccountState.AWAITING_LOGIN
        link = ctx.refresher.person_link(account) if awaits else None
        if link:
            ctx.out.note("Open this one-time link (on a phone too) and log in; it works once, for this login only:")
            ctx.out.print(link)
            show_qr(ctx, link)
            return EXIT_OK
        if outcome.state is AccountState.AWAITING_LOGIN and outcome.login_url:
            ctx.out.note(
                "No person pages are known (set PERSON_URL or --stack). Open this URL in a browser and log in:"
            )
            ctx.out.print(outcome.login_url)
            show_qr(ctx, outcome.login_url)
            ctx.out.note(
                f"then give the address the broker sends you to:\n  broker-tokens login {account} 'REDIRECT_URL'"
            )
            return EXIT_OK
        return print_report(ctx, [outcome])
    value = request_token(ctx.args.value, cls)
    outcome = ctx.refresher.complete(account, value, source=Source.CLI)
    return print_report(ctx, [outcome])


def show_qr(ctx: Context, link: str) -> None:
    """With ``--qr``, the link again as a QR code a phone's camera reads (the link itself is printed first)."""
    if ctx.args.qr:
        ctx.out.note("Or scan it with a phone's camera:")
        ctx.out.print("\n".join(qr_lines(link, colour=ctx.out.colour)))


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
    code = checked_code(account, cls, code or "", as_is=ctx.args.as_is)
    outcome = ctx.refresher.complete(account, code, source=Source.CLI)
    return print_report(ctx, [outcome])


def checked_code(account: str, cls: type[Broker], typed: str, *, as_is: bool = False) -> str:
    """The code without spaces, refused (before any broker call) when it cannot be the broker's code.

    A refused code spends the broker's login; a typo caught here spends nothing. The error names the
    account and the field, never the code.

    Example:
        >>> from broker_tokens.brokers import broker_class
        >>> checked_code("etna-main", broker_class("autoshares"), " 482 913 ")
        '482913'
        >>> checked_code("etna-main", broker_class("autoshares"), "48291")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        broker_tokens.cli.context.CliError: account 'etna-main': the verification code must be 6 digits ...
    """
    code = "".join(typed.split())
    if not code:
        raise CliError(f"account '{account}': no verification code given; the login still waits for it")
    shape = CODE_SHAPES.get(cls.name)
    if shape is None or as_is or shape[0].fullmatch(code):
        return code
    raise CliError(
        f"account '{account}': the verification code must be {shape[1]} ({len(code)} characters given); "
        "nothing was sent, the login still waits for the code"
    )


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
