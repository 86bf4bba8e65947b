"""The words of an alert for a login that waits for a person, with its one-tap link.

One function builds them, so every channel (the SNS e-mail, the Telegram notifier, the CLI) says the
same thing. The link holds the nonce: these words go to the person only, never to a log line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from broker_tokens.models import AccountState


@dataclass(frozen=True)
class PersonMessage:
    """An alert's subject and text.

    Example:
        >>> PersonMessage("s", "t").subject
        's'
    """

    subject: str
    text: str


def awaiting_message(
    account: str,
    broker_title: str,
    state: AccountState,
    link: str | None,
    *,
    expires_at: datetime | None,
    zone: ZoneInfo,
) -> PersonMessage:
    """What to tell the person a login waits for: where to tap, until when, and what else works.

    Example:
        >>> from datetime import UTC
        >>> m = awaiting_message("blinkx-main", "BlinkX", AccountState.AWAITING_LOGIN, "https://p/login/blinkx-main?n=x",
        ...                      expires_at=datetime(2026, 11, 24, 3, 0, tzinfo=UTC), zone=ZoneInfo("Asia/Kolkata"))
        >>> m.subject
        'broker-tokens: blinkx-main is waiting for your login'
        >>> print(m.text)
        blinkx-main (BlinkX) is waiting for your login.
        Tap to log in: https://p/login/blinkx-main?n=x
        The link works once, for this login only, until 08:30 IST.
    """
    code = state is AccountState.AWAITING_VERIFICATION
    what = "your code" if code else "your login"
    lines = [f"{account} ({broker_title}) is waiting for {what}."]
    if code:
        lines[0] = f"{account} ({broker_title}) sent you a code by e-mail or SMS and is waiting for it."
    if link:
        lines.append(f"{'Tap to enter it' if code else 'Tap to log in'}: {link}")
        until = f" until {expires_at.astimezone(zone).strftime('%H:%M %Z')}" if expires_at else ""
        lines.append(f"The link works once, for this login only,{until}.")
    else:
        command = f"broker-tokens verify {account} CODE" if code else f"broker-tokens login {account}"
        lines.append(f"No person page is configured: run `{command}`.")
    return PersonMessage(f"broker-tokens: {account} is waiting for {what}", "\n".join(lines))
