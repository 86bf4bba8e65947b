"""The person pages' HTML: small, phone first, no framework, no external asset, every value escaped.

The only style is one inline ``<style>`` block allowed by its hash in a strict Content-Security-Policy
(nothing else may load, run, frame the page or be posted anywhere but here). Every answer is
``no-store`` and sends no Referer: a callback URL carries a request token and a link nonce.

Stable element ids for scripts and browser tests: ``page-start``, ``page-code``, ``page-done``,
``page-failed``, ``page-invalid``, ``page-missing`` (the ``<main>``), ``login`` (the broker link),
``code`` and ``submit`` (the code form).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

STYLE = (
    "body{margin:0;font:18px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1f24;"
    "background:#f6f7f9}main{max-width:30rem;margin:0 auto;padding:1.5rem 1.25rem}"
    "h1{font-size:1.35rem;line-height:1.3;margin:.5rem 0 1rem}p{margin:0 0 1rem}"
    ".button,button{display:block;box-sizing:border-box;width:100%;padding:.9rem 1rem;border:0;"
    "border-radius:.6rem;background:#0b5fff;color:#fff;font:inherit;font-weight:600;text-align:center;"
    "text-decoration:none}input{display:block;box-sizing:border-box;width:100%;padding:.8rem;margin:0 0 1rem;"
    "font:inherit;font-size:1.6rem;letter-spacing:.3rem;text-align:center;border:1px solid #9aa4b2;"
    "border-radius:.6rem}label{display:block;margin:0 0 .4rem}.done h1{color:#0a7a3d}.bad h1{color:#b42318}"
    "small{color:#5b6472}"
)
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class Page:
    """A rendered page and its HTTP status.

    Example:
        >>> missing().status
        404
    """

    status: int
    html: str


def _page(status: int, page_id: str, title: str, body: str, *, tone: str = "") -> Page:
    css_class = f' class="{tone}"' if tone else ""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(title)} - broker-tokens</title><style>{STYLE}</style></head>"
        f'<body><main id="{page_id}"{css_class}>{body}</main></body></html>'
    )
    return Page(status, html)


def start_login(account: str, broker_title: str, href: str) -> Page:
    """The start of an awaited browser login: one button to the broker's login page.

    Example:
        >>> 'id="login"' in start_login("blinkx-main", "BlinkX", "https://b/connect/login?v=3").html
        True
    """
    body = (
        f"<h1>{escape(account)} is waiting for your login</h1>"
        f"<p>Log in at {escape(broker_title)} as usual; you come back here when it is done.</p>"
        f'<a id="login" class="button" href="{escape(href)}" rel="noreferrer">Log in at {escape(broker_title)}</a>'
    )
    return _page(200, "page-start", f"{account}: log in", body)


def code_form(account: str, broker_title: str, action: str, nonce: str, *, error: str = "") -> Page:
    """The e-mailed-code form (a numeric one-time-code field), posting back here with the link's nonce.

    Example:
        >>> 'autocomplete="one-time-code"' in code_form("etna-main", "AutoShares", "/code/etna-main", "n").html
        True
    """
    warning = f'<p id="error">{escape(error)}</p>' if error else ""
    body = (
        f"<h1>Enter the code {escape(broker_title)} sent you</h1>"
        f"<p>{escape(account)} is waiting for the code from your e-mail or SMS.</p>{warning}"
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="n" value="{escape(nonce)}">'
        '<label for="code">Code</label>'
        '<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]*" '
        'maxlength="64" required autofocus>'
        '<button id="submit" type="submit">Send the code</button></form>'
    )
    return _page(200, "page-code", f"{account}: code", body)


def done(account: str, expires_at: datetime | None, zone: ZoneInfo, now: datetime, *, fresh: bool = True) -> Page:
    """The login worked: until when the account is fresh (``fresh=False``: stored, but dying early).

    Example:
        >>> from datetime import UTC
        >>> page = done("blinkx-main", datetime(2026, 11, 25, 0, 30, tzinfo=UTC), ZoneInfo("Asia/Kolkata"),
        ...             datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
        >>> "Done: blinkx-main is fresh until 06:00 IST tomorrow" in page.html
        True
    """
    until = f" until {when(expires_at, zone, now)}" if expires_at else ""
    if fresh:
        title, note = f"Done: {account} is fresh{until}", ""
    else:
        title = f"Done: {account} is logged in{until}"
        note = "<p>That is before the trading day ends (the broker's daily reset): log in again after it.</p>"
    body = (
        f"<h1>{escape(title)}</h1>{note}"
        "<p>The token is stored; your bots read it as usual. You can close this page.</p>"
    )
    return _page(200, "page-done", f"{account}: done", body, tone="done")


def failed(account: str, reason: str, *, retry_href: str | None) -> Page:
    """A completion the broker refused: what happened, and that the login is still open (or not).

    Example:
        >>> 'id="login"' in failed("blinkx-main", "the code was wrong", retry_href="/login/blinkx-main?n=x").html
        True
    """
    if retry_href:
        next_step = (
            "<p>Nothing was stored and the login is still open: try again.</p>"
            f'<a id="login" class="button" href="{escape(retry_href)}" rel="noreferrer">Try again</a>'
        )
    else:
        next_step = (
            "<p>Nothing was stored. The next scheduled run starts a new login and sends a new link; "
            f"or run <code>broker-tokens login {escape(account)}</code>.</p>"
        )
    body = f"<h1>{escape(account)} is not logged in</h1><p>{escape(reason)}</p>{next_step}"
    return _page(409, "page-failed", f"{account}: not logged in", body, tone="bad")


def invalid_link(account: str) -> Page:
    """A wrong, used, expired or missing link: the same words for each, nothing changed.

    Example:
        >>> invalid_link("blinkx-main").status
        403
    """
    body = (
        "<h1>This link does not work</h1>"
        "<p>It is wrong, already used, or expired, or the login it was for is over. Nothing was changed.</p>"
        f"<p>If {escape(account)} still needs you, open the link in the newest alert, or run "
        f"<code>broker-tokens login {escape(account)}</code> for a new one.</p>"
    )
    return _page(403, "page-invalid", "link not valid", body, tone="bad")


def bad_request(reason: str) -> Page:
    """A request the page cannot use (a cancelled login, a malformed code): what to do instead.

    Example:
        >>> bad_request("no code").status
        400
    """
    body = f"<h1>That did not work</h1><p>{escape(reason)}</p><p>Open the link from the alert again.</p>"
    return _page(400, "page-failed", "not accepted", body, tone="bad")


def missing() -> Page:
    """Anything that is not a person page.

    Example:
        >>> 'id="page-missing"' in missing().html
        True
    """
    return _page(404, "page-missing", "not found", "<h1>Nothing here</h1><p>Open the link from the alert.</p>")


def when(moment: datetime, zone: ZoneInfo, now: datetime) -> str:
    """A time as a person says it: ``06:00 IST tomorrow``, ``15:30 IST today``, ``09:00 IST on 27 Nov``.

    Example:
        >>> from datetime import UTC
        >>> ist = ZoneInfo("Asia/Kolkata")
        >>> when(datetime(2026, 11, 24, 10, 0, tzinfo=UTC), ist, datetime(2026, 11, 24, tzinfo=UTC))
        '15:30 IST today'
    """
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    days = (local.date() - today).days
    day = {0: "today", 1: "tomorrow"}.get(days, f"on {local.day} {local.strftime('%b')}")
    return f"{local.strftime('%H:%M %Z')} {day}"
