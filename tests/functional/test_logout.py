"""The end-of-day logout on the embedded stack: simulators over loopback HTTP, moto, the token API.

A morning refresh, a logout run at 23:59 IST, then the next morning's run: each broker's session is
ended at its simulator (the old token fails the profile call), the token secrets read expired
everywhere, and the morning logs in again. Faults in the logout are retried or reported, never
touching credentials or the needs-attention breaker.
"""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from infra.local.lambda_context import LocalLambdaContext
from infra.local.moto_server import MotoServer
from infra.local.simulators.angelone import PROFILE_PATH as ANGEL_PROFILE
from infra.local.simulators.angelone import AngelOneSimulator
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.kite import ZerodhaSimulator
from infra.local.simulators.pitrade import PiTradeSimulator
from infra.local.simulators.tradejini import DETAILS_PATH, TradejiniSimulator
from infra.local.template import LocalResources

from broker_tokens.brokers.kite import KITE_TIMEZONE
from broker_tokens.client import TokenCache, TokenUnavailableError, get_token
from broker_tokens.clock import WarpClock
from broker_tokens.credentials import parse_credentials
from broker_tokens.errors import BrokerError, ErrorKind
from broker_tokens.logout import EndOfDay, LogoutFailedError
from broker_tokens.models import AccountState, parse_iso
from broker_tokens.runtime import container_refresher
from refresher.app import lambda_handler
from tests.functional.test_refresh_angelone import angel_account
from tests.functional.test_refresh_autoshares import etna_account
from tests.functional.test_refresh_kite import kite_account, profile_with
from tests.functional.test_refresh_pitrade import pitrade_account
from tests.functional.test_refresh_tradejini import tradejini_account
from tests.functional.test_token_api import start_api
from tests.support.accounts import call_with_record
from tests.support.harness import Harness
from tests.support.logsink import leaks

ANGEL_JSON = "application/json"
DAY_AND_NIGHT = timedelta(hours=16, minutes=29)  # 07:30 -> 23:59 IST
NIGHT_TO_MORNING = timedelta(hours=7, minutes=31)  # 23:59 -> 07:30 IST


@pytest.fixture
def clock() -> WarpClock:
    """Real time moved on to the next 07:30 IST, when the morning schedule runs."""
    now = datetime.now(KITE_TIMEZONE)
    target = datetime.combine(now.date(), time(7, 30), tzinfo=KITE_TIMEZONE)
    if target <= now:
        target += timedelta(days=1)
    return WarpClock(offset=(target - now).total_seconds())


def angel_profile(sim: AngelOneSimulator, record: dict[str, Any]) -> dict[str, Any]:
    answer = call_with_record(sim.url + ANGEL_PROFILE, record, content_type=ANGEL_JSON)
    return dict(answer.json())


def test_a_day_logs_in_logs_out_and_logs_in_again(
    *,
    angel: AngelOneSimulator,
    tradejini: TradejiniSimulator,
    zerodha: ZerodhaSimulator,
    autoshares: AutoSharesSimulator,
    pitrade: PiTradeSimulator,
    harness: Harness,
    moto: MotoServer,
    cloud: LocalResources,
    clock: WarpClock,
) -> None:
    angel_account(angel, harness)
    tradejini_account(tradejini, harness)
    kite_account(zerodha, harness, "zerodha-1")
    etna_account(autoshares, harness)
    pitrade_account(pitrade, harness)
    assert harness.refresher().run().ok
    morning = {name: harness.token(name) for name in ("angel-1", "tj-1", "zerodha-1", "etna-demo")}
    assert all(morning.values())

    clock.advance(DAY_AND_NIGHT.total_seconds())
    report = EndOfDay(harness.refresher()).run()

    assert report.ok
    lines = {outcome.account: outcome for outcome in report.outcomes}
    assert {name: line.action for name, line in lines.items()} == {
        "angel-1": "logged-out",
        "tj-1": "logged-out",
        "zerodha-1": "logged-out",
        "etna-demo": "no-logout-at-broker",
        "pitrade-1": "no-logout-at-broker",
    }
    assert "no logout" in (lines["etna-demo"].error or "")
    # Each session is over at its broker: the old token fails the profile call.
    assert angel_profile(angel, morning["angel-1"] or {})["errorCode"] == "AG8001"
    assert call_with_record(tradejini.url + DETAILS_PATH, morning["tj-1"] or {}).status_code == 401
    assert profile_with(zerodha, morning["zerodha-1"] or {}).status_code == 403
    assert [angel.count("logout"), tradejini.count("logout"), zerodha.count("logout")] == [1, 1, 1]
    # The secrets read expired: same schema, expires_at = the logout instant, source logout.
    now = clock.now()
    for name in ("angel-1", "tj-1", "zerodha-1"):
        record = harness.token(name) or {}
        before = morning[name] or {}
        assert record["source"] == "logout" and record["schema"] == 1
        assert set(record) == set(before)
        assert record["issued_at"] == before["issued_at"]
        assert now - timedelta(seconds=5) <= parse_iso(record["expires_at"]) <= now
        assert lines[name].state is AccountState.EXPIRED
        with pytest.raises(TokenUnavailableError, match="expired"):
            get_token(name, client=harness.secrets_client, clock=clock)
    # AutoShares has no logout: its token is left as it was.
    assert harness.token("etna-demo") == morning["etna-demo"]
    # The token API answers 409 for a logged-out token.
    api = start_api(harness, moto, cloud, clock)
    try:
        key = api.key()
        for name in ("angel-1", "tj-1", "zerodha-1"):
            answer = api.call("GET", f"/accounts/{name}/token", key)
            assert answer.status_code == 409 and answer.json()["error"] == "token-expired"
        listed = {a["account"]: a["state"] for a in api.call("GET", "/accounts", key).json()["accounts"]}
        assert listed["angel-1"] == listed["tj-1"] == listed["zerodha-1"] == "expired"
    finally:
        api.front.stop()
    assert not leaks(api.answers)

    # A second logout run finds nothing to end and calls no broker.
    again = EndOfDay(harness.refresher()).run()
    assert again.ok and {o.action for o in again.outcomes if o.account in morning} >= {"already-expired"}
    assert [angel.count("logout"), tradejini.count("logout"), zerodha.count("logout")] == [1, 1, 1]

    # The next morning's run logs in again: a logout record is never fresh.
    clock.advance(NIGHT_TO_MORNING.total_seconds())
    next_day = harness.refresher().run()
    assert next_day.ok
    actions = {outcome.account: outcome.action for outcome in next_day.outcomes}
    assert actions["angel-1"] == actions["tj-1"] == actions["zerodha-1"] == "logged-in"
    for name in ("angel-1", "tj-1", "zerodha-1"):
        assert (harness.token(name) or {})["source"] == "schedule"
        assert TokenCache(harness.secrets_client, clock=clock).get(name) is not None


def test_a_5xx_and_a_hang_in_the_logout_are_retried(
    tradejini: TradejiniSimulator, zerodha: ZerodhaSimulator, harness: Harness, clock: WarpClock
) -> None:
    tradejini_account(tradejini, harness)
    kite_account(zerodha, harness, "zerodha-1")
    assert harness.refresher().run().ok
    clock.advance(DAY_AND_NIGHT.total_seconds())
    tradejini.faults.fail_next(2, status=502, endpoint="logout")
    zerodha.faults.hang_next(1, seconds=3, endpoint="logout")  # past the 1 s HTTP timeout of the harness

    report = EndOfDay(harness.refresher()).run()

    assert report.ok and {o.action for o in report.outcomes} == {"logged-out"}
    assert tradejini.count("logout") == 3 and zerodha.count("logout") == 2
    assert (harness.token("tj-1") or {})["source"] == (harness.token("zerodha-1") or {})["source"] == "logout"


def test_a_logout_that_keeps_failing_keeps_the_token_and_reports_it(
    tradejini: TradejiniSimulator, harness: Harness, clock: WarpClock
) -> None:
    credentials = tradejini_account(tradejini, harness)
    assert harness.refresher().run().ok
    before, version = harness.token("tj-1"), harness.token_version("tj-1")
    state_before = harness.refresher().state.get("tj-1")
    clock.advance(DAY_AND_NIGHT.total_seconds())
    tradejini.faults.fail_next(50, status=503, endpoint="logout")

    report = EndOfDay(harness.refresher()).run()

    assert not report.ok and [o.account for o in report.failed] == ["tj-1"]
    [line] = report.outcomes
    assert line.action == "failed" and line.error_kind is ErrorKind.TRANSIENT
    assert "token is kept" in (line.error or "")
    assert tradejini.count("logout") >= 2  # retried, within the policy's attempts
    # The session may still be alive, so the token stays as it was; nothing else was touched.
    assert harness.token("tj-1") == before and harness.token_version("tj-1") == version
    assert harness.refresher().state.get("tj-1") == state_before
    assert tradejini.logins("TJ1001") == 1
    assert harness.secrets_client.get_secret_value(SecretId="broker-tokens/tj-1/credentials")["SecretString"]
    assert credentials["password"] not in (line.error or "")
    # Once the broker answers again, the next try ends it.
    tradejini.faults.clear()
    assert EndOfDay(harness.refresher()).run(["tj-1"]).outcomes[0].action == "logged-out"


def test_a_permanent_rejection_is_not_retried_and_never_trips_the_breaker(
    angel: AngelOneSimulator, harness: Harness, clock: WarpClock
) -> None:
    credentials = angel_account(angel, harness)
    assert harness.refresher().run().ok
    clock.advance(DAY_AND_NIGHT.total_seconds())
    # The API key in the credentials is no longer registered at Angel One: AG8004, permanent.
    harness.add_account("angel-1", {**credentials, "api_key": "angel-key-unknown"})

    [line] = EndOfDay(harness.refresher()).run().outcomes

    assert line.action == "failed" and line.error_kind is ErrorKind.PERMANENT
    assert angel.count("logout") == 1
    status = harness.refresher().state.get("angel-1")
    assert not status.needs_attention and status.state is AccountState.FRESH
    assert (harness.token("angel-1") or {})["source"] == "schedule"


def test_a_logout_waits_for_a_login_in_flight_and_ends_its_token(
    tradejini: TradejiniSimulator, harness: Harness, clock: WarpClock
) -> None:
    tradejini_account(tradejini, harness)
    assert harness.refresher().run().ok
    clock.advance(DAY_AND_NIGHT.total_seconds())
    state = harness.refresher().state
    assert state.try_lease("tj-1", "a-login-elsewhere", timedelta(seconds=60))
    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(EndOfDay(harness.refresher()).run()))
    worker.start()
    worker.join(timeout=1.0)
    assert worker.is_alive() and tradejini.count("logout") == 0  # it waits for the lease
    state.release("tj-1", "a-login-elsewhere")
    worker.join(timeout=30)

    [line] = done[0].outcomes
    assert line.action == "logged-out" and tradejini.count("logout") == 1


def adapter_for(harness: Harness, account: str) -> Any:
    refresher = harness.refresher()
    text, version = refresher.secrets.read_credentials(account)
    return refresher.adapter_factory(parse_credentials(account, text, version=version))


@pytest.mark.parametrize("broker", ["angelone", "tradejini", "zerodha"])
def test_each_adapter_ends_a_session_once_and_maps_the_brokers_answers(
    *,
    angel: AngelOneSimulator,
    tradejini: TradejiniSimulator,
    zerodha: ZerodhaSimulator,
    harness: Harness,
    broker: str,
) -> None:
    """True when ended now, False when the broker says the token is already dead, transient on a 5xx."""
    if broker == "angelone":
        account, sim = "angel-1", angel
        angel_account(angel, harness)
    elif broker == "tradejini":
        account, sim = "tj-1", tradejini
        tradejini_account(tradejini, harness)
    else:
        account, sim = "zerodha-1", zerodha
        kite_account(zerodha, harness, account)
    assert harness.refresher().run().ok
    token = harness.refresher().secrets.read_token(account)
    assert token is not None
    adapter = adapter_for(harness, account)
    try:
        sim.faults.transient_error_next(1, endpoint="logout")
        with pytest.raises(BrokerError) as caught:
            adapter.logout(token)
        assert caught.value.kind is ErrorKind.TRANSIENT
        assert adapter.logout(token) is True
        assert adapter.logout(token) is False  # already over: nothing left to end
    finally:
        adapter.close()


def test_the_refresher_function_logs_out_on_the_schedules_event_and_raises_on_a_failure(
    tradejini: TradejiniSimulator, harness: Harness, cloud: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**cloud.environment("RefresherFunction"), "BROKER_HTTP_TIMEOUT_SECONDS": "1"}.items():
        monkeypatch.setenv(name, value)
    container_refresher.cache_clear()
    tradejini_account(tradejini, harness)
    tradejini_account(tradejini, harness, "tj-2", user_id="TJ1002", api_key="tj-key-2")
    assert harness.refresher().run().ok
    context = LocalLambdaContext("broker-tokens-refresher")
    try:
        tradejini.faults.fail_next(50, status=503, endpoint="logout")
        with pytest.raises(LogoutFailedError, match="2 account"):
            lambda_handler({"action": "logout", "accounts": ["tj-1", "tj-2"]}, context)
        tradejini.faults.clear()
        answer = lambda_handler({"action": "logout", "version": "0", "detail-type": "Scheduled Event"}, context)
    finally:
        container_refresher.cache_clear()
    assert answer["ok"] and answer["logged_out"] == ["tj-1", "tj-2"] and answer["failed"] == []
    assert (harness.token("tj-1") or {})["source"] == "logout"
