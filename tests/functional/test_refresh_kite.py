"""The Kite family refresh end to end over loopback HTTP: Zerodha unattended, BlinkX through a person."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests
from infra.local.person import browser_login
from infra.local.simulators.base import ManualClock
from infra.local.simulators.kite import BlinkXSimulator, KiteSimulator, ZerodhaSimulator

from broker_tokens.brokers.base import Broker
from broker_tokens.brokers.kite import KITE_TIMEZONE, BlinkX
from broker_tokens.clock import WarpClock
from broker_tokens.credentials import Credentials, validate_credentials
from broker_tokens.errors import ErrorKind
from broker_tokens.models import AccountState, PendingStep, Session, parse_iso
from broker_tokens.person.links import issue_link
from tests.support.accounts import call_with_record, kite_credentials
from tests.support.harness import Harness
from tests.support.logsink import remember_secret

TIMEOUT = 5.0
CALLBACK = "http://127.0.0.1:9/callback/{account}"


@pytest.fixture
def clock() -> WarpClock:
    """Real time moved on to the next 07:30 IST, when the schedule runs.

    Before 06:00 IST a Kite token dies within the hour, so it can never be fresh for the day: tests that
    expect a skip would depend on the hour at which they run.
    """
    now = datetime.now(KITE_TIMEZONE)
    target = datetime.combine(now.date(), time(7, 30), tzinfo=KITE_TIMEZONE)
    if target <= now:
        target += timedelta(days=1)
    return WarpClock(offset=(target - now).total_seconds())


def kite_account(
    sim: KiteSimulator,
    harness: Harness,
    account: str,
    *,
    user_id: str = "AB1234",
    api_key: str = "kite-key-1",
    person_only: bool = False,
) -> dict[str, Any]:
    """An app and a user on the simulator, and the matching credentials secret."""
    password, totp_secret = f"{user_id}-pass-word", pyotp.random_base32()
    credentials = kite_credentials(
        sim,
        user_id,
        api_key=api_key,
        api_secret=f"{api_key}-secret-value",
        redirect_url=CALLBACK.format(account=account),
        password=password,
        totp_secret=totp_secret,
        user_name="Test Trader",
        person_only=person_only,
    )
    harness.add_account(account, credentials)
    remember_secret(password, totp_secret)
    return {**credentials, "password": password, "totp_secret": totp_secret}


def profile_with(sim: KiteSimulator, record: dict[str, Any]) -> requests.Response:
    """The contract: authorization + headers (+ Accept) make a valid call with nothing else."""
    return call_with_record(f"{sim.url}/user/profile", record)


def expires_at_next_0600_ist(record: dict[str, Any]) -> None:
    issued, expires = parse_iso(record["issued_at"]), parse_iso(record["expires_at"])
    local = expires.astimezone(KITE_TIMEZONE)
    assert (local.hour, local.minute, local.second) == (6, 0, 0)
    assert timedelta(0) < expires - issued <= timedelta(hours=24)


# ----- Zerodha: unattended --------------------------------------------------------------------------------


def test_zerodha_refresh_writes_a_valid_token_record(zerodha: ZerodhaSimulator, harness: Harness) -> None:
    kite_account(zerodha, harness, "zerodha-1")
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.FRESH and outcome.action == "logged-in" and outcome.logins == 1
    record = harness.token("zerodha-1")
    assert record is not None
    assert record["broker"] == "zerodha" and record["source"] == "schedule"
    assert record["authorization"] == f"token kite-key-1:{record['access_token']}"
    assert record["headers"] == {"X-Kite-Version": "3"}
    assert "refresh_token" not in record  # Kite gives "" to individual apps
    expires_at_next_0600_ist(record)
    answer = profile_with(zerodha, record)
    assert answer.status_code == 200 and answer.json()["data"]["user_id"] == "AB1234"


def test_zerodha_second_run_logs_in_zero_times(zerodha: ZerodhaSimulator, harness: Harness) -> None:
    kite_account(zerodha, harness, "zerodha-1")
    harness.refresher().run()
    version = harness.token_version("zerodha-1")
    [again] = harness.refresher().run().outcomes
    assert again.action == "skipped" and again.state is AccountState.FRESH
    assert zerodha.logins("AB1234") == 1 and zerodha.exchanges("AB1234") == 1
    assert harness.token_version("zerodha-1") == version


def test_zerodha_wrong_password_fails_once_and_is_not_retried(zerodha: ZerodhaSimulator, harness: Harness) -> None:
    credentials = kite_account(zerodha, harness, "zerodha-1")
    harness.add_account("zerodha-1", {**credentials, "password": "not-the-password"})
    refresher = harness.refresher()
    [outcome] = refresher.run().outcomes
    assert outcome.state is AccountState.NEEDS_ATTENTION and outcome.error_kind is ErrorKind.PERMANENT
    assert "password" in (outcome.error or "")
    [again] = refresher.run(force=True).outcomes
    assert again.state is AccountState.NEEDS_ATTENTION and again.logins == 0
    assert zerodha.logins("AB1234") == 1


def test_zerodha_wrong_api_secret_is_permanent_after_one_exchange(zerodha: ZerodhaSimulator, harness: Harness) -> None:
    credentials = kite_account(zerodha, harness, "zerodha-1")
    harness.add_account("zerodha-1", {**credentials, "api_secret": "a-wrong-api-secret"})
    remember_secret("a-wrong-api-secret")
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.NEEDS_ATTENTION and "api_secret" in (outcome.error or "")
    assert zerodha.exchanges("AB1234") == 1 and harness.token("zerodha-1") is None


def test_zerodha_rejected_totp_is_retried_in_the_next_window(zerodha: ZerodhaSimulator, harness: Harness) -> None:
    kite_account(zerodha, harness, "zerodha-1")
    zerodha.faults.reject_totp_next(1)
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.FRESH and outcome.logins == 2


def test_zerodha_wrong_totp_secret_ends_needing_attention(zerodha: ZerodhaSimulator, harness: Harness) -> None:
    credentials = kite_account(zerodha, harness, "zerodha-1")
    wrong = pyotp.random_base32()
    remember_secret(wrong)
    harness.add_account("zerodha-1", {**credentials, "totp_secret": wrong})
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.NEEDS_ATTENTION and outcome.error_kind is ErrorKind.PERMANENT
    assert zerodha.count("twofa", "AB1234") == 2  # one retry in the next window, then no more


@pytest.mark.parametrize("endpoint", ["web_login", "connect_finish", "session_token", "profile"])
def test_zerodha_5xx_anywhere_is_retried(zerodha: ZerodhaSimulator, harness: Harness, endpoint: str) -> None:
    kite_account(zerodha, harness, "zerodha-1")
    zerodha.faults.fail_next(1, status=503, endpoint=endpoint)
    [outcome] = harness.refresher().run().outcomes
    # A failed profile check is retried on the same session: a new login would end it (finding 3).
    assert outcome.state is AccountState.FRESH and outcome.logins == (1 if endpoint == "profile" else 2)


def test_zerodha_token_refused_right_after_the_exchange_is_transient(
    zerodha: ZerodhaSimulator, harness: Harness
) -> None:
    kite_account(zerodha, harness, "zerodha-1")
    zerodha.faults.reject_validation_next(1)
    [outcome] = harness.refresher().run().outcomes
    # The same session is checked again, not replaced by a second login that would end it (finding 3).
    assert outcome.state is AccountState.FRESH and outcome.logins == 1
    assert zerodha.count("profile") == 2 and zerodha.count("session_token") == 1


def test_zerodha_forced_login_kills_the_previous_token(zerodha: ZerodhaSimulator, harness: Harness) -> None:
    kite_account(zerodha, harness, "zerodha-1")
    harness.refresher().run()
    first = harness.token("zerodha-1")
    harness.refresher().run(force=True)
    second = harness.token("zerodha-1")
    assert first is not None and second is not None and first["access_token"] != second["access_token"]
    assert profile_with(zerodha, first).status_code == 403  # newest login wins
    assert profile_with(zerodha, second).status_code == 200
    assert harness.token("zerodha-1", "AWSPREVIOUS") == first


def test_zerodha_web_login_off_waits_for_a_person(
    zerodha: ZerodhaSimulator, harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = kite_account(zerodha, harness, "zerodha-1")
    monkeypatch.setenv("ZERODHA_WEB_LOGIN", "off")
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.AWAITING_LOGIN
    assert outcome.login_url == f"{zerodha.login_url}?v=3&api_key=kite-key-1"
    assert zerodha.requests == []
    assert "<form" in requests.get(outcome.login_url, timeout=TIMEOUT).text
    redirect = browser_login(zerodha, outcome.login_url, credentials)
    assert harness.refresher().complete("zerodha-1", redirect).state is AccountState.FRESH


def test_announcing_a_person_login_does_not_mark_the_stored_token_superseded(
    zerodha: ZerodhaSimulator, harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a login that reaches the broker ends the old session; a login URL for a person ends nothing."""
    kite_account(zerodha, harness, "zerodha-1")
    refresher = harness.refresher()
    assert refresher.run().ok
    marked = refresher.state.get("zerodha-1").superseded_at  # by that login, before the stored token
    harness.clock.advance(60)  # type: ignore[attr-defined]
    monkeypatch.setenv("ZERODHA_WEB_LOGIN", "off")
    [outcome] = refresher.run(force=True).outcomes
    assert outcome.state is AccountState.AWAITING_LOGIN
    assert refresher.state.get("zerodha-1").superseded_at == marked
    stored = harness.token("zerodha-1")
    assert stored is not None and profile_with(zerodha, stored).status_code == 200
    assert refresher.describe("zerodha-1").state is AccountState.AWAITING_LOGIN


def test_a_superseded_token_is_not_skipped_by_the_next_run(zerodha: ZerodhaSimulator, harness: Harness) -> None:
    """A login that began (the mark is written) and never promoted: the next run logs in, not skips."""
    kite_account(zerodha, harness, "zerodha-1")
    assert harness.refresher().run().ok
    first = harness.token("zerodha-1")
    zerodha.faults.latency = 5.0  # the forced login hangs past its HTTP timeout (1 s) every time
    [hung] = harness.refresher().run(force=True).outcomes
    zerodha.faults.latency = 0.0
    assert hung.state is AccountState.FAILED
    assert harness.refresher().describe("zerodha-1").state is not AccountState.FRESH
    [next_run] = harness.refresher().run().outcomes
    assert next_run.action == "logged-in" and next_run.state is AccountState.FRESH, next_run.error
    assert harness.token("zerodha-1") != first


class Died(BaseException):
    """The process ends right here (a Lambda timeout, a kill): nothing after this line runs."""


def test_a_holder_that_dies_between_login_and_promotion_leaves_an_expired_token(
    zerodha: ZerodhaSimulator, harness: Harness
) -> None:
    """The login ended the stored session and nothing was promoted: status says expired, the next run logs in."""
    kite_account(zerodha, harness, "zerodha-1")
    assert harness.refresher().run().ok
    first = harness.token("zerodha-1")
    assert first is not None
    dying = harness.refresher()
    make_adapter = dying.adapter_factory

    def dies_after_login(creds: Credentials) -> Broker:
        broker = make_adapter(creds)

        def die(session: Session) -> None:
            raise Died

        broker.validate = die  # type: ignore[method-assign]
        return broker

    dying.adapter_factory = dies_after_login
    with pytest.raises(Died):
        dying.refresh("zerodha-1", force=True)
    assert profile_with(zerodha, first).status_code == 403  # the broker ended it at the new login
    assert harness.token("zerodha-1") == first
    assert harness.refresher().describe("zerodha-1").state is AccountState.EXPIRED
    [next_run] = harness.refresher().run().outcomes
    assert next_run.action == "logged-in" and next_run.state is AccountState.FRESH, next_run.error


# ----- BlinkX: a person logs in ---------------------------------------------------------------------------


def test_blinkx_run_waits_then_the_callback_completes(blinkx: BlinkXSimulator, harness: Harness) -> None:
    credentials = kite_account(blinkx, harness, "blinkx-1", user_id="BX1234", person_only=True)
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.AWAITING_LOGIN and outcome.action == "started"
    assert outcome.login_url == f"{blinkx.login_url}?v=3&api_key=kite-key-1"
    assert "/callback/blinkx-1" in (outcome.error or "")
    assert blinkx.requests == []  # starting the login is no HTTP call
    [still] = harness.refresher().run().outcomes
    assert still.state is AccountState.AWAITING_LOGIN and still.logins == 0

    assert "<form" in requests.get(outcome.login_url, timeout=TIMEOUT).text
    redirect = browser_login(blinkx, outcome.login_url, credentials)
    assert urlsplit(redirect).path == "/callback/blinkx-1" and "request_token=" in redirect
    done = harness.refresher().complete("blinkx-1", redirect)
    assert done.state is AccountState.FRESH and done.logins == 1
    record = harness.token("blinkx-1")
    assert record is not None and record["source"] == "callback" and record["broker"] == "blinkx"
    assert record["headers"] == {"X-Version": "3", "X-BlinkX-Version": "3"}
    assert record["authorization"] == f"token kite-key-1:{record['access_token']}"
    expires_at_next_0600_ist(record)
    answer = profile_with(blinkx, record)
    assert answer.status_code == 200 and answer.json()["data"]["user_id"] == "BX1234"
    [later] = harness.refresher().run().outcomes
    assert later.state is AccountState.FRESH and later.action == "skipped"


def test_blinkx_newest_login_wins(blinkx: BlinkXSimulator, harness: Harness) -> None:
    credentials = kite_account(blinkx, harness, "blinkx-1", user_id="BX1234", person_only=True)
    [outcome] = harness.refresher().run().outcomes
    assert outcome.login_url
    harness.refresher().complete("blinkx-1", browser_login(blinkx, outcome.login_url, credentials))
    first = harness.token("blinkx-1")
    # The same person logs in again (say, from another tool using the same app): the first token dies.
    again = browser_login(blinkx, outcome.login_url, credentials)
    token = parse_qs(urlsplit(again).query)["request_token"][0]
    assert harness.refresher().complete("blinkx-1", token).state is AccountState.FRESH
    second = harness.token("blinkx-1")
    assert first is not None and second is not None
    assert profile_with(blinkx, first).status_code == 403
    assert profile_with(blinkx, second).status_code == 200


def test_blinkx_used_request_token_needs_a_new_login(blinkx: BlinkXSimulator, harness: Harness) -> None:
    credentials = kite_account(blinkx, harness, "blinkx-1", user_id="BX1234", person_only=True)
    [outcome] = harness.refresher().run().outcomes
    assert outcome.login_url
    redirect = browser_login(blinkx, outcome.login_url, credentials)
    assert harness.refresher().complete("blinkx-1", redirect).state is AccountState.FRESH
    again = harness.refresher().complete("blinkx-1", redirect)  # the same redirect, replayed
    assert again.state is AccountState.FAILED and "log in again" in (again.error or "")
    # A failed completion never trips the breaker, nor touches the account's recorded state.
    assert harness.refresher().describe("blinkx-1").state is AccountState.FRESH
    assert profile_with(blinkx, harness.token("blinkx-1") or {}).status_code == 200  # the good token stays
    redirect = browser_login(blinkx, outcome.login_url, credentials)
    fresh = harness.refresher().complete("blinkx-1", redirect)
    assert fresh.state is AccountState.FRESH


def test_blinkx_login_as_another_user_is_refused(blinkx: BlinkXSimulator, harness: Harness) -> None:
    mine = kite_account(blinkx, harness, "blinkx-1", user_id="BX1234", person_only=True)
    other = kite_account(blinkx, harness, "blinkx-2", user_id="BX9999", api_key="kite-key-2", person_only=True)
    [outcome] = harness.refresher().run(["blinkx-1"]).outcomes
    assert outcome.login_url
    redirect = browser_login(blinkx, outcome.login_url, {**other, "api_key": "kite-key-1"})
    wrong = harness.refresher().complete("blinkx-1", redirect)
    # Refused at the exchange (its user_id), before any validation; the other user's id is not repeated.
    assert wrong.state is AccountState.AWAITING_LOGIN and "another user" in (wrong.error or "")
    assert "BX9999" not in (wrong.error or "") and blinkx.count("profile") == 0
    assert harness.token("blinkx-1") is None
    # The login stays open: the real person still finishes it.
    redirect = browser_login(blinkx, outcome.login_url, mine)
    assert harness.refresher().complete("blinkx-1", redirect).state is AccountState.FRESH


def test_blinkx_bad_paste_keeps_the_login_open(blinkx: BlinkXSimulator, harness: Harness) -> None:
    kite_account(blinkx, harness, "blinkx-1", user_id="BX1234", person_only=True)
    harness.refresher().run()
    failed = harness.refresher().complete("blinkx-1", "https://example.com/cb?action=login&status=success")
    assert failed.state is AccountState.AWAITING_LOGIN and failed.error_kind is ErrorKind.CONFIGURATION
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.AWAITING_LOGIN and outcome.logins == 0


# ----- expiry on a fixed clock, both sides of 06:00 IST ---------------------------------------------------


class FixedClock(ManualClock):
    """A ManualClock with the core's Clock interface; sleeping moves it."""

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


PERSON = {"password": "bx-pass-word", "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DP"}


def blinkx_credentials_on(sim: BlinkXSimulator) -> dict[str, Any]:
    """A BlinkX app and user on ``sim``, without the harness (for an adapter on its own clock)."""
    remember_secret("kite-key-1-secret-value", *PERSON.values())
    return kite_credentials(
        sim,
        "BX1234",
        api_key="kite-key-1",
        api_secret="kite-key-1-secret-value",
        redirect_url=CALLBACK.format(account="blinkx-1"),
        password=PERSON["password"],
        totp_secret=PERSON["totp_secret"],
        person_only=True,
    )


@pytest.mark.parametrize(
    ("login_ist", "expiry_ist"),
    [
        (datetime(2026, 11, 24, 5, 59, 40, tzinfo=KITE_TIMEZONE), datetime(2026, 11, 24, 6, 0, tzinfo=KITE_TIMEZONE)),
        (datetime(2026, 11, 24, 6, 0, 10, tzinfo=KITE_TIMEZONE), datetime(2026, 11, 25, 6, 0, tzinfo=KITE_TIMEZONE)),
    ],
)
def test_expiry_is_the_next_0600_ist_on_both_sides(login_ist: datetime, expiry_ist: datetime) -> None:
    clock = FixedClock(login_ist.timestamp())
    with BlinkXSimulator(clock=clock) as sim:
        credentials = blinkx_credentials_on(sim)
        adapter = BlinkX(validate_credentials("blinkx-1", credentials), clock=clock)
        step = adapter.login()
        assert isinstance(step, PendingStep) and step.login_url is not None
        session = adapter.complete(step, browser_login(sim, step.login_url, {**credentials, **PERSON}))
        adapter.validate(session)
        adapter.close()
        assert session.expires_at == expiry_ist
        # The broker agrees: the token works one second before that 06:00 and not at it.
        record = {"authorization": session.authorization, "headers": session.headers}
        clock.set(expiry_ist.timestamp() - 1)
        assert profile_with(sim, record).status_code == 200
        clock.set(expiry_ist.timestamp())
        assert profile_with(sim, record).status_code == 403


# ----- person links: the refresher checks the link again, under the lease ------------------------------


def test_a_completion_with_a_link_not_of_this_step_changes_nothing(blinkx: BlinkXSimulator, harness: Harness) -> None:
    credentials = kite_account(blinkx, harness, "blinkx-1", user_id="BX1234", person_only=True)
    [outcome] = harness.refresher().run().outcomes
    assert outcome.login_url
    redirect = browser_login(blinkx, outcome.login_url, credentials)
    refresher = harness.refresher()
    before = refresher.state.get("blinkx-1")
    for nonce in (secrets.token_urlsafe(32), "", "x" * 43):
        refused = refresher.complete("blinkx-1", redirect, nonce=nonce)
        assert refused.action == "refused" and refused.state is AccountState.AWAITING_LOGIN
    assert blinkx.exchanges("BX1234") == 0 and refresher.state.get("blinkx-1") == before
    nonce = issue_link(refresher.state, "blinkx-1", before.credentials_version, refresher.clock.now())
    assert nonce and refresher.complete("blinkx-1", redirect, nonce=nonce).state is AccountState.FRESH
    # Single use: the step is closed, so the same link no longer finishes anything.
    assert refresher.complete("blinkx-1", redirect, nonce=nonce).action == "refused"
