"""One-time person links, the alert's words and the pages' HTML, without I/O."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from broker_tokens.clock import WarpClock
from broker_tokens.events import EventError, parse_refresh_event
from broker_tokens.models import MAX_FAILED_COMPLETIONS, AccountState, Outcome, PendingStep
from broker_tokens.notices import awaiting_notice
from broker_tokens.person import pages
from broker_tokens.person.links import (
    MAX_LINKS_PER_STEP,
    MAX_PINNED_LINKS,
    admits,
    digest,
    issue_link,
    login_url_with_nonce,
    new_nonce,
    person_link,
    with_link,
)
from broker_tokens.redaction import scrub
from broker_tokens.state import AccountStatus, MemoryStateStore

IST = ZoneInfo("Asia/Kolkata")
STEP = PendingStep(AccountState.AWAITING_LOGIN, "log in", login_url="https://b.in/connect/login?v=3&api_key=k")


def test_the_step_stores_only_the_hash_and_admits_only_its_own_links() -> None:
    nonce = new_nonce()
    step = with_link(STEP, nonce)
    assert step.nonce_hashes == (hashlib.sha256(nonce.encode()).hexdigest(),)
    assert nonce not in repr(AccountStatus("a1", pending=step).to_item())
    assert admits(step, nonce)
    for wrong in (new_nonce(), "", None, nonce[:-1], nonce + "x", digest(nonce), nonce.upper()):
        assert not admits(step, wrong)
    assert not admits(STEP, nonce) and not admits(None, nonce)


def test_a_nonce_never_reaches_a_log_line() -> None:
    nonce = new_nonce()
    assert scrub(f"opened /login/a1?n={nonce}") == "opened /login/a1?n=***"


def test_a_step_keeps_the_links_it_sent_and_its_newest_others() -> None:
    sent = [new_nonce() for _ in range(MAX_PINNED_LINKS + 1)]  # the alert's, then the summaries'
    shown = [new_nonce() for _ in range(MAX_LINKS_PER_STEP + 1)]  # `broker-tokens login`, the API's /login
    step = STEP
    for nonce in sent:
        step = with_link(step, nonce, pinned=True)
    for nonce in shown:
        step = with_link(step, nonce)
    assert not admits(step, sent[0]) and all(admits(step, n) for n in sent[1:])  # the newest sent ones stay
    kept = MAX_LINKS_PER_STEP - MAX_PINNED_LINKS
    assert all(admits(step, n) for n in shown[-kept:]) and not any(admits(step, n) for n in shown[:-kept])


def test_the_login_url_carries_the_nonce_back_through_redirect_params() -> None:
    nonce = new_nonce()
    url = login_url_with_nonce(STEP.login_url or "", nonce)
    params = parse_qs(urlsplit(url).query)
    assert params["api_key"] == ["k"] and params["redirect_params"] == [f"n={nonce}"]
    # The broker appends the decoded redirect_params as is: the callback then reads n=<nonce>.
    assert parse_qs(params["redirect_params"][0]) == {"n": [nonce]}
    assert person_link("https://p.example/", "a1", nonce) == f"https://p.example/login/a1?n={nonce}"
    with pytest.raises(ValueError):
        person_link("https://p.example", "../a1", nonce)


def test_a_link_dies_with_its_step() -> None:
    clock = WarpClock()
    store = MemoryStateStore(clock)
    now = clock.now()
    assert issue_link(store, "a1", "v1", now) is None  # no open step
    step = replace(STEP, expires_at=now + timedelta(hours=2))
    store.put(AccountStatus("a1", credentials_version="v1", pending=step))
    assert issue_link(store, "a1", "v2", now) is None  # the credentials changed: that step is not open
    nonce = issue_link(store, "a1", "v1", now)
    assert nonce and admits(store.get("a1").pending, nonce)
    assert store.get("a1").pending_for("v1", now + timedelta(hours=3)) is None  # expired
    spent = replace(store.get("a1").pending or STEP, failures=MAX_FAILED_COMPLETIONS)
    assert AccountStatus("a1", credentials_version="v1", pending=spent).pending_for("v1", now) is None


def test_the_refresher_event_carries_a_nonce_or_asks_for_a_link() -> None:
    request = parse_refresh_event({"complete": {"account": "a1", "value": "tok123", "nonce": "n" * 43}})
    assert request.complete == ("a1", "tok123") and request.nonce == "n" * 43
    assert parse_refresh_event({"link": {"account": "a1"}}).link == "a1"
    for bad in ({"complete": {"account": "a1", "value": "t", "nonce": 5}}, {"link": {"account": "../x"}}):
        with pytest.raises(EventError):
            parse_refresh_event(bad)


def test_the_alert_says_where_to_tap_and_until_when() -> None:
    expires = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
    waiting = Outcome("blinkx-main", "blinkx", AccountState.AWAITING_LOGIN)
    login = awaiting_notice(waiting, "https://p/l", expires_at=expires, zone=IST)
    assert login.title == "blinkx-main waits for you" and login.links == (("Log in", "https://p/l"),)
    assert "until 09:30 IST" in login.action and "works once" in login.action
    code = awaiting_notice(Outcome("etna-main", "autoshares", AccountState.AWAITING_VERIFICATION), None)
    assert code.links == () and "broker-tokens verify etna-main CODE" in code.action


def test_pages_escape_every_value_and_allow_only_their_own_style() -> None:
    hostile = '<script>alert(1)</script>"'
    page = pages.failed("a1", hostile, retry_href='/login/a1?n=x"><script>')
    assert "<script>" not in page.html and "&lt;script&gt;" in page.html
    assert "<script" not in pages.start_login("a1", hostile, 'javascript:"><b>').html
    style = re.search(r"<style>(.*?)</style>", page.html, re.S)
    assert style is not None
    expected = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{expected}'" in pages.CONTENT_SECURITY_POLICY
    for directive in ("default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in pages.CONTENT_SECURITY_POLICY
    assert pages.HEADERS["Cache-Control"] == "no-store" and pages.HEADERS["Referrer-Policy"] == "no-referrer"


def test_the_done_page_says_until_when_as_a_person_would() -> None:
    now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 07:30 IST
    page = pages.done("blinkx-main", datetime(2026, 11, 25, 0, 30, tzinfo=UTC), IST, now)
    assert "Done: blinkx-main is fresh until 06:00 IST tomorrow" in page.html
    early = pages.done("blinkx-main", datetime(2026, 11, 24, 0, 30, tzinfo=UTC), IST, now - timedelta(hours=3),
                       fresh=False)  # fmt: skip
    assert "Done: blinkx-main is logged in until 06:00 IST today" in early.html
