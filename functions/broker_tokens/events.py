"""The refresher's event: whatever EventBridge Scheduler sends, optionally naming accounts or forcing.

Public contract (docs/contract.md): ``{"accounts": ["a", "b"], "force": false}``, both keys optional. The token
API and the person pages add ``{"complete": {"account": ..., "value": ..., "nonce": ...}}`` when they hand a
person-completed login to the refresher (which, unlike them, may read credentials); ``nonce`` (the person
link's, never logged) comes from the person pages only. ``{"link": {"account": ...}}`` asks for a new
one-time link to the account's open person login (the token API, which may not write the state table).
The end-of-day schedule sends ``{"action": "logout"}`` (optionally with ``accounts``): the same function
logs the day's tokens out (``action`` defaults to ``refresh``, so every earlier event means what it meant).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from broker_tokens.models import Source, is_account_id

ACTIONS = ("refresh", "logout")


class EventError(ValueError):
    """An event the refresher cannot act on; the message names the field."""


@dataclass(frozen=True)
class RefreshRequest:
    """What a run is asked to do.

    Example:
        >>> request = parse_refresh_event({"accounts": ["angel-main"], "force": True})
        >>> request.accounts, request.force, request.source.value, request.complete, request.logout
        (('angel-main',), True, 'schedule', None, False)
        >>> parse_refresh_event({"action": "logout"}).logout
        True
    """

    accounts: tuple[str, ...] | None = None
    force: bool = False
    source: Source = Source.SCHEDULE
    complete: tuple[str, str] | None = None  # (account, request token or code)
    nonce: str | None = None  # the person link's nonce that came with it (the person surface)
    link: str | None = None  # an account whose open person login wants a new one-time link (the token API)
    logout: bool = False  # {"action": "logout"}: the end-of-day logout instead of a refresh

    @property
    def scheduled_full_run(self) -> bool:
        """True for a schedule's run of every account: the only run whose report speaks for all.

        The market-open alarm (AccountsNotFresh) follows these runs only: a refresh of one account
        through the API or the CLI must neither set nor clear it.

        Example:
            >>> parse_refresh_event({}).scheduled_full_run, parse_refresh_event({"accounts": ["a1"]}).scheduled_full_run
            (True, False)
        """
        return (
            self.source is Source.SCHEDULE
            and self.accounts is None
            and self.complete is None
            and self.link is None
            and not self.logout
        )


def parse_refresh_event(event: Any) -> RefreshRequest:
    """Read the optional keys; anything else EventBridge adds is ignored."""
    if event is None:
        return RefreshRequest()
    if not isinstance(event, Mapping):
        raise EventError("the event must be a JSON object")
    accounts = event.get("accounts")
    if accounts is not None:
        if not isinstance(accounts, list) or not all(isinstance(a, str) and is_account_id(a) for a in accounts):
            raise EventError("'accounts' must be a list of account ids ([a-z0-9][a-z0-9-]{0,62})")
        accounts = tuple(accounts)
    force = event.get("force", False)
    if not isinstance(force, bool):
        raise EventError("'force' must be true or false")
    source = event.get("source", Source.SCHEDULE.value)
    # Only the logout itself writes a logout record: a refresh stamped "logout" would read as logged out.
    if source not in {s.value for s in Source} or source == Source.LOGOUT.value:
        source = Source.SCHEDULE.value
    complete = event.get("complete")
    pair, nonce = None, None
    if complete is not None:
        if not isinstance(complete, Mapping) or not is_account_id(str(complete.get("account", ""))):
            raise EventError("'complete.account' must be an account id")
        if not isinstance(complete.get("value"), str) or not complete["value"]:
            raise EventError("'complete.value' must be the request token or code")
        pair = (str(complete["account"]), str(complete["value"]))
        nonce = complete.get("nonce")
        if nonce is not None and (not isinstance(nonce, str) or not nonce):
            raise EventError("'complete.nonce' must be the person link's nonce")
    link = event.get("link")
    if link is not None and (not isinstance(link, Mapping) or not is_account_id(str(link.get("account", "")))):
        raise EventError("'link.account' must be an account id")
    action = event.get("action", "refresh")
    if action not in ACTIONS:
        raise EventError("'action' must be 'refresh' or 'logout'")
    if action == "logout" and (pair or force or link):
        raise EventError("'action': 'logout' takes only 'accounts' (no 'force', 'complete' or 'link')")
    return RefreshRequest(
        link=str(link["account"]) if link is not None else None,
        accounts=accounts or None,
        force=force,
        source=Source(source),
        complete=pair,
        nonce=nonce,
        logout=action == "logout",
    )
