"""The Tradejini refresh end to end, over loopback HTTP: simulator + moto's Secrets Manager and DynamoDB."""

from __future__ import annotations

import time
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pyotp
import pytest
from infra.local.simulators.tradejini import DETAILS_PATH, TradejiniSimulator

from broker_tokens.errors import ErrorKind
from broker_tokens.http import HttpClient
from broker_tokens.models import AccountState, Outcome, parse_iso
from broker_tokens.ratelimit import MIN_SPACING, SLOWDOWN_STEP, RateLimiter
from broker_tokens.refresh import START_SPACING_SECONDS
from tests.support.accounts import call_with_record, tradejini_credentials
from tests.support.harness import Harness


def tradejini_account(
    sim: TradejiniSimulator,
    harness: Harness,
    account: str = "tj-1",
    *,
    user_id: str = "TJ1001",
    api_key: str = "tj-key-1",
    pin: str = "2468",
) -> dict[str, Any]:
    credentials = tradejini_credentials(sim, user_id, api_key=api_key, pin=pin, user_name="Test Trader")
    harness.add_account(account, credentials)
    return credentials


def test_refresh_writes_a_valid_token_record(tradejini: TradejiniSimulator, harness: Harness) -> None:
    tradejini_account(tradejini, harness)
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.FRESH and outcome.action == "logged-in" and outcome.logins == 1
    record = harness.token("tj-1")
    assert record is not None
    assert record["schema"] == 1 and record["broker"] == "tradejini" and record["account"] == "tj-1"
    assert record["authorization"] == f"Bearer tj-key-1:{record['access_token']}"
    assert record["headers"] == {} and "refresh_token" not in record
    lifetime = parse_iso(record["expires_at"]) - parse_iso(record["issued_at"])
    assert timedelta(hours=23, minutes=59) <= lifetime <= timedelta(hours=24)
    # The contract: authorization + headers (+ Accept) make a valid call with nothing else.
    details = call_with_record(tradejini.url + DETAILS_PATH, record).json()
    assert details["s"] == "ok" and details["d"]["userId"] == "TJ1001"


def test_second_run_logs_in_zero_times(tradejini: TradejiniSimulator, harness: Harness) -> None:
    tradejini_account(tradejini, harness)
    harness.refresher().run()
    version = harness.token_version("tj-1")
    second = harness.refresher().run()
    assert [o.action for o in second.outcomes] == ["skipped"] and second.ok
    assert tradejini.logins("TJ1001") == 1 and harness.token_version("tj-1") == version


@pytest.mark.parametrize(
    "cause",
    ["wrong-pin", "ip-not-whitelisted", "wrong-totp-secret"],
)
def test_a_bare_401_twice_needs_attention_after_exactly_two_logins(
    tradejini: TradejiniSimulator, harness: Harness, cause: str
) -> None:
    credentials = tradejini_account(tradejini, harness)
    if cause == "wrong-pin":
        harness.add_account("tj-1", {**credentials, "password": "1357"})
    elif cause == "wrong-totp-secret":
        harness.add_account("tj-1", {**credentials, "totp_secret": pyotp.random_base32()})
    else:
        tradejini.client_ip = "198.51.100.7"  # the Lambda left its static egress IP
    refresher = harness.refresher()
    [outcome] = refresher.run().outcomes
    assert outcome.state is AccountState.NEEDS_ATTENTION and outcome.error_kind is ErrorKind.PERMANENT
    assert tradejini.logins("TJ1001") == 2
    error = outcome.error or ""
    for suspect in ("'api_key'", "'password'", "'totp_secret'", "static IP"):
        assert suspect in error
    assert harness.token("tj-1") is None
    # No lockout: later runs do not try again with the same credentials version.
    [again] = refresher.run(force=True).outcomes
    assert again.state is AccountState.NEEDS_ATTENTION and again.logins == 0
    assert tradejini.logins("TJ1001") == 2


def test_a_stale_code_rejected_once_is_cured_in_the_next_window(
    tradejini: TradejiniSimulator, harness: Harness
) -> None:
    tradejini_account(tradejini, harness)
    tradejini.faults.reject_totp_next(1)
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.FRESH and outcome.logins == 2


@pytest.mark.parametrize("fault", ["rate_limit", "fail", "transient_error", "malformed"])
def test_transient_login_answers_are_retried(tradejini: TradejiniSimulator, harness: Harness, fault: str) -> None:
    tradejini_account(tradejini, harness)
    arm = {
        "rate_limit": lambda: tradejini.faults.rate_limit_next(1, endpoint="login"),
        "fail": lambda: tradejini.faults.fail_next(1, status=503, endpoint="login"),
        "transient_error": lambda: tradejini.faults.transient_error_next(1, endpoint="login"),
        "malformed": lambda: tradejini.faults.malformed_next(1, endpoint="login"),
    }
    arm[fault]()
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.FRESH and outcome.logins == 2


def test_a_rate_limit_answer_spaces_every_later_login_wider(tradejini: TradejiniSimulator, harness: Harness) -> None:
    for number in range(1, 5):
        tradejini_account(tradejini, harness, f"tj-{number}", user_id=f"TJ100{number}", api_key=f"tj-key-{number}")
    tradejini.faults.rate_limit_next(1, endpoint="login")
    refresher = harness.refresher(max_workers=1)
    report = refresher.run()
    assert report.ok and report.logins == 5  # the refused login was retried, and cost nothing more
    assert refresher.limiter.slowdown("tradejini:ip") == SLOWDOWN_STEP
    sent = [r.at for r in tradejini.requests if r.endpoint == "login"]
    wider = (1 / 3) * MIN_SPACING * SLOWDOWN_STEP
    assert all(b - a >= wider - 0.01 for a, b in pairwise(sent))


def test_a_run_starts_its_accounts_at_a_steady_rate_not_all_at_once(
    tradejini: TradejiniSimulator, harness: Harness
) -> None:
    for number in range(1, 5):
        tradejini_account(tradejini, harness, f"tj-{number}", user_id=f"TJ100{number}", api_key=f"tj-key-{number}")
    refresher = harness.refresher()
    started: list[float] = []
    refresh = refresher.refresh

    def recorded(account: str, **options: Any) -> Outcome:
        started.append(time.monotonic())
        return refresh(account, **options)

    refresher.refresh = recorded  # type: ignore[method-assign]
    assert refresher.run().ok
    assert all(b - a >= START_SPACING_SECONDS - 0.005 for a, b in pairwise(sorted(started)))


def test_the_login_pacing_checks_right_before_the_login_request_goes(
    tradejini: TradejiniSimulator, harness: Harness
) -> None:
    tradejini_account(tradejini, harness)
    departures: list[tuple[str, float]] = []

    class RecordingLimiter(RateLimiter):
        def depart(self, key: str, interval: float) -> None:
            super().depart(key, interval)
            departures.append((key, harness.clock.time()))

    refresher = harness.refresher()
    refresher.limiter = RecordingLimiter(harness.clock)
    [outcome] = refresher.run().outcomes
    assert outcome.state is AccountState.FRESH
    [(key, left_at)] = departures  # once: the login; the validation is not paced
    [login] = [r for r in tradejini.requests if r.endpoint == "login"]
    assert key == "tradejini:ip" and login.at >= left_at


def test_an_http_client_gate_runs_once_right_before_the_next_request(tradejini: TradejiniSimulator) -> None:
    client = HttpClient(tradejini.url, timeout=5)
    gated: list[float] = []
    client.before_next_request(lambda: gated.append(tradejini.clock.time()))
    client.request("GET", DETAILS_PATH)
    client.request("GET", DETAILS_PATH)
    first, _ = [r.at for r in tradejini.requests]
    assert len(gated) == 1 and gated[0] <= first


def test_a_401_on_validation_after_login_is_transient(tradejini: TradejiniSimulator, harness: Harness) -> None:
    tradejini_account(tradejini, harness)
    tradejini.faults.reject_validation_next(1)
    [outcome] = harness.refresher().run().outcomes
    # Validated again on the same session, not replaced by a second login (finding 3).
    assert outcome.state is AccountState.FRESH and outcome.logins == 1
    assert tradejini.count("details") == 2


def test_many_accounts_stay_under_three_logins_a_second(tradejini: TradejiniSimulator, harness: Harness) -> None:
    for number in range(1, 8):
        tradejini_account(tradejini, harness, f"tj-{number}", user_id=f"TJ100{number}", api_key=f"tj-key-{number}")
    # One worker: the WarpClock turns concurrent long waits into simultaneous jumps, which no real clock does.
    report = harness.refresher(max_workers=1).run()
    assert report.ok and report.logins == 7
    assert [r.status for r in tradejini.requests if r.endpoint == "login"] == [200] * 7
