"""`broker-tokens logout [ACCOUNT...]`: the end-of-day logout, here, through the same core as the Lambda.

Exchange rules want every API session logged out before the next trading day; the stack's logout
schedule does it at 23:59. This command does the same now (single flight with the scheduled runs, the
same retries) and prints the report: logged-out, no-logout-at-broker, already-expired, no-token, failed.
"""

from __future__ import annotations

import argparse
from typing import Any

from broker_tokens.cli.context import EXIT_NOT_FRESH, EXIT_OK, Context, account_id, command
from broker_tokens.logout import EndOfDay
from broker_tokens.table import outcome_table


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add logout."""
    logout = command(
        commands,
        common,
        "logout",
        logout_accounts,
        help="end the day's sessions at the brokers (exchange rule)",
        description="Log the day's tokens out through each broker's own logout (Angel One, Zerodha, BlinkX, "
        "Tradejini; AutoShares and PiTrade have none), then store each as expired, so no reader uses it and "
        "the next morning's run logs in again. A logout that fails keeps the token and is reported failed. "
        "Exit 0 when no logout failed, 1 otherwise.",
        epilog="examples:\n  broker-tokens logout\n  broker-tokens logout angel-main --json",
    )
    logout.add_argument("accounts", nargs="*", type=account_id, metavar="ACCOUNT", help="default: every account")
    logout.add_argument("--json", action="store_true", help="print the report as JSON")


def logout_accounts(ctx: Context) -> int:
    """Log out the named (or all) accounts and print the report.

    Example: ``broker-tokens logout angel-main``
    """
    names = ctx.require_accounts(list(ctx.args.accounts))
    if not names:
        ctx.out.print(ctx.no_accounts())
        return EXIT_OK
    report = EndOfDay(ctx.refresher).run(names)
    if ctx.args.json:
        ctx.out.json(report.to_dict())
    else:
        zone = ctx.settings.market_timezone
        ctx.out.print(outcome_table(report.outcomes, zone, colour=ctx.out.colour, logins=False, actions=True))
        for outcome in report.failed:
            ctx.out.note(f"Retry: broker-tokens logout {outcome.account}")
    return EXIT_OK if report.ok else EXIT_NOT_FRESH
