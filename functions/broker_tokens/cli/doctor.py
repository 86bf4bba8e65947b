"""`broker-tokens doctor`: checks what a refresh depends on and says what to fix.

In order: AWS (who, which region), the accounts under the prefix and the shape of each credentials
secret, the state table, and this machine's clock against the HTTP Date header of each broker root
the accounts use (a TOTP code is only accepted within its 30 s window, so a clock a few seconds off
already makes logins fail near the window's edge). With --stack NAME (or BROKER_TOKENS_STACK), also
the deployment: the schedules enabled, a confirmed alert subscription, the last run's time and result,
and the alarms' states.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from botocore.exceptions import ClientError

from broker_tokens.brokers import known_broker
from broker_tokens.cli.accounts import account_rows
from broker_tokens.cli.checks import Check
from broker_tokens.cli.context import EXIT_NOT_FRESH, EXIT_OK, Context, command
from broker_tokens.cli.output import GREEN, RED, YELLOW, paint
from broker_tokens.cli.stackcheck import stack_checks
from broker_tokens.credentials import Credentials, parse_credentials
from broker_tokens.errors import CredentialsError
from broker_tokens.secrets import error_code

WARN_SKEW_SECONDS = 5.0
FAIL_SKEW_SECONDS = 15.0
CLOCK_TIMEOUT_SECONDS = 5.0
READ_WORKERS = 8
LEVEL_COLOURS = {"ok": GREEN, "warn": YELLOW, "FAIL": RED}


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the `doctor` command."""
    command(
        commands,
        common,
        "doctor",
        doctor,
        help="check AWS, the secrets, the state table and the clock (with --stack: the deployment); say what to fix",
        description=__doc__,
        epilog="Exit 0 when nothing failed (warnings allowed), 1 when a check failed, 2 when AWS is unreachable.",
    )


def doctor(ctx: Context) -> int:
    """Run every check, printing each as it completes.

    Example: ``broker-tokens doctor``
    """
    checks: list[Check] = []

    def report(check: Check) -> None:
        checks.append(check)
        level = paint(f"{check.level:<5}", LEVEL_COLOURS[check.level], enabled=ctx.out.colour)
        ctx.out.print(f"{level} {check.text}")
        if check.fix:
            ctx.out.print(f"      fix: {check.fix}")

    report(aws_identity(ctx))  # an unreachable AWS ends the command here (exit 2)
    accounts = credentials_checks(ctx, report)
    report(state_table_check(ctx))
    for check in clock_checks(accounts):
        report(check)
    if ctx.stack_outputs:
        for check in stack_checks(ctx):
            report(check)
    failed = sum(c.level == "FAIL" for c in checks)
    warned = sum(c.level == "warn" for c in checks)
    ctx.out.print(f"{failed} problem(s), {warned} warning(s).")
    return EXIT_NOT_FRESH if failed else EXIT_OK


def aws_identity(ctx: Context) -> Check:
    """Who the calls run as, and where."""
    identity = ctx.client("sts").get_caller_identity()
    where = f"the local stack ({ctx.environ.get('AWS_ENDPOINT_URL')})" if ctx.local else f"region {ctx.region}"
    return Check("ok", f"AWS: {identity.get('Arn')} in {where}")


def credentials_checks(ctx: Context, report: Callable[[Check], None]) -> list[Credentials]:
    """The accounts under the prefix, each secret parsed as the refresher parses it; returns the good ones."""
    rows = list(account_rows(ctx))
    valid = [row for row in rows if not row["note"].startswith("ignored")]
    for row in rows:
        if row not in valid:
            report(Check("warn", f"{ctx.prefix}/{row['account']}/credentials is ignored: {row['note'][9:]}"))
    if not valid:
        report(Check("warn", f"no accounts under {ctx.prefix}/", "broker-tokens accounts add ACCOUNT --broker NAME"))
        return []
    report(Check("ok", f"{len(valid)} account(s) under {ctx.prefix}/"))

    def read(row: dict[str, Any]) -> tuple[dict[str, Any], Credentials | Check]:
        account = row["account"]
        text = None
        try:
            text, version = ctx.secrets.read_credentials(account)
            return row, parse_credentials(account, text, version=version)
        except CredentialsError as exc:
            return row, Check("FAIL", str(exc), update_fix(account, text, row["broker"]))
        except ClientError as exc:
            return row, Check("FAIL", f"account '{account}': cannot read its credentials ({error_code(exc)})")

    good: list[Credentials] = []
    with ThreadPoolExecutor(max_workers=READ_WORKERS, thread_name_prefix="doctor") as pool:
        for row, result in pool.map(read, valid):
            if isinstance(result, Check):
                report(result)
                continue
            good.append(result)
            if row["broker"] != result.broker:
                report(
                    Check(
                        "warn",
                        f"account '{result.account}': tag broker={row['broker'] or '(none)'} but the secret "
                        f"says '{result.broker}' (IAM conditions read the tag)",
                        f"broker-tokens accounts update {result.account} --set broker={result.broker}",
                    )
                )
    if good:
        report(Check("ok", f"{len(good)} credentials secret(s) well-formed"))
    return good


def update_fix(account: str, text: str | None, tagged: str | None) -> str:
    """The command that rewrites a broken credentials secret (it needs --broker when nothing names one).

    Example:
        >>> update_fix("a1", "not json", None)
        'broker-tokens accounts update a1 --broker NAME'
        >>> update_fix("a1", '{"broker": "angelone"}', None)
        'broker-tokens accounts update a1'
    """
    try:
        data = json.loads(text or "")
    except ValueError:
        data = None
    named = isinstance(data, dict) and known_broker(str(data.get("broker"))) is not None
    return f"broker-tokens accounts update {account}" + ("" if named or known_broker(tagged) else " --broker NAME")


def state_table_check(ctx: Context) -> Check:
    """The state table answers (leases, needs-attention and person-completed logins live there)."""
    if not ctx.table:
        return Check(
            "warn",
            "no state table: single flight and needs-attention hold only within one process",
            "set STATE_TABLE_NAME, or pass --table or --stack (the deployed stack's StateTableName output)",
        )
    try:
        ctx.state.get("doctor-probe")
    except ClientError as exc:
        return Check(
            "FAIL", f"state table '{ctx.table}': {error_code(exc)}", "check --table / STATE_TABLE_NAME and region"
        )
    return Check("ok", f"state table '{ctx.table}' answers")


def broker_roots(accounts: list[Credentials]) -> dict[str, str]:
    """The distinct API roots (scheme, host, port) the accounts log in to, each with its brokers' names.

    Example:
        >>> from broker_tokens.credentials import validate_credentials
        >>> a = validate_credentials("a1", {"broker": "angelone", "api_key": "k", "client_code": "A1",
        ...     "pin": "1234", "totp_secret": "JBSWY3DPEHPK3PXP"})
        >>> broker_roots([a, a])
        {'https://apiconnect.angelone.in': 'Angel One SmartAPI'}
    """
    roots: dict[str, set[str]] = {}
    for creds in accounts:
        url = creds.get("base_url") or creds.broker_class.default_base_url
        if url:
            parts = urlsplit(str(url))
            roots.setdefault(f"{parts.scheme}://{parts.netloc}", set()).add(creds.broker_class.title)
    return {root: " and ".join(sorted(titles)) for root, titles in sorted(roots.items())}


def measure_skew(url: str, *, timeout: float = CLOCK_TIMEOUT_SECONDS, now: Callable[[], float] = time.time) -> float:
    """Seconds this machine's clock is ahead (+) or behind (-) the server's Date header.

    The header has whole seconds, so the server's time is taken as the middle of its second, and ours
    as the middle of the request. Raises requests.RequestException or ValueError (no usable Date).
    """
    sent = now()
    response = requests.head(url, timeout=timeout, allow_redirects=False)
    received = now()
    response.close()
    header = response.headers.get("Date")
    if not header:
        raise ValueError("no Date header")
    server = parsedate_to_datetime(header).timestamp() + 0.5
    return (sent + received) / 2 - server


def skew_check(broker: str, skew: float) -> Check:
    """Classify a measured skew: above 5 s a warning, above 15 s a failure.

    Example:
        >>> skew_check("Zerodha Kite Connect (api.kite.trade)", -20.0).text
        'clock: this machine is 20.0 s behind Zerodha Kite Connect (api.kite.trade)'
    """
    direction = "ahead of" if skew > 0 else "behind"
    text = f"clock: this machine is {abs(skew):.1f} s {direction} {broker}"
    if abs(skew) <= WARN_SKEW_SECONDS:
        return Check("ok", text)
    fix = "sync this machine's clock (enable NTP, e.g. `timedatectl set-ntp true`): TOTP codes depend on it"
    return Check("warn" if abs(skew) <= FAIL_SKEW_SECONDS else "FAIL", text, fix)


def clock_checks(accounts: list[Credentials]) -> list[Check]:
    """This machine's clock against every broker root the accounts use."""
    roots = broker_roots(accounts)
    if not roots:
        return [Check("warn", "clock: no broker root to compare with (no readable accounts)")]

    def one(root: str) -> Check:
        broker = f"{roots[root]} ({urlsplit(root).netloc})"
        try:
            return skew_check(broker, measure_skew(root))
        except (requests.RequestException, ValueError, TypeError) as exc:
            reason = "no Date header" if isinstance(exc, ValueError | TypeError) else "no answer"
            return Check("warn", f"clock: cannot compare with {broker} ({reason})")

    with ThreadPoolExecutor(max_workers=READ_WORKERS, thread_name_prefix="clock") as pool:
        return list(pool.map(one, roots))
