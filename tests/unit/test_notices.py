"""Messages: what each outcome says, escaping for Telegram, the 4096 limit, what the notifier relays."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from infra.local.simulators.base import RefusedError
from infra.local.simulators.telegram import parse_html

from broker_tokens.alerts import NOTICE_ATTRIBUTE
from broker_tokens.config import run_times
from broker_tokens.errors import ErrorKind
from broker_tokens.models import AccountState, Notice, Outcome
from broker_tokens.notices import (
    TELEGRAM_LIMIT,
    account_notice,
    awaiting_notice,
    cause,
    next_run_time,
    plain_text,
    summary_notice,
    telegram_html,
)
from broker_tokens.relay import notice_from_sns

IST = ZoneInfo("Asia/Kolkata")
HOSTILE = '<script>alert("x")</script> & <b>bold</b> &amp; <a href="javascript:x">y</a> >'


@pytest.mark.parametrize(
    ("outcome", "kind", "action"),
    [
        (
            Outcome("a1", "angelone", AccountState.NEEDS_ATTENTION, error_kind=ErrorKind.PERMANENT, error="bad PIN"),
            "needs-attention",
            "Update the password/credentials: broker-tokens accounts update a1",
        ),
        (
            Outcome("a1", "angelone", AccountState.FAILED, error_kind=ErrorKind.CONFIGURATION, error="no pin"),
            "needs-attention",
            "Update the password/credentials: broker-tokens accounts update a1",
        ),
        (
            Outcome("a1", "angelone", AccountState.FAILED, error_kind=ErrorKind.TRANSIENT, error="timeout"),
            "failure",
            "Nothing to do yet: the next run at 08:00 IST retries.",
        ),
        (
            Outcome("bx", "blinkx", AccountState.AWAITING_LOGIN, login_url="https://k/l"),
            "awaiting",
            "Log in: broker-tokens login bx",
        ),
        (
            Outcome("e2", "autoshares", AccountState.AWAITING_VERIFICATION),
            "awaiting",
            "Type the code the broker sent: broker-tokens verify e2 CODE",
        ),
    ],
)
def test_each_outcome_says_what_to_do(outcome: Outcome, kind: str, action: str) -> None:
    notice = account_notice(outcome, next_run="08:00 IST")
    assert notice is not None and (notice.kind, notice.action, notice.account) == (kind, action, outcome.account)


@pytest.mark.parametrize("state", [AccountState.FRESH, AccountState.HEALTHY, AccountState.DISABLED])
def test_good_outcomes_need_no_message(state: AccountState) -> None:
    outcome = Outcome("a1", "angelone", state)
    assert cause(outcome) is None and account_notice(outcome, next_run="x") is None


def test_every_field_is_escaped_and_telegram_would_accept_it() -> None:
    notice = Notice(
        "failure",
        HOSTILE,
        account=HOSTILE,
        why=HOSTILE,
        action=HOSTILE,
        links=((HOSTILE, "https://x.example/?a=1&b=<2>"), ("bad", "javascript:alert(1)")),
        lines=(HOSTILE,),
    )
    text = telegram_html(notice)
    shown = parse_html(text)  # raises as Telegram would on anything unescaped
    assert shown.count(HOSTILE) == 4 + 1  # title, why, action, line, link label
    assert "javascript:" not in text.split('href="')[-1].split('"')[0]
    assert "bad: javascript:alert(1)" in shown
    assert "<script>" not in text


def test_a_long_message_is_cut_to_telegrams_limit_keeping_what_to_do() -> None:
    outcomes = [
        Outcome(f"acct-{i:03d}", "angelone", AccountState.FAILED, error="x" * 200, error_kind=ErrorKind.TRANSIENT)
        for i in range(200)
    ]
    notice = summary_notice(outcomes, datetime(2026, 12, 2, 3, 0, tzinfo=UTC), IST)
    text = telegram_html(notice)
    assert len(text) <= TELEGRAM_LIMIT and len(parse_html(text)) <= TELEGRAM_LIMIT
    assert text.startswith("<b>08:30 IST: 0 of 200 accounts fresh</b>") and "\n…" in text


def test_the_awaiting_message_is_built_in_one_place_from_the_link() -> None:
    outcome = Outcome("bx", "blinkx", AccountState.AWAITING_LOGIN, login_url="https://broker/login")
    with_person_link = awaiting_notice(outcome, "https://person.example/p/abc")
    assert with_person_link.links == (("Log in", "https://person.example/p/abc"),)
    assert "https://person.example/p/abc" in plain_text(with_person_link)


def test_summary_counts_fresh_accounts_and_leaves_disabled_ones_out() -> None:
    notice = summary_notice(
        [
            Outcome("a1", "angelone", AccountState.FRESH),
            Outcome("p1", "pitrade", AccountState.HEALTHY),
            Outcome("off", "angelone", AccountState.DISABLED),
            Outcome("n1", "angelone", AccountState.NEEDS_ATTENTION),
        ],
        datetime(2026, 12, 2, 2, 1, tzinfo=UTC),
        IST,
    )
    assert notice.title == "07:31 IST: 2 of 3 accounts fresh"
    assert notice.lines == ("n1 needs attention: broker-tokens accounts update n1",)


def test_next_run_time_names_todays_next_run_or_tomorrows_first() -> None:
    times = run_times("cron(30 7 ? * MON-FRI *);cron(0 8 ? * MON-FRI *);cron(30 8 ? * MON-FRI *)")
    assert times == (time(7, 30), time(8, 0), time(8, 30))
    assert next_run_time(datetime(2026, 12, 2, 2, 35, tzinfo=UTC), IST, times) == "08:30 IST"
    assert next_run_time(datetime(2026, 12, 2, 3, 5, tzinfo=UTC), IST, times) == "07:30 IST (next trading day)"
    assert next_run_time(datetime(2026, 12, 2, 3, 5, tzinfo=UTC), IST, ()) == "the next scheduled run"


def sns(message: str, notice: str | None = None, subject: str | None = None) -> dict:
    attributes = {NOTICE_ATTRIBUTE: {"Type": "String", "Value": notice}} if notice else {}
    return {"Sns": {"Message": message, "Subject": subject, "MessageAttributes": attributes}}


def test_relay_reads_our_notice_and_briefs_foreign_messages() -> None:
    ours = Notice("awaiting", "bx waits for you", links=(("Log in", "https://x"),))
    assert notice_from_sns(sns("plain", ours.to_json())) == ours
    alarm = json.dumps({"AlarmName": "stack-DeadLetters", "NewStateValue": "ALARM", "NewStateReason": "1 > 0"})
    assert notice_from_sns(sns(alarm)) == Notice("relayed", "ALARM: stack-DeadLetters", why="1 > 0")
    crash = json.dumps(
        {
            "requestContext": {"functionArn": "arn:aws:lambda:ap-south-1:1:function:stack-Refresher:$LATEST"},
            "responsePayload": {"errorType": "KeyError", "errorMessage": "'x'"},
        }
    )
    assert notice_from_sns(sns(crash)).title == "stack-Refresher:$LATEST failed"  # type: ignore[union-attr]
    garbled = notice_from_sns(sns("body <b>", "{not json", subject="Subject & co"))
    assert garbled == Notice("relayed", "Subject & co", lines=("body <b>",))
    parse_html(telegram_html(garbled))


def test_the_refreshers_not_fresh_record_is_left_to_the_per_account_messages() -> None:
    record = json.dumps({"responsePayload": {"errorType": "NotFreshError", "errorMessage": "2 account(s) not fresh"}})
    assert notice_from_sns(sns(record)) is None


def test_the_simulator_refuses_what_telegram_refuses() -> None:
    for text in ("a < b", "a & b", "<b>open", "<blink>x</blink>", "<a>no href</a>", "x </b>"):
        with pytest.raises(RefusedError):
            parse_html(text)
    assert parse_html("&#60;&#x3E;&quot;") == '<>"'
