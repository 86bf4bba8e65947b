"""`broker-tokens callers add | list | revoke`: who may call the token API, for which accounts and actions.

A caller is an API key (sent as ``Authorization: Bearer <key>``; shown once, stored only as a hash) or an
IAM principal (``--principal-arn``). Scopes: accounts by name or pattern (``angel-*``), and actions
``read`` (tokens and states), ``refresh`` (force a refresh), ``admin`` (everything).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from broker_tokens.callers import ACTIONS, AUTH_CACHE_SECONDS, Caller, CallerStore
from broker_tokens.cli.context import EXIT_OK, CliError, Context, command, command_group
from broker_tokens.cli.lastuse import last_uses
from broker_tokens.cli.output import render_table
from broker_tokens.table import local_time

# How long a warm token API container may still accept a revoked or replaced key.
WINDOW = f"{AUTH_CACHE_SECONDS:g}"


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the `callers` command group."""
    actions = command_group(
        commands,
        common,
        "callers",
        help="add, list or revoke token API callers (API keys, IAM principals)",
        description=__doc__,
    )

    add = command(
        actions,
        common,
        "add",
        add_caller,
        help="create a caller; prints its new API key once",
        description="Create a caller of the token API. Without --principal-arn it gets an API key, printed "
        "once on stdout (only its hash is stored). An existing caller is replaced only with --replace (its "
        f"old key stops working within {WINDOW} s).",
        epilog="examples:\n"
        '  broker-tokens callers add trading-bot --accounts angel-main,"kite-*" --actions read\n'
        "  broker-tokens callers add ops --accounts '*' --actions read,refresh "
        "--principal-arn arn:aws:iam::123456789012:role/ops",
    )
    add.add_argument("name", help="caller name, e.g. trading-bot")
    add.add_argument("--accounts", required=True, type=comma_list, help="account ids or patterns, comma-separated")
    add.add_argument("--actions", required=True, type=comma_list, help=f"comma-separated: {', '.join(sorted(ACTIONS))}")
    add.add_argument("--principal-arn", help="an IAM role or user ARN instead of an API key")
    add.add_argument("--replace", action="store_true", help="replace an existing caller of that name (new key)")

    listing = command(
        actions,
        common,
        "list",
        list_callers,
        help="every caller, its scopes, when it was created and last used (never a key)",
        description="List the callers: scopes, when each was created, and when it last got an answer from "
        "the token API (read from the token API's log lines in CloudWatch Logs with --stack; unknown "
        "locally).",
    )
    listing.add_argument("--json", action="store_true", help="print JSON")

    revoke = command(
        actions,
        common,
        "revoke",
        revoke_caller,
        help=f"delete a caller (its key stops working within {WINDOW} s)",
        description=f"Delete a caller. Its API key or IAM mapping stops working within {WINDOW} s: the token API "
        "remembers a lookup that long in each warm container.",
    )
    revoke.add_argument("name", help="caller name")


def comma_list(value: str) -> list[str]:
    """argparse type: ``a,b, c`` as a list without blanks.

    Example:
        >>> comma_list("angel-main, kite-*,")
        ['angel-main', 'kite-*']
    """
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give at least one value")
    return items


def store(ctx: Context) -> CallerStore:
    """The caller store on the state table (callers live there)."""
    if not ctx.table:
        raise CliError("callers live in the state table: set STATE_TABLE_NAME, or pass --table or --stack")
    return CallerStore(ctx.table, client=ctx.client("dynamodb"), clock=ctx.clock)


def find(callers: list[Caller], name: str) -> Caller | None:
    """The caller of that name, if any."""
    return next((caller for caller in callers if caller.name == name), None)


def add_caller(ctx: Context) -> int:
    """Create (or with --replace, replace) a caller; print its key once.

    Example: ``broker-tokens callers add bot --accounts "angel-*" --actions read``
    """
    callers = store(ctx)
    name = ctx.args.name
    if find(callers.list(), name) is not None and not ctx.args.replace:
        raise CliError(f"caller '{name}' exists: --replace gives it new scopes and a new key, revoking the old one")
    try:
        key = callers.add(name, ctx.args.accounts, ctx.args.actions, principal_arn=ctx.args.principal_arn)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    scopes = f"accounts {', '.join(ctx.args.accounts)}; actions {', '.join(sorted(set(ctx.args.actions)))}"
    if key is None:
        ctx.out.print(f"Caller '{name}' = {ctx.args.principal_arn} ({scopes}).")
        return EXIT_OK
    ctx.out.print(key)
    ctx.out.note(
        f"That is the API key of caller '{name}' ({scopes}). Store it now: it is not shown again. "
        'Apps send it as "Authorization: Bearer <key>".'
    )
    return EXIT_OK


def list_callers(ctx: Context) -> int:
    """Every caller with its scopes.

    Example: ``broker-tokens callers list``
    """
    callers = store(ctx).list()
    used = last_uses(ctx) if callers else None
    zone = ctx.settings.market_timezone

    def last_use(caller: Caller) -> datetime | None:
        return None if used is None else used.get(caller.name)

    if ctx.args.json:
        ctx.out.json(
            [
                {
                    **caller.to_dict(),
                    "created_at": caller.created_at,
                    "last_used": iso_or_unknown(last_use(caller), known=used is not None),
                }
                for caller in callers
            ]
        )
        return EXIT_OK
    if not callers:
        ctx.out.print("No callers (add one: broker-tokens callers add NAME --accounts ... --actions read).")
        return EXIT_OK
    rows = [
        [
            c.name,
            ",".join(c.accounts),
            ",".join(sorted(c.actions)),
            c.principal_arn or "API key",
            local_time(datetime.fromisoformat(c.created_at), zone) if c.created_at else "-",
            "unknown" if used is None else (local_time(last_use(c), zone) if last_use(c) else "not in 30 days"),
        ]
        for c in callers
    ]
    headers = ["caller", "accounts", "actions", "authenticates with", "created", "last used"]
    ctx.out.print(render_table(headers, rows))
    if used is None:
        ctx.out.note("last used: unknown here; with --stack it is read from the token API's logs (30 days).")
    return EXIT_OK


def iso_or_unknown(moment: datetime | None, *, known: bool) -> str | None:
    """A last-use time for JSON: ISO, None (not used in the window), or "unknown".

    Example:
        >>> iso_or_unknown(None, known=False), iso_or_unknown(None, known=True)
        ('unknown', None)
    """
    if not known:
        return "unknown"
    return moment.isoformat() if moment else None


def revoke_caller(ctx: Context) -> int:
    """Delete a caller.

    Example: ``broker-tokens callers revoke bot``
    """
    if not store(ctx).revoke(ctx.args.name):
        raise CliError(f"no caller named '{ctx.args.name}' (see `broker-tokens callers list`)")
    ctx.out.print(
        f"Revoked caller '{ctx.args.name}': its key stops working within {WINDOW} s "
        "(the token API remembers a key that long)."
    )
    return EXIT_OK
