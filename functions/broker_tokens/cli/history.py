"""`broker-tokens history [ACCOUNT] [--days N] [--json]`: what each run did for each account, in IST."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from broker_tokens.cli.context import EXIT_OK, Context, account_id, command
from broker_tokens.cli.output import render_table, state_colour
from broker_tokens.journal import journal_for
from broker_tokens.models import HistoryEntry
from broker_tokens.table import local_time

HEADERS = ("when", "account", "state", "action", "logins", "source", "note")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the `history` command."""
    parser = command(
        commands,
        common,
        "history",
        history,
        help="what each run did for each account (kept 90 days)",
        description="Every run's outcome per account, oldest first, times in the market's time zone: the "
        "state it left, what the run did (logged-in, skipped, started, waited...), the logins it spent, "
        "who ran it (schedule, api, cli, callback) and the error. Kept in the state table for "
        "HistoryDays (90 by default).",
        epilog="examples:\n  broker-tokens history\n  broker-tokens history angel-main --days 30\n"
        "  broker-tokens history --json | jq '.entries[] | select(.state != \"fresh\")'",
    )
    parser.add_argument("account", nargs="?", metavar="ACCOUNT", type=account_id, help="only this account")
    parser.add_argument("--days", type=days, default=7, help="how far back (default 7)")
    parser.add_argument("--json", action="store_true", help="print JSON ({days, entries: [...]})")


def days(value: str) -> int:
    """A positive whole number of days.

    Example:
        >>> days("30")
        30
    """
    if not value.isdigit() or not 1 <= int(value) <= 3650:
        raise argparse.ArgumentTypeError(f"a whole number of days from 1 to 3650, not {value!r}")
    return int(value)


def history(ctx: Context) -> int:
    """Print the history table (or JSON).

    Example: ``broker-tokens history angel-main --days 30``
    """
    account = ctx.args.account
    if account:
        ctx.require_account(account)
    since = ctx.clock.now() - timedelta(days=ctx.args.days)
    entries = journal_for(ctx.state).history(account, since)
    if ctx.args.json:
        ctx.out.json({"days": ctx.args.days, "entries": [entry.to_dict() for entry in entries]})
        return EXIT_OK
    if not entries:
        who = f"'{account}'" if account else "any account"
        ctx.out.print(f"No runs recorded for {who} in the last {ctx.args.days} day(s).")
        return EXIT_OK
    ctx.out.print(history_table(entries, ctx))
    return EXIT_OK


def history_table(entries: list[HistoryEntry], ctx: Context) -> str:
    """One row per entry: local time, account, state (coloured on a terminal), action, logins, source, error."""
    zone = ctx.settings.market_timezone
    rows = [
        [
            local_time(e.at, zone),
            e.account,
            e.state.value,
            e.action,
            str(e.logins),
            e.source.value,
            f"{e.error_kind.value}: {e.error}" if e.error_kind and e.error else (e.error or ""),
        ]
        for e in entries
    ]
    return render_table(HEADERS, rows, colours=[{2: state_colour(e.state)} for e in entries], colour=ctx.out.colour)
