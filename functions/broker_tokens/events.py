"""The refresher's event: whatever EventBridge Scheduler sends, optionally naming accounts or forcing.

Public contract (docs/contract.md): ``{"accounts": ["a", "b"], "force": false}``, both keys optional. The token
API adds ``{"complete": {"account": ..., "value": ...}}`` when it hands a person-completed login to the
refresher (which, unlike the API, may read credentials). The end-of-day schedule sends
``{"action": "logout"}`` (optionally with ``accounts``): the same function logs the day's tokens out
(``action`` defaults to ``refresh``, so every earlier event means what it meant).
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
        return self.source is Source.SCHEDULE and self.accounts is None and self.complete is None and not self.logout


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
    pair = None
    if complete is not None:
        if not isinstance(complete, Mapping) or not is_account_id(str(complete.get("account", ""))):
            raise EventError("'complete.account' must be an account id")
        if not isinstance(complete.get("value"), str) or not complete["value"]:
            raise EventError("'complete.value' must be the request token or code")
        pair = (str(complete["account"]), str(complete["value"]))
    action = event.get("action", "refresh")
    if action not in ACTIONS:
        raise EventError("'action' must be 'refresh' or 'logout'")
    if action == "logout" and (pair or force):
        raise EventError("'action': 'logout' takes only 'accounts' (no 'force', no 'complete')")
    return RefreshRequest(
        accounts=accounts or None, force=force, source=Source(source), complete=pair, logout=action == "logout"
    )
