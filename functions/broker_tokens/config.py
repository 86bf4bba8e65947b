"""Settings from the environment: every AWS resource name comes from template.yaml through here."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_PREFIX = "broker-tokens"
# The template's default schedules (FirstRun, SecondRun, ThirdRun), in the market's time zone.
DEFAULT_RUN_TIMES = (time(7, 30), time(8, 0), time(8, 30))
_CRON_TIME = re.compile(r"cron\(\s*(\d{1,2})\s+(\d{1,2})\s")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be a number, got {raw!r}") from None


def run_times(text: str | None) -> tuple[time, ...]:
    """The times of day of the scheduled runs, from EventBridge cron expressions separated by ``;``.

    Expressions that are not a plain minute and hour (a rate, a range) are left out: messages then
    say "the next scheduled run" without a time.

    Example:
        >>> run_times("cron(30 7 ? * MON-FRI *);cron(0 8 ? * MON-FRI *);rate(1 hour)")
        (datetime.time(7, 30), datetime.time(8, 0))
    """
    if not text:
        return DEFAULT_RUN_TIMES
    found = []
    for expression in text.split(";"):
        match = _CRON_TIME.match(expression.strip())
        if match and int(match[1]) < 60 and int(match[2]) < 24:
            found.append(time(int(match[2]), int(match[1])))
    return tuple(sorted(found))


def telegram_secret_name(prefix: str) -> str:
    """Where the Telegram bot token lives: beside the prefix, outside its account namespace.

    ``{prefix}/telegram/...`` could be mistaken for (or collide with) an account named ``telegram``,
    and the refresher's and token API's IAM grants cover ``{prefix}/*``; ``{prefix}-telegram/`` is
    reachable by the notifier alone.

    Example:
        >>> telegram_secret_name("broker-tokens")
        'broker-tokens-telegram/bot-token'
    """
    return f"{prefix}-telegram/bot-token"


@dataclass(frozen=True)
class Settings:
    """Runtime settings.

    Example:
        >>> Settings.from_env({"SECRET_PREFIX": "desk"}).secret_prefix
        'desk'
    """

    secret_prefix: str = DEFAULT_PREFIX
    state_table: str | None = None
    alert_topic_arn: str | None = None
    kms_key_arn: str | None = None
    lease_ttl: timedelta = timedelta(seconds=660)
    http_timeout: float = 15.0
    safety_margin: timedelta = timedelta(minutes=60)
    market_timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Kolkata"))
    trading_day_end: time = time(16, 0)
    retry_budget: timedelta = timedelta(seconds=150)
    max_workers: int = 16
    # The person surface's base URL (its Function URL): alerts carry one-time links to it.
    person_url: str | None = None
    # How long a CLI or local run may take (in Lambda the invocation's remaining time decides), and the
    # part of it kept back to record states, release leases and report.
    run_budget: timedelta = timedelta(seconds=590)
    deadline_margin: timedelta = timedelta(seconds=10)
    history_days: int = 90
    run_times: tuple[time, ...] = DEFAULT_RUN_TIMES
    telegram_chat_id: str | None = None
    telegram_api_url: str = "https://api.telegram.org"

    @property
    def telegram_secret(self) -> str:
        """The bot token secret's name for this prefix."""
        return telegram_secret_name(self.secret_prefix)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the variables template.yaml sets (and the embedded stack sets locally)."""
        env = os.environ if env is None else env
        hour, _, minute = env.get("TRADING_DAY_END", "16:00").partition(":")
        return cls(
            secret_prefix=env.get("SECRET_PREFIX") or DEFAULT_PREFIX,
            state_table=env.get("STATE_TABLE_NAME") or None,
            alert_topic_arn=env.get("ALERT_TOPIC_ARN") or None,
            kms_key_arn=env.get("SECRETS_KMS_KEY_ARN") or None,
            lease_ttl=timedelta(seconds=_number(env, "LEASE_TTL_SECONDS", 660)),
            http_timeout=_number(env, "BROKER_HTTP_TIMEOUT_SECONDS", 15.0),
            safety_margin=timedelta(minutes=_number(env, "SAFETY_MARGIN_MINUTES", 60)),
            market_timezone=ZoneInfo(env.get("MARKET_TIMEZONE") or "Asia/Kolkata"),
            trading_day_end=time(int(hour), int(minute or 0)),
            retry_budget=timedelta(seconds=_number(env, "RETRY_BUDGET_SECONDS", 150)),
            max_workers=int(_number(env, "REFRESH_MAX_WORKERS", 16)),
            person_url=env.get("PERSON_URL") or None,
            run_budget=timedelta(seconds=_number(env, "RUN_BUDGET_SECONDS", 590)),
            deadline_margin=timedelta(seconds=_number(env, "DEADLINE_MARGIN_SECONDS", 10)),
            history_days=int(_number(env, "HISTORY_DAYS", 90)),
            run_times=run_times(env.get("REFRESH_SCHEDULE")),
            telegram_chat_id=env.get("TELEGRAM_CHAT_ID") or None,
            telegram_api_url=(env.get("TELEGRAM_API_URL") or "https://api.telegram.org").rstrip("/"),
        )
