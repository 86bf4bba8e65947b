"""Alerts end to end on loopback: the refresher publishes to moto's SNS topic, a subscribed queue plays
SNS -> Lambda, the notifier handler posts to the Telegram simulator, which is as strict as the Bot API.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from infra.local.alert_tap import AlertTap, sns_event
from infra.local.lambda_context import LocalLambdaContext
from infra.local.moto_server import MotoServer
from infra.local.simulators.telegram import TelegramSimulator
from infra.local.template import LocalResources

from broker_tokens.alerts import Alerts
from broker_tokens.announce import Announcer
from broker_tokens.clock import SYSTEM_CLOCK
from broker_tokens.config import Settings, telegram_secret_name
from broker_tokens.errors import ErrorKind
from broker_tokens.journal import DynamoJournal
from broker_tokens.models import AccountState, Notice, Outcome, Source
from broker_tokens.telegram import TelegramBot, TelegramError
from notifier.app import lambda_handler as notifier
from tests.support.accounts import angel_credentials
from tests.support.harness import PREFIX, Harness
from tests.support.logsink import SECRETS, SINK, leaks, remember_secret
from tests.support.simulators import TELEGRAM_CHAT_ID

CHAT_ID = TELEGRAM_CHAT_ID
IST_0731 = datetime(2026, 12, 2, 2, 1, tzinfo=UTC)


class FixedClock:
    """A clock that stays where a test puts it."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def time(self) -> float:
        return self.at.timestamp()

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def bot_token(telegram: TelegramSimulator, moto: MotoServer, cloud: LocalResources) -> str:
    """A bot on the simulator whose token is stored where the notifier reads it."""
    token = telegram.add_bot("desk_alerts_bot")
    remember_secret(token)
    moto.client("secretsmanager").create_secret(
        Name=telegram_secret_name(PREFIX), SecretString=json.dumps({"bot_token": token})
    )
    return token


@pytest.fixture
def notifier_env(monkeypatch: pytest.MonkeyPatch, telegram: TelegramSimulator, bot_token: str) -> None:
    """The notifier's environment as template.yaml sets it, pointed at the simulator."""
    monkeypatch.setenv("SECRET_PREFIX", PREFIX)
    monkeypatch.setenv("TELEGRAM_CHAT_ID", str(CHAT_ID))
    monkeypatch.setenv("TELEGRAM_API_URL", telegram.url)


@pytest.fixture
def tap(moto: MotoServer, cloud: LocalResources) -> AlertTap:
    return AlertTap.subscribe(moto.session(), cloud.topic_arn)


def send(moto: MotoServer, cloud: LocalResources, notice: Notice) -> None:
    assert Alerts(cloud.topic_arn, client=moto.client("sns")).send(notice)


def texts(sim: TelegramSimulator) -> list[str]:
    return [message.plain for message in sim.inbox]


def broken_accounts(harness: Harness) -> None:
    """One account whose secret lacks a key (needs attention), one whose broker is unreachable (transient)."""
    harness.add_account("desk-bad", {"broker": "angelone", "api_key": "k"})
    harness.add_account(
        "desk-down",
        {
            "broker": "angelone",
            "api_key": "k2",
            "client_code": "A1",
            "pin": "975310",
            "totp_secret": "JBSWY3DPEHPK3PXP",
            "base_url": "http://127.0.0.1:9",
        },
    )


def test_values_with_html_characters_arrive_exactly_as_written(
    moto: MotoServer, cloud: LocalResources, tap: AlertTap, telegram: TelegramSimulator, notifier_env: None
) -> None:
    notice = Notice(
        "failure",
        "desk<1> & co failed to refresh",
        account="desk<1>",
        why='broker said: "<b>bad</b> & <i>worse</i>" > expected',
        action="Nothing to do yet: the next run at 08:00 IST retries.",
        links=(("Log in & go", "https://example.com/l?a=1&b=<2>"),),
    )
    send(moto, cloud, notice)
    assert tap.deliver(notifier) == 1
    (message,) = telegram.inbox
    assert message.parse_mode == "HTML"
    assert message.plain.splitlines() == [
        "desk<1> & co failed to refresh",
        'Why: broker said: "<b>bad</b> & <i>worse</i>" > expected',
        "What to do: Nothing to do yet: the next run at 08:00 IST retries.",
        "Log in & go",
    ]
    assert '<a href="https://example.com/l?a=1&amp;b=&lt;2&gt;">Log in &amp; go</a>' in message.text


def test_unescaped_html_is_refused_by_the_simulator_as_by_telegram(telegram: TelegramSimulator) -> None:
    bot = TelegramBot(telegram.add_bot("strict_bot"), api_url=telegram.url, timeout=5)
    with pytest.raises(TelegramError, match="can't parse entities"):
        bot.send(str(CHAT_ID), "a <desk> & b", deadline=SYSTEM_CLOCK.time() + 10)
    assert telegram.inbox == []


def test_429_waits_retry_after_then_sends(
    moto: MotoServer, cloud: LocalResources, tap: AlertTap, telegram: TelegramSimulator, notifier_env: None
) -> None:
    telegram.retry_after = 1
    telegram.faults.rate_limit_next(1, endpoint="sendMessage")
    send(moto, cloud, Notice("test", "hello"))
    assert tap.deliver(notifier) == 1
    assert telegram.count("sendMessage") == 2
    assert texts(telegram) == ["hello"]


def test_429_longer_than_the_time_left_raises_for_a_retry(telegram: TelegramSimulator) -> None:
    telegram.retry_after = 30
    clock = FixedClock(IST_0731)
    bot = TelegramBot(telegram.add_bot("busy_bot"), api_url=telegram.url, timeout=5, clock=clock)
    telegram.faults.rate_limit_next(1, endpoint="sendMessage")
    with pytest.raises(TelegramError, match=r"429 Too Many Requests: retry after 30.*no time left"):
        bot.send(str(CHAT_ID), "hi", deadline=clock.time() + 10)
    assert telegram.inbox == []


def test_a_5xx_is_retried(telegram: TelegramSimulator) -> None:
    bot = TelegramBot(telegram.add_bot("flaky_bot"), api_url=telegram.url, timeout=5, clock=FixedClock(IST_0731))
    telegram.faults.fail_next(1, status=502, endpoint="sendMessage")
    assert bot.send(str(CHAT_ID), "hi", deadline=FixedClock(IST_0731).time() + 60)["text"] == "hi"


def test_dead_bot_token_is_a_clear_error_and_email_still_goes(
    harness: Harness, tap: AlertTap, telegram: TelegramSimulator, bot_token: str, notifier_env: None
) -> None:
    broken_accounts(harness)
    harness.refresher(run_times=()).run(["desk-bad"])
    telegram.revoke_bot(bot_token)
    envelopes = tap.drain()
    assert len(envelopes) == 1  # the e-mail subscribers' copy went out
    assert "desk-bad needs attention" in envelopes[0]["Subject"]
    with pytest.raises(TelegramError) as raised:
        notifier(sns_event(envelopes[0]), LocalLambdaContext("notifier", timeout_seconds=30))
    assert str(raised.value) == "Telegram refused the message (401 Unauthorized): the bot token is wrong or revoked"
    assert bot_token not in str(raised.value)
    assert telegram.inbox == []


def test_blocked_chat_names_telegram_and_the_cause(telegram: TelegramSimulator) -> None:
    telegram.add_chat(7, blocked=True)
    bot = TelegramBot(telegram.add_bot("blocked_bot"), api_url=telegram.url, timeout=5)
    with pytest.raises(TelegramError, match=r"403 Forbidden: bot was blocked by the user\): the bot cannot write"):
        bot.send("7", "hi", deadline=SYSTEM_CLOCK.time() + 10)


def test_three_runs_send_one_message_per_account_and_cause(
    harness: Harness, tap: AlertTap, telegram: TelegramSimulator, bot_token: str, notifier_env: None
) -> None:
    broken_accounts(harness)
    mark = len(SINK.lines)
    refresher = harness.refresher(run_times=(time(7, 30), time(8, 0), time(23, 59, 59)))
    for _ in range(3):  # 07:30, 08:00, 08:30 (and Lambda's retries would be more of the same)
        report = refresher.run()
        assert {o.account: o.state for o in report.outcomes} == {
            "desk-bad": AccountState.FAILED,
            "desk-down": AccountState.FAILED,
        }
    envelopes = tap.drain()  # what the e-mail subscribers get, and what SNS hands the notifier
    assert len(envelopes) == 2
    for envelope in envelopes:
        notifier(sns_event(envelope), LocalLambdaContext("notifier", timeout_seconds=30))
    inbox = texts(telegram)
    assert sorted(text.splitlines()[0] for text in inbox) == ["desk-bad needs attention", "desk-down failed to refresh"]
    bad = next(text for text in inbox if text.startswith("desk-bad"))
    assert "What to do: Update the password/credentials: broker-tokens accounts update desk-bad" in bad
    down = next(text for text in inbox if text.startswith("desk-down"))
    assert "the next run at" in down and "IST retries" in down
    # No secret in any message the person received, nor in what the notifier and refresher logged.
    what_people_read = [json.dumps([e["Subject"], e["Message"], e["MessageAttributes"]]) for e in envelopes]
    assert leaks([m.text for m in telegram.inbox] + what_people_read) == []
    assert bot_token in SECRETS and leaks(SINK.since(mark)) == []


def test_awaiting_message_carries_the_login_link(
    moto: MotoServer, cloud: LocalResources, tap: AlertTap, telegram: TelegramSimulator, notifier_env: None
) -> None:
    journal = DynamoJournal(cloud.table_name, client=moto.client("dynamodb"))
    alerts = Alerts(cloud.topic_arn, client=moto.client("sns"))
    announcer = Announcer(alerts, journal, Settings(), FixedClock(IST_0731))
    link = "https://person.example/login/bx-main?n=abc&x=1"
    started = Outcome("bx-main", "blinkx", AccountState.AWAITING_LOGIN, action="started")
    assert announcer.outcome(started, Source.SCHEDULE, link=link) is not None  # the login's one message
    waiting = Outcome("bx-main", "blinkx", AccountState.AWAITING_LOGIN, action="none")
    assert announcer.outcome(waiting, Source.SCHEDULE) is None  # the 08:00 run: the step is open, already told
    tap.deliver(notifier)
    (message,) = telegram.inbox
    assert '<a href="https://person.example/login/bx-main?n=abc&amp;x=1">Log in</a>' in message.text
    assert message.plain.startswith("bx-main waits for you")


def summary_announcer(moto: MotoServer, cloud: LocalResources, clock: FixedClock) -> Announcer:
    journal = DynamoJournal(cloud.table_name, client=moto.client("dynamodb"))
    alerts = Alerts(cloud.topic_arn, client=moto.client("sns"))
    # The refresher hands a maker of new one-time links to each waiting account's open step.
    return Announcer(alerts, journal, Settings(), clock, lambda account: f"https://x.example/l/{account}")


def test_summary_once_a_day_after_the_first_run_that_leaves_nothing_to_do(
    moto: MotoServer, cloud: LocalResources, tap: AlertTap, telegram: TelegramSimulator, notifier_env: None
) -> None:
    clock = FixedClock(IST_0731)
    announcer = summary_announcer(moto, cloud, clock)
    outcomes = [Outcome(f"angel-{i}", "angelone", AccountState.FRESH) for i in range(6)]
    outcomes.append(Outcome("blinkx-main", "blinkx", AccountState.AWAITING_LOGIN))
    sent = [announcer.run_finished(outcomes, source=Source.SCHEDULE, whole=True)]
    for _ in range(2):  # 08:00 and 08:30
        clock.at += timedelta(minutes=30)
        sent.append(announcer.run_finished(outcomes, source=Source.SCHEDULE, whole=True))
    assert [n is not None for n in sent] == [True, False, False]
    clock.at += timedelta(days=1)
    assert announcer.run_finished(outcomes, source=Source.SCHEDULE, whole=True) is not None
    assert announcer.run_finished(outcomes, source=Source.API, whole=False) is None
    tap.deliver(notifier)
    first = telegram.inbox[0]
    assert first.plain.splitlines()[0] == "07:31 IST: 6 of 7 accounts fresh"
    assert "blinkx-main waits for you" in first.plain
    assert '<a href="https://x.example/l/blinkx-main">Log in</a>' in first.text
    assert len(telegram.inbox) == 2


def test_summary_waits_while_a_run_can_still_help_then_goes_at_the_last_run(
    moto: MotoServer, cloud: LocalResources, tap: AlertTap
) -> None:
    clock = FixedClock(IST_0731)
    announcer = summary_announcer(moto, cloud, clock)
    outcomes = [
        Outcome("angel-1", "angelone", AccountState.FRESH),
        Outcome("angel-2", "angelone", AccountState.FAILED, error_kind=ErrorKind.TRANSIENT, error="timeout"),
    ]
    assert announcer.run_finished(outcomes, source=Source.SCHEDULE, whole=True) is None  # 07:31
    clock.at += timedelta(minutes=30)
    assert announcer.run_finished(outcomes, source=Source.SCHEDULE, whole=True) is None  # 08:01
    clock.at += timedelta(minutes=30)
    last = announcer.run_finished(outcomes, source=Source.SCHEDULE, whole=True)  # 08:31: the last run
    assert last is not None and last.title == "08:31 IST: 1 of 2 accounts fresh"
    assert [json.loads(e["MessageAttributes"]["notice"]["Value"])["kind"] for e in tap.drain()] == ["summary"]


def test_history_keeps_every_outcome_with_a_ttl(harness: Harness, moto: MotoServer, cloud: LocalResources) -> None:
    broken_accounts(harness)
    before = datetime.now(UTC)
    harness.refresher(run_times=(), history_days=7).run(["desk-bad"])
    items = moto.client("dynamodb").scan(TableName=cloud.table_name)["Items"]
    (item,) = [i for i in items if i["sk"]["S"].startswith("run#")]
    assert item["pk"]["S"] == "desk-bad"
    assert item["state"]["S"] == "failed" and item["error_kind"]["S"] == "configuration"
    ttl = int(item["ttl"]["N"])
    expected = (before + timedelta(days=7)).timestamp()
    assert expected - 5 <= ttl <= expected + 60
    assert not any("api_key" in json.dumps(i) and '"k"' in json.dumps(i) for i in items if "run#" in i["sk"]["S"])
    history = DynamoJournal(cloud.table_name, client=moto.client("dynamodb")).history(
        "desk-bad", before - timedelta(minutes=1)
    )
    assert [(e.account, e.state, e.source) for e in history] == [("desk-bad", AccountState.FAILED, Source.SCHEDULE)]


def test_without_a_chat_id_the_notifier_leaves_alerts_to_email(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEGRAM_CHAT_ID", raising=False)
    answer: dict[str, Any] = notifier(sns_event({"Message": "x"}), LocalLambdaContext("notifier"))
    assert answer == {"sent": 0}


def test_history_of_a_real_login(harness: Harness, angel: Any, moto: MotoServer, cloud: LocalResources) -> None:
    harness.add_account("angel-main", angel_credentials(angel, "A100001", pin="2468", api_key="angel-key-1"))
    refresher = harness.refresher(run_times=())
    refresher.run(["angel-main"])
    refresher.run(["angel-main"])
    journal = DynamoJournal(cloud.table_name, client=moto.client("dynamodb"))
    history = journal.history(None, datetime.now(UTC) - timedelta(hours=1))
    assert [(e.account, e.state, e.action) for e in history] == [
        ("angel-main", AccountState.FRESH, "logged-in"),
        ("angel-main", AccountState.FRESH, "skipped"),
    ]
    assert history[0].logins == 1


def test_the_token_in_the_url_never_reaches_a_log_line_even_at_debug(
    telegram: TelegramSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    token = telegram.add_bot("chatty_bot")
    remember_secret(token)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG):
        bot = TelegramBot(token, api_url=telegram.url, timeout=5)
        bot.send(str(CHAT_ID), "hi", deadline=SYSTEM_CLOCK.time() + 10)
        with pytest.raises(TelegramError):
            TelegramBot(token, api_url="http://127.0.0.1:9", timeout=1).send("1", "x", deadline=SYSTEM_CLOCK.time() + 2)
    ours = [r for r in caplog.records if not r.name.startswith("infra.local.simulators")]  # not Telegram's own
    assert [r.getMessage() for r in ours if token in r.getMessage()] == []


def test_a_broken_history_table_neither_fails_the_refresh_nor_silences_the_alert(
    harness: Harness, moto: MotoServer, cloud: LocalResources, tap: AlertTap
) -> None:
    broken_accounts(harness)
    settings = replace(harness.settings, run_times=())
    alerts = Alerts(cloud.topic_arn, client=moto.client("sns"))
    journal = DynamoJournal("no-such-table", client=moto.client("dynamodb"))
    announcer = Announcer(alerts, journal, settings, SYSTEM_CLOCK)
    refresher = harness.refresher(run_times=())
    refresher.announcer = announcer
    report = refresher.run(["desk-bad"])
    assert [o.state for o in report.outcomes] == [AccountState.FAILED]
    assert [e["Subject"] for e in tap.drain()] == ["broker-tokens: desk-bad needs attention"]  # better twice than never
