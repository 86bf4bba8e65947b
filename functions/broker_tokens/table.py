"""Plain-text tables of account outcomes, for `make run` and the CLI (colour only on a terminal)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from broker_tokens.models import AccountState, Outcome

COLOURS = {
    AccountState.FRESH: "32",
    AccountState.HEALTHY: "32",
    AccountState.EXPIRING: "33",
    AccountState.AWAITING_LOGIN: "36",
    AccountState.AWAITING_VERIFICATION: "36",
    AccountState.DISABLED: "2",
}
COLUMNS = ("account", "broker", "state", "issued", "expires", "logins", "note")


def local_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """A short local time for a table cell.

    Example:
        >>> from datetime import UTC
        >>> local_time(datetime(2026, 11, 24, 2, 0, tzinfo=UTC), ZoneInfo("Asia/Kolkata"))
        '2026-11-24 07:30 IST'
    """
    if moment is None:
        return "-"
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def outcome_table(
    outcomes: Sequence[Outcome], zone: ZoneInfo, *, colour: bool = False, logins: bool = True, actions: bool = False
) -> str:
    """Aligned columns: account, broker, state, issued, expires, logins and a note (error or login URL).

    ``logins=False`` leaves the logins column out, for a status view where nothing was logged in;
    ``actions=True`` adds what the run did (the logout report: logged-out, no-logout-at-broker...).

    Example:
        >>> print(outcome_table([Outcome("a1", "angelone", AccountState.FRESH)], ZoneInfo("UTC")))
        account  broker    state  issued  expires  logins  note
        a1       angelone  fresh  -       -        0
    """
    columns = [column for column in COLUMNS if logins or column != "logins"]
    if actions:
        columns.insert(columns.index("state") + 1, "action")
    rows = [columns]
    for o in outcomes:
        cells = {
            "account": o.account,
            "broker": o.broker or "-",
            "state": o.state.value,
            "action": o.action,
            "issued": local_time(o.issued_at, zone),
            "expires": local_time(o.expires_at, zone),
            "logins": str(o.logins),
            "note": o.login_url or o.error or "",
        }
        rows.append([cells[column] for column in columns])
    # The note runs to the end of the line, unpadded.
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns) - 1)]
    lines = []
    for index, row in enumerate(rows):
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        if colour and index > 0:
            code = COLOURS.get(outcomes[index - 1].state, "31")
            padded[2] = f"\033[{code}m{padded[2]}\033[0m"
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)
