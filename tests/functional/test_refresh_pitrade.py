"""The PiTrade refresh over loopback HTTP: nothing to log in to, so a run proves the keys and stores nothing."""

from __future__ import annotations

import secrets
from typing import Any

import requests
from infra.local.simulators.pitrade import PiTradeSimulator

from broker_tokens.brokers.pitrade import sign_jwt
from broker_tokens.clock import WarpClock
from broker_tokens.credentials import validate_credentials
from broker_tokens.errors import ErrorKind
from broker_tokens.models import AccountState
from tests.support.harness import Harness
from tests.support.logsink import remember_secret


def pitrade_account(
    sim: PiTradeSimulator, harness: Harness, account: str = "pitrade-1", **extra: Any
) -> dict[str, Any]:
    secret_key = secrets.token_urlsafe(32)
    sim.add_client("partner-7", secret_key)
    credentials = {
        "broker": "pitrade",
        "client_id": "partner-7",
        "secret_key": secret_key,
        "base_url": sim.url,
        **extra,
    }
    harness.add_account(account, credentials)
    return credentials


def test_run_marks_pitrade_healthy_and_stores_nothing(pitrade: PiTradeSimulator, harness: Harness) -> None:
    pitrade_account(pitrade, harness)
    report = harness.refresher().run()
    [outcome] = report.outcomes
    assert report.ok and outcome.state is AccountState.HEALTHY and outcome.action == "checked"
    assert pitrade.calls("partner-7") == 1 and [r.status for r in pitrade.requests] == [200]
    assert harness.token("pitrade-1") is None


def test_every_run_checks_again(pitrade: PiTradeSimulator, harness: Harness) -> None:
    pitrade_account(pitrade, harness)
    harness.refresher().run()
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.HEALTHY and pitrade.calls("partner-7") == 2


def test_wrong_secret_needs_attention_after_one_call(pitrade: PiTradeSimulator, harness: Harness) -> None:
    credentials = pitrade_account(pitrade, harness)
    wrong = secrets.token_urlsafe(32)
    remember_secret(wrong)
    harness.add_account("pitrade-1", {**credentials, "secret_key": wrong})
    refresher = harness.refresher()
    [outcome] = refresher.run().outcomes
    assert outcome.state is AccountState.NEEDS_ATTENTION and outcome.error_kind is ErrorKind.PERMANENT
    assert "401" in (outcome.error or "") and wrong not in (outcome.error or "")
    [again] = refresher.run().outcomes
    assert again.state is AccountState.NEEDS_ATTENTION and pitrade.calls("partner-7") == 1


def test_5xx_is_retried(pitrade: PiTradeSimulator, harness: Harness) -> None:
    pitrade_account(pitrade, harness)
    pitrade.faults.fail_next(1, status=502, endpoint="portfolio")
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.HEALTHY and pitrade.calls("partner-7") == 2


def test_ttl_over_900_is_a_configuration_failure_naming_the_key(pitrade: PiTradeSimulator, harness: Harness) -> None:
    pitrade_account(pitrade, harness, token_ttl_seconds=1800)
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.FAILED and outcome.error_kind is ErrorKind.CONFIGURATION
    assert "'token_ttl_seconds'" in (outcome.error or "") and pitrade.requests == []


def test_a_signed_jwt_is_what_an_app_sends(pitrade: PiTradeSimulator, clock: WarpClock) -> None:
    secret_key = secrets.token_urlsafe(32)
    pitrade.add_client("partner-7", secret_key)
    credentials = validate_credentials(
        "pitrade-1", {"broker": "pitrade", "client_id": "partner-7", "secret_key": secret_key, "base_url": pitrade.url}
    )
    session = sign_jwt(credentials, clock)  # what the token API hands out on each request
    answer = requests.get(f"{pitrade.url}/portfolio", headers={"Authorization": session.authorization}, timeout=5)
    assert answer.status_code == 200 and isinstance(answer.json(), list)
    clock.advance(900)
    expired = requests.get(f"{pitrade.url}/portfolio", headers={"Authorization": session.authorization}, timeout=5)
    assert expired.status_code == 401
