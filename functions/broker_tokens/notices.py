"""Messages a person acts on, composed once and rendered twice: plain text for e-mail, HTML for Telegram.

Each message says what happened, to which account, why in one line, and what to do: the link for a
login that waits for a person, the command that updates the credentials for a rejection, the time of
the next run for a transient failure. The morning summary says how many accounts are fresh and who
still waits.

Telegram's HTML parse mode accepts a handful of tags (b, i, u, s, a href, code, pre, blockquote) and
only the entities &lt; &gt; &amp; &quot;; any other ``<`` or ``&`` makes the Bot API refuse the whole
message ("can't parse entities"). So every value is passed through :func:`html.escape`, links are
``<a href>`` with an escaped http(s) URL, and a message is kept under the 4096-character limit.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, time
from zoneinfo import ZoneInfo

from broker_tokens.errors import ErrorKind
from broker_tokens.models import AccountState, Notice, Outcome

TELEGRAM_LIMIT = 4096
# Telegram accepts links to these schemes only; anything else is shown as text.
LINK_SCHEMES = ("https://", "http://")


def cause(outcome: Outcome) -> str | None:
    """What a message about this outcome is about (the de-duplication key), or None when nobody must act.

    Example:
        >>> cause(Outcome("a1", "angelone", AccountState.FAILED, error_kind=ErrorKind.TRANSIENT))
        'failed-transient'
        >>> cause(Outcome("a1", "angelone", AccountState.FRESH)) is None
        True
    """
    if outcome.state.awaits_person:
        return outcome.state.value
    if outcome.state is AccountState.NEEDS_ATTENTION:
        return "needs-attention"
    if outcome.state is AccountState.FAILED:
        return f"failed-{(outcome.error_kind or ErrorKind.TRANSIENT).value}"
    return None


def account_notice(outcome: Outcome, *, next_run: str) -> Notice | None:
    """The message an outcome calls for, or None (fresh, healthy, disabled, expiring after a login).

    Example:
        >>> account_notice(Outcome("a1", "angelone", AccountState.FAILED, error="timeout"),
        ...                next_run="08:00 IST").action
        'Nothing to do yet: the next run at 08:00 IST retries.'
    """
    if outcome.state.awaits_person:
        return awaiting_notice(outcome, None)
    account = outcome.account
    if outcome.state is AccountState.NEEDS_ATTENTION or (
        outcome.state is AccountState.FAILED and outcome.error_kind is ErrorKind.CONFIGURATION
    ):
        kind, title, fallback = "needs-attention", f"{account} needs attention", "the broker rejected the login"
        action = f"Update the password/credentials: broker-tokens accounts update {account}"
    elif outcome.state is AccountState.FAILED:
        kind, title, fallback = "failure", f"{account} failed to refresh", "the login failed"
        action = f"Nothing to do yet: the next run at {next_run} retries."
    else:
        return None
    return Notice(kind, title, account=account, why=one_line(outcome.error) or fallback, action=action)


def awaiting_notice(
    outcome: Outcome, link: str | None, *, expires_at: datetime | None = None, zone: ZoneInfo | None = None
) -> Notice:
    """The message for a login that waits for a person, with the link to open (the one place it is built).

    ``link`` is the step's one-time person link (None without person pages: then the CLI command);
    ``expires_at`` says until when it works.

    Example:
        >>> n = awaiting_notice(Outcome("bx", "blinkx", AccountState.AWAITING_LOGIN), "https://example.com/l/1")
        >>> n.title, n.links
        ('bx waits for you', (('Log in', 'https://example.com/l/1'),))
    """
    verification = outcome.state is AccountState.AWAITING_VERIFICATION
    if link:
        until = f", until {clock_time(expires_at, zone)}" if expires_at and zone else ""
        action = f"Open the link and finish the login; it works once, for this login only{until}."
    elif verification:
        action = f"Type the code the broker sent: broker-tokens verify {outcome.account} CODE"
    else:
        action = f"Log in: broker-tokens login {outcome.account}"
    return Notice(
        "awaiting",
        f"{outcome.account} waits for you",
        account=outcome.account,
        why="the broker sent a code by e-mail or SMS" if verification else "the broker wants a browser login",
        action=action,
        links=(("Enter the code" if verification else "Log in", link),) if link else (),
    )


def summary_notice(
    outcomes: Sequence[Outcome], at: datetime, zone: ZoneInfo, *, links: Mapping[str, str] | None = None
) -> Notice:
    """The morning summary: how many accounts are fresh, and a line (and link) per account that is not.

    ``links`` holds a one-time person link per waiting account (where there are person pages).

    Example:
        >>> from datetime import UTC
        >>> n = summary_notice([Outcome("a1", "angelone", AccountState.FRESH),
        ...                     Outcome("bx", "blinkx", AccountState.AWAITING_LOGIN)],
        ...                    datetime(2026, 12, 2, 2, 1, tzinfo=UTC), ZoneInfo("Asia/Kolkata"), links={"bx": "https://x/l"})
        >>> n.title, n.lines
        ('07:31 IST: 1 of 2 accounts fresh', ('bx waits for you',))
    """
    counted = [o for o in outcomes if o.state is not AccountState.DISABLED]
    fresh = sum(1 for o in counted if o.state.is_good)
    lines: list[str] = []
    found: list[tuple[str, str]] = []
    for o in counted:
        if o.state.is_good:
            continue
        if o.state.awaits_person:
            lines.append(f"{o.account} waits for you")
            link = (links or {}).get(o.account)
            if link:
                found.append((f"Log in: {o.account}" if len(counted) - fresh > 1 else "Log in", link))
        elif o.state is AccountState.NEEDS_ATTENTION:
            lines.append(f"{o.account} needs attention: broker-tokens accounts update {o.account}")
        else:
            lines.append(f"{o.account} is {o.state.value}: {one_line(o.error) or 'see broker-tokens status'}")
    return Notice(
        "summary",
        f"{clock_time(at, zone)}: {fresh} of {len(counted)} accounts fresh",
        lines=tuple(lines),
        links=tuple(found),
    )


def trial_notice(at: datetime, zone: ZoneInfo, channels: Sequence[str]) -> Notice:
    """What `broker-tokens alerts test` sends.

    Example:
        >>> from datetime import UTC
        >>> trial_notice(datetime(2026, 12, 2, 2, 1, tzinfo=UTC), ZoneInfo("Asia/Kolkata"), ["e-mail"]).title
        'broker-tokens test message, 07:31 IST'
    """
    return Notice(
        "test",
        f"broker-tokens test message, {clock_time(at, zone)}",
        why="sent by `broker-tokens alerts test`",
        action="Nothing to do: alerts reach you through " + ", ".join(channels) + ".",
    )


def relayed_notice(subject: str | None, message: str) -> Notice:
    """Anything else on the alert topic (a CloudWatch alarm, a Lambda failure record), shown in brief.

    Example:
        >>> relayed_notice(None, '{"AlarmName": "x-DeadLetters", "NewStateValue": "ALARM",'
        ...                ' "NewStateReason": "1 message"}').title
        'ALARM: x-DeadLetters'
    """
    try:
        data = json.loads(message)
    except ValueError:
        data = None
    if isinstance(data, dict) and "AlarmName" in data:
        return Notice(
            "relayed",
            f"{data.get('NewStateValue', 'ALARM')}: {data['AlarmName']}",
            why=one_line(str(data.get("NewStateReason", ""))) or None,
        )
    if isinstance(data, dict) and isinstance(data.get("responsePayload"), dict):
        payload = data["responsePayload"]
        function = str(data.get("requestContext", {}).get("functionArn", "a function")).rsplit(":", 2)[-2:]
        return Notice(
            "relayed",
            f"{':'.join(function)} failed",
            why=one_line(f"{payload.get('errorType', 'Error')}: {payload.get('errorMessage', '')}"),
        )
    return Notice("relayed", one_line(subject) or "broker-tokens alert", lines=(message[:TELEGRAM_LIMIT],))


def plain_text(notice: Notice) -> str:
    """The e-mail body.

    Example:
        >>> print(plain_text(Notice("awaiting", "bx waits for you", why="a browser login",
        ...                         action="Open the link.", links=(("Log in", "https://x/l"),))))
        bx waits for you
        Why: a browser login
        What to do: Open the link.
        Log in: https://x/l
    """
    parts = [notice.title]
    if notice.why:
        parts.append(f"Why: {notice.why}")
    parts.extend(notice.lines)
    if notice.action:
        parts.append(f"What to do: {notice.action}")
    parts.extend(f"{label}: {url}" for label, url in notice.links)
    return "\n".join(parts)


def telegram_html(notice: Notice) -> str:
    """The Telegram message (parse_mode HTML): every value escaped, links as ``<a href>``, at most 4096 chars.

    Example:
        >>> telegram_html(Notice("failure", "a<b> & co failed", why="x > y"))
        '<b>a&lt;b&gt; &amp; co failed</b>\\nWhy: x &gt; y'
    """
    head = [f"<b>{esc(notice.title)}</b>"]
    if notice.why:
        head.append(f"Why: {esc(notice.why)}")
    tail = []
    if notice.action:
        tail.append(f"What to do: {esc(notice.action)}")
    tail.extend(link(label, url) for label, url in notice.links)
    body = [esc(line) for line in notice.lines]
    # Keep the title, the reason and what to do; drop body lines from the end until it fits.
    kept = len(body)
    while kept and len("\n".join(head + body[:kept] + ["…"] + tail)) > TELEGRAM_LIMIT:
        kept -= 1
    text = "\n".join(head + body[:kept] + (["…"] if kept < len(body) else []) + tail)
    return text if len(text) <= TELEGRAM_LIMIT else text[: TELEGRAM_LIMIT - 1].rsplit("\n", 1)[0] + "\n…"


def link(label: str, url: str) -> str:
    """An ``<a href>`` for an http(s) URL, or the escaped text of anything else.

    Example:
        >>> link("Log in", "https://x/l?a=1&b=2")
        '<a href="https://x/l?a=1&amp;b=2">Log in</a>'
        >>> link("Log in", "javascript:alert(1)")
        'Log in: javascript:alert(1)'
    """
    if url.startswith(LINK_SCHEMES):
        return f'<a href="{esc(url)}">{esc(label)}</a>'
    return f"{esc(label)}: {esc(url)}"


def esc(value: str) -> str:
    """HTML-escape a value for Telegram (quotes too, so it is safe inside an attribute).

    Example:
        >>> esc('<b> & "x"')
        '&lt;b&gt; &amp; &quot;x&quot;'
    """
    return html.escape(value, quote=True)


def one_line(text: str | None) -> str:
    """The first line of a text, at most 300 characters.

    Example:
        >>> one_line("first\\nsecond")
        'first'
    """
    first = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return first if len(first) <= 300 else first[:299] + "…"


def clock_time(at: datetime, zone: ZoneInfo) -> str:
    """``HH:MM IST`` (the zone's abbreviation).

    Example:
        >>> from datetime import UTC
        >>> clock_time(datetime(2026, 12, 2, 2, 30, tzinfo=UTC), ZoneInfo("Asia/Kolkata"))
        '08:00 IST'
    """
    return at.astimezone(zone).strftime("%H:%M %Z")


def next_run_time(at: datetime, zone: ZoneInfo, run_times: Sequence[time]) -> str:
    """When the next scheduled run starts, as ``HH:MM IST`` (today's next, else tomorrow's first).

    Example:
        >>> from datetime import UTC
        >>> next_run_time(datetime(2026, 12, 2, 2, 1, tzinfo=UTC), ZoneInfo("Asia/Kolkata"), [time(7, 30), time(8, 0)])
        '08:00 IST'
    """
    local = at.astimezone(zone)
    later = [t for t in sorted(run_times) if t > local.time().replace(tzinfo=None)]
    if later:
        return f"{later[0].strftime('%H:%M')} {local.strftime('%Z')}"
    if run_times:
        return f"{min(run_times).strftime('%H:%M')} {local.strftime('%Z')} (next trading day)"
    return "the next scheduled run"
