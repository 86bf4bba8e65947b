"""Redaction masks every spelling of a registered secret; the refresher's event is parsed strictly."""

from __future__ import annotations

import logging

import pytest

from broker_tokens.events import EventError, parse_refresh_event
from broker_tokens.logs import RedactingFormatter
from broker_tokens.redaction import Redactor, register


def test_masks_plain_json_and_url_spellings() -> None:
    r = Redactor()
    r.add('p@ss"word 1')
    assert r.scrub('pw=p@ss"word 1') == "pw=***"
    assert r.scrub('{"pw": "p@ss\\"word 1"}') == '{"pw": "***"}'
    assert r.scrub("pw=p%40ss%22word%201") == "pw=***"
    assert r.scrub("pw=p%40ss%22word+1") == "pw=***"


def test_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    r = Redactor()
    r.add("abcd", "abcdefgh")
    assert r.scrub("x abcdefgh y") == "x *** y"


def test_formatter_masks_message_extra_and_traceback() -> None:
    register("t0p-s3cret-v4lue")
    try:
        raise RuntimeError("failed with t0p-s3cret-v4lue")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "got %s", ("t0p-s3cret-v4lue",), sys.exc_info())
    record.detail = "t0p-s3cret-v4lue"
    line = RedactingFormatter().format(record)
    assert "t0p-s3cret-v4lue" not in line
    assert "***" in line


def test_schedule_event_means_all_accounts() -> None:
    request = parse_refresh_event({"version": "0", "detail-type": "Scheduled Event"})
    assert request.accounts is None and request.force is False and request.logout is False


def test_the_logout_schedules_event_asks_for_the_logout_of_all_or_some_accounts() -> None:
    assert parse_refresh_event({"action": "logout"}).logout is True
    request = parse_refresh_event({"action": "logout", "accounts": ["a1"], "detail-type": "Scheduled Event"})
    assert request.logout and request.accounts == ("a1",)
    assert parse_refresh_event({"action": "refresh", "force": True}).logout is False
    # A refresh can never be stamped as a logout: its fresh token would read as logged out.
    assert parse_refresh_event({"source": "logout"}).source.value == "schedule"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"accounts": "a"}, "accounts"),
        ({"accounts": ["Bad_Id"]}, "accounts"),
        ({"force": "yes"}, "force"),
        ([], "object"),
        ({"complete": {"account": "a1"}}, "complete.value"),
        ({"action": "log-out"}, "action"),
        ({"action": "logout", "force": True}, "action"),
        ({"action": "logout", "complete": {"account": "a1", "value": "x"}}, "action"),
    ],
)
def test_bad_events_name_the_field(event: object, field: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_refresh_event(event)
    assert field in str(caught.value)
