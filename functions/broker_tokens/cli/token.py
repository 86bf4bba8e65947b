"""`broker-tokens token ACCOUNT [--header]`: the stored token record, or just its Authorization value.

For scripts: ``curl -H "Authorization: $(broker-tokens token angel-main --header)" ...``. An expired
(or missing) token prints nothing on stdout and exits 1, so the script stops instead of sending it.
"""

from __future__ import annotations

import argparse
from typing import Any

from broker_tokens.brokers import broker_class
from broker_tokens.cli.context import EXIT_NOT_FRESH, EXIT_OK, CliError, Context, account_id, command
from broker_tokens.errors import BrokerError
from broker_tokens.models import AccountState, LoginResult, Session, Source, TokenRecord
from broker_tokens.standing import served_state
from broker_tokens.state import AccountStatus
from broker_tokens.table import local_time


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the `token` command."""
    parser = command(
        commands,
        common,
        "token",
        show_token,
        help="print an account's token record (or just the Authorization value)",
        description="Print the account's current token record as JSON (the public contract: authorization, "
        "headers, expires_at...), or with --header only the Authorization header value. Exit 1 without "
        "output when the token has expired or there is none. For a broker with no stored token (PiTrade) "
        "a fresh token is signed.",
        epilog='examples:\n  broker-tokens token angel-main\n  curl -H "Authorization: '
        '$(broker-tokens token angel-main --header)" https://...',
    )
    parser.add_argument("account", metavar="ACCOUNT", type=account_id, help="account id")
    parser.add_argument("--header", action="store_true", help="print only the Authorization header value")


def show_token(ctx: Context) -> int:
    """Print the token record or its Authorization value.

    Example: ``broker-tokens token angel-main --header``
    """
    account = ctx.args.account
    record = ctx.secrets.read_token(account)
    stored = record is not None
    if record is None:
        record = signed_token(ctx, account)
    if record is None:
        ctx.out.error(f"'{account}' has no token yet (see `broker-tokens status {account}`)")
        return EXIT_NOT_FRESH
    cls = broker_class(record.broker)
    status = ctx.state.get(account) if stored and cls.login_supersedes else AccountStatus(account)
    state = served_state(record, cls, status, ctx.clock.now(), ctx.settings)
    expires = local_time(record.expires_at, ctx.settings.market_timezone)
    if state is AccountState.EXPIRED:
        ctx.out.error(f"the token of '{account}' has expired (expires_at {expires}): broker-tokens refresh {account}")
        return EXIT_NOT_FRESH
    if state is AccountState.EXPIRING and stored:  # a signed token is short-lived by design
        ctx.out.warn(f"the token of '{account}' expires at {expires}, before the trading day ends")
    if ctx.args.header:
        ctx.out.print(record.authorization)
    else:
        ctx.out.json(record.to_dict())
    return EXIT_OK


def signed_token(ctx: Context, account: str) -> TokenRecord | None:
    """For a broker that stores no token (PiTrade signs its own): a freshly made one; else None.

    Also the place an unknown account is told apart from one that has simply not logged in yet.
    """
    creds = ctx.credentials(account)  # CliError for an unknown account or a malformed secret
    cls = creds.broker_class
    if cls.stores_token:
        return None
    adapter = cls(creds, http_timeout=ctx.settings.http_timeout, clock=ctx.clock)
    try:
        made: LoginResult = adapter.login()
    except BrokerError as exc:
        raise CliError(f"{cls.title}: {exc}") from None
    finally:
        adapter.close()
    if not isinstance(made, Session):
        raise CliError(f"{cls.title} cannot make a token without a person: broker-tokens login {account}")
    return TokenRecord.from_session(account, cls.name, made, issued_at=ctx.clock.now(), source=Source.CLI)
