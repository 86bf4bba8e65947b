"""One-time person links: the nonce that binds a person's login (or e-mailed code) to one pending step.

A link is ``{PERSON_URL}/login/{account}?n={nonce}``. The nonce is 32 random bytes
(:func:`secrets.token_urlsafe`), shown only in the link sent to the person. The state item keeps only
its SHA-256 in the pending step, so the link works for that one account, dies with the step (its
expiry, a completed login, a newer login), and a reader of the table cannot make one. Every check
compares in constant time.

The Kite family carries the nonce through the broker's own login: a ``redirect_params`` query
parameter on the login URL (URL-encoded ``key=value&...``) is appended as is to the redirect that
brings the request token back (BROKERS.md), so the callback sees the nonce again and refuses a
redirect without it: a stranger who logs in with the account's public api_key has no nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import replace
from datetime import datetime
from urllib.parse import quote, urlencode

from broker_tokens.models import PendingStep, is_account_id
from broker_tokens.redaction import register
from broker_tokens.state import StateStore

NONCE_PARAM = "n"
NONCE_BYTES = 32
# token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
NONCE_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
# The links of a step: those sent in alerts (the step's own, the morning summary's) are pinned, the newest
# MAX_PINNED_LINKS of them kept; the rest (`broker-tokens login`, the token API's /login) fill up to
# MAX_LINKS_PER_STEP, oldest dropped first. So showing a link again never kills one the person was sent.
MAX_PINNED_LINKS = 3
MAX_LINKS_PER_STEP = 6


def new_nonce() -> str:
    """A fresh nonce, registered with the redactor so no log line can carry it.

    Example:
        >>> NONCE_SHAPE.fullmatch(new_nonce()) is not None
        True
    """
    nonce = secrets.token_urlsafe(NONCE_BYTES)
    register(nonce)
    return nonce


def digest(nonce: str) -> str:
    """The hex SHA-256 of a nonce: what the pending step stores.

    Example:
        >>> digest("abc") == hashlib.sha256(b"abc").hexdigest()
        True
    """
    return hashlib.sha256(nonce.encode()).hexdigest()


def admits(step: PendingStep | None, nonce: str | None) -> bool:
    """True when ``nonce`` is one of the open step's links (constant-time; a malformed one never is).

    Example:
        >>> from broker_tokens.models import AccountState
        >>> nonce = new_nonce()
        >>> step = with_link(PendingStep(AccountState.AWAITING_LOGIN, "log in"), nonce)
        >>> admits(step, nonce), admits(step, new_nonce()), admits(None, nonce)
        (True, False, False)
    """
    if step is None or not nonce or not NONCE_SHAPE.fullmatch(nonce):
        return False
    wanted = digest(nonce)
    # Every stored hash is compared, so the time taken does not say which one matched.
    found = [hmac.compare_digest(wanted, stored) for stored in step.nonce_hashes]
    return any(found)


def with_link(step: PendingStep, nonce: str, *, pinned: bool = False) -> PendingStep:
    """The step with one more link that may finish it: ``pinned`` for a link sent in an alert.

    Example:
        >>> from broker_tokens.models import AccountState
        >>> step = with_link(PendingStep(AccountState.AWAITING_LOGIN, "log in"), "alert", pinned=True)
        >>> for n in range(9):
        ...     step = with_link(step, f"extra-{n}")
        >>> len(step.nonce_hashes), step.pinned, step.nonce_hashes[0] == digest("alert")
        (6, 1, True)
    """
    kept, extra = step.nonce_hashes[: step.pinned], step.nonce_hashes[step.pinned :]
    if pinned:
        kept = (*kept, digest(nonce))[-MAX_PINNED_LINKS:]
    else:
        extra = (*extra, digest(nonce))
    room = MAX_LINKS_PER_STEP - len(kept)
    extra = extra[-room:] if room > 0 else ()
    return replace(step, nonce_hashes=(*kept, *extra), pinned=len(kept))


def person_link(base_url: str, account: str, nonce: str) -> str:
    """The one-tap link a person opens: the person surface's start page for this account.

    Example:
        >>> person_link("https://abc.lambda-url.ap-south-1.on.aws/", "blinkx-main", "N" * 43)[:61]
        'https://abc.lambda-url.ap-south-1.on.aws/login/blinkx-main?n='
    """
    if not is_account_id(account):
        raise ValueError("not an account id")
    return f"{base_url.rstrip('/')}/login/{account}?{urlencode({NONCE_PARAM: nonce})}"


def login_url_with_nonce(login_url: str, nonce: str) -> str:
    """A Kite-family login URL whose redirect will carry the nonce back (``redirect_params``).

    Example:
        >>> login_url_with_nonce("https://kite.zerodha.com/connect/login?v=3&api_key=k", "abc")
        'https://kite.zerodha.com/connect/login?v=3&api_key=k&redirect_params=n%3Dabc'
    """
    separator = "&" if "?" in login_url else "?"
    return f"{login_url}{separator}redirect_params={quote(urlencode({NONCE_PARAM: nonce}), safe='')}"


def issue_link(
    store: StateStore, account: str, credentials_version: str | None, now: datetime, *, pinned: bool = False
) -> str | None:
    """Add a new link to the account's open step and return its nonce; None when no step is open.

    For `broker-tokens login ACCOUNT` and the embedded stack: the alert's nonce is not kept anywhere, so
    showing a link again means making another one for the same step. A read-modify-write of the state
    item: call it holding the account's lease (as :meth:`Refresher.person_link` does), so it can never
    write back a step that a completion closed meanwhile.

    Example:
        >>> issue_link(state_store, "blinkx-main", "v1", now)  # doctest: +SKIP
        'q3Vb...'
    """
    status = store.get(account)
    step = status.pending_for(credentials_version, now)
    if step is None:
        return None
    nonce = new_nonce()
    store.put(replace(status, pending=with_link(step, nonce, pinned=pinned)))
    return nonce
