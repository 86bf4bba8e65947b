"""What a run tells people and remembers: the history line of every outcome, a message per account that
needs someone (at most once per account, cause and market day), and the morning summary (once a day).

The refresher hands every finished outcome and every finished run here; nothing here can fail a
refresh (a history or alert error is logged and the run goes on). The three scheduled runs, Lambda's
two retries of each and a concurrent API refresh all send a given message once: each message first
claims its mark in the state table (a conditional put), and only the claimant sends it.

The summary goes out after the first scheduled run of the day that leaves the schedule nothing to do
(every account fresh, or waiting for a person, or needing its credentials fixed), or at the last
scheduled run whatever it leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from broker_tokens.alerts import Alerts
from broker_tokens.clock import Clock
from broker_tokens.config import Settings
from broker_tokens.errors import ErrorKind
from broker_tokens.journal import SUMMARY_KEY, Journal
from broker_tokens.logs import logger
from broker_tokens.models import AccountState, HistoryEntry, Notice, Outcome, Source
from broker_tokens.notices import account_notice, awaiting_notice, cause, next_run_time, summary_notice

SUMMARY = "summary"


def schedule_can_help(outcome: Outcome) -> bool:
    """True when a later scheduled run may still make this account fresh (without a person).

    Example:
        >>> schedule_can_help(Outcome("a1", "angelone", AccountState.FAILED, error_kind=ErrorKind.TRANSIENT))
        True
        >>> schedule_can_help(Outcome("bx", "blinkx", AccountState.AWAITING_LOGIN))
        False
    """
    if outcome.state in (AccountState.EXPIRED, AccountState.EXPIRING):
        return True
    return outcome.state is AccountState.FAILED and outcome.error_kind not in (
        ErrorKind.PERMANENT,
        ErrorKind.CONFIGURATION,
    )


class Announcer:
    """Records history and sends de-duplicated messages for a Refresher.

    Example:
        >>> from broker_tokens.journal import MemoryJournal; from broker_tokens.clock import SYSTEM_CLOCK
        >>> a = Announcer(Alerts(None), MemoryJournal(), Settings(), SYSTEM_CLOCK)
        >>> a.outcome(Outcome("a1", "angelone", AccountState.FRESH), Source.SCHEDULE) is None
        True
    """

    def __init__(
        self,
        alerts: Alerts,
        journal: Journal,
        settings: Settings,
        clock: Clock,
        link_for: Callable[[str], str | None] | None = None,
    ):
        self.alerts = alerts
        # A new one-time person link to an account's open step (the summary's links), or None.
        self.link_for = link_for or (lambda account: None)
        self.journal = journal
        self.settings = settings
        self.clock = clock

    def outcome(
        self, outcome: Outcome, source: Source, *, link: str | None = None, link_expires_at: datetime | None = None
    ) -> Notice | None:
        """Keep the outcome's history line; send its message unless sent today. Returns what was sent.

        A login that waits for a person is announced once, by the attempt that opened its step, with
        ``link`` (the step's one-time person link, None without person pages, working until
        ``link_expires_at``); later runs skip the
        account while the step is open, and a new step (a new link) gets a message of its own.

        Never raises: history and alerts are for people, and the refresh they report on must go on.
        """
        now = self.clock.now()
        try:
            self.journal.record(HistoryEntry.from_outcome(outcome, now, source), self.history_ttl)
        except Exception:
            logger.exception("history not recorded", extra={"account": outcome.account})
        zone = self.settings.market_timezone
        try:
            if outcome.state.awaits_person:
                if outcome.action != "started":
                    return None
                waiting = awaiting_notice(outcome, link, expires_at=link_expires_at, zone=zone)
                return waiting if self.alerts.send(waiting) else None
            reason = cause(outcome)
            notice = account_notice(outcome, next_run=next_run_time(now, zone, self.settings.run_times))
            if reason is None or notice is None:
                return None
            return self._once(outcome.account, reason, lambda: notice, now)
        except Exception:
            logger.exception("alert not sent", extra={"account": outcome.account})
            return None

    def run_finished(self, outcomes: Sequence[Outcome], *, source: Source, whole: bool) -> Notice | None:
        """After a scheduled run of every account: the day's summary, when it is time. Returns it if sent.

        Never raises, like :meth:`outcome`.
        """
        if source is not Source.SCHEDULE or not whole or not outcomes:
            return None
        try:
            return self._summary(outcomes)
        except Exception:
            logger.exception("summary not sent")
            return None

    def _summary(self, outcomes: Sequence[Outcome]) -> Notice | None:
        now = self.clock.now()
        if any(schedule_can_help(o) for o in outcomes) and not self._last_run(now):
            return None

        def build() -> Notice:
            # Each waiting account gets a new one-time link to its open step (made only when sent).
            waiting = [o.account for o in outcomes if o.state.awaits_person]
            links = {account: link for account in waiting if (link := self.link_for(account))}
            return summary_notice(outcomes, now, self.settings.market_timezone, links=links)

        return self._once(SUMMARY_KEY, SUMMARY, build, now)

    @property
    def history_ttl(self) -> timedelta:
        """How long a history line is kept."""
        return timedelta(days=self.settings.history_days)

    def _last_run(self, now: datetime) -> bool:
        """True at (or after) the day's last scheduled run."""
        times = self.settings.run_times
        local = now.astimezone(self.settings.market_timezone)
        return bool(times) and local.time().replace(tzinfo=None) >= max(times)

    def _once(self, key: str, reason: str, build: Callable[[], Notice], now: datetime) -> Notice | None:
        """Build and send the notice if this is the day's first claim of (key, reason); the notice when sent."""
        day = now.astimezone(self.settings.market_timezone).date()
        try:
            claimed = self.journal.claim(key, day, reason, now)
        except Exception:  # better a duplicate than silence
            logger.exception("notice mark not written; sending anyway", extra={"key": key, "cause": reason})
            claimed = True
        if not claimed:
            return None
        notice = build()
        if self.alerts.send(notice):
            return notice
        try:  # not sent: let a later run try again
            self.journal.release(key, day, reason)
        except Exception:
            logger.exception("notice mark not released", extra={"key": key, "cause": reason})
        return None
