"""AutoShares (ETNA Trader) answers mapped to error kinds and steps, from built responses (no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from broker_tokens.brokers import broker_class
from broker_tokens.brokers.autoshares import AutoShares
from broker_tokens.credentials import parse_credentials
from broker_tokens.errors import BrokerError, CredentialsError, ErrorKind
from broker_tokens.models import AccountState, PendingStep, Session
from tests.support.responses import FrozenClock, answer, raised

BASE = {
    "broker": "etna",
    "app_key": "etna-app-key",
    "username": "trader1",
    "password": "s3cret-pass",
    "base_url": "https://pub-api-et-demo-prod.etnasoft.us/api",
}
CREDS = parse_credentials("etna-1", json.dumps(BASE))
ISSUED = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def adapter(**extra: Any) -> AutoShares:
    creds = parse_credentials("etna-1", json.dumps({**BASE, **extra})) if extra else CREDS
    return AutoShares(creds, clock=FrozenClock(ISSUED))


def failed(step: str, reason: str, status: int = 401) -> requests.Response:
    return answer(status, {"State": "Failed", "Step": step, "Reason": reason})


def rejection(response: requests.Response, what: str = "login") -> BrokerError:
    return raised(lambda: adapter()._advance(response, what))


APP_KEY = {"error": "Application key is not defined or does not exist"}


@pytest.mark.parametrize(
    ("response", "kind", "words"),
    [
        (answer(403, APP_KEY), ErrorKind.PERMANENT, "app_key"),
        (answer(401, APP_KEY), ErrorKind.PERMANENT, "app_key"),
        (failed("BaseAuthentication", "Invalid credentials"), ErrorKind.PERMANENT, "username or password"),
        (
            failed("BaseAuthentication", "Your Password has expired and must be changed"),
            ErrorKind.PERMANENT,
            "password has expired",
        ),
        (failed("VerificationCode", "Corrupted ticket"), ErrorKind.PERMANENT, "interim ticket"),
        (failed("VerificationCode", "Invalid verification code"), ErrorKind.PERMANENT, "verification code"),
        (failed("SecutityPin", "Invalid pin"), ErrorKind.PERMANENT, "'pin'"),
        (answer(429, {"Message": "Too many requests."}), ErrorKind.TRANSIENT, "429"),
        (answer(500, {"Message": "An error has occurred."}), ErrorKind.TRANSIENT, "500"),
        (answer(503, "<html>down</html>", "text/html"), ErrorKind.TRANSIENT, "503"),
        (answer(200, "<html>maintenance</html>", "text/html"), ErrorKind.TRANSIENT, "not JSON"),
        (answer(200, {"State": "Succeeded"}), ErrorKind.TRANSIENT, "no Token"),
        (answer(400, {"error": "something else"}), ErrorKind.PERMANENT, "rejected"),
        (
            answer(202, {"State": "Expecting", "Step": "FaceScan", "Token": "interim-1"}),
            ErrorKind.PERMANENT,
            "does not know",
        ),
    ],
    ids=[
        "app-key-403",
        "app-key-401",
        "invalid-credentials",
        "expired-password",
        "corrupted-ticket",
        "wrong-code",
        "wrong-pin",
        "429",
        "500",
        "html-503",
        "html-200",
        "no-token",
        "undocumented-400",
        "unknown-step",
    ],
)
def test_answers_map_to_kinds(response: requests.Response, kind: ErrorKind, words: str) -> None:
    error = rejection(response)
    assert error.kind is kind
    assert words in error.message


def test_success_is_a_session_with_the_app_key_header() -> None:
    session = adapter()._advance(answer(200, {"State": "Succeeded", "Token": "final-token-1"}), "login")
    assert isinstance(session, Session)
    assert session.access_token == "final-token-1"
    assert session.authorization == "Bearer final-token-1"
    assert session.headers == {"Et-App-Key": "etna-app-key"}
    assert session.expires_at == ISSUED + timedelta(hours=24)


def test_the_code_step_is_a_pending_step_holding_the_ticket() -> None:
    body = {"State": "Expecting", "Step": "VerificationCode", "Reason": "Expecting confirmation code", "Token": "t-1"}
    step = adapter()._advance(answer(202, body), "login")
    assert isinstance(step, PendingStep)
    assert step.state is AccountState.AWAITING_VERIFICATION
    assert step.ticket == "t-1"
    assert step.expires_at == ISSUED + timedelta(minutes=10)
    assert "e-mail" in step.message and "broker-tokens verify etna-1 CODE" in step.message
    assert "the page the alert links to" in step.message and "assumption" not in step.message
    assert len(step.message) <= 120  # a line a trader reads at 07:30
    assert "t-1" not in step.message


def test_a_pin_step_without_pin_is_permanent_and_names_pin() -> None:
    body = {"State": "Expecting", "Step": "SecutityPin", "Reason": "Expecting security pin", "Token": "t-2"}
    error = rejection(answer(202, body))
    assert error.kind is ErrorKind.PERMANENT
    assert "'pin'" in error.message


def test_complete_without_an_open_step_sends_nothing_and_is_not_permanent() -> None:
    for step in (None, PendingStep(AccountState.AWAITING_VERIFICATION, "m", ticket=None)):
        with pytest.raises(BrokerError) as caught:
            adapter().complete(step, "123456")
        assert caught.value.kind is ErrorKind.TRANSIENT and "no verification is open" in caught.value.message


@pytest.mark.parametrize("code", ["", "   ", "12\r\n34", "x" * 65])
def test_complete_refuses_what_cannot_be_a_code(code: str) -> None:
    step = PendingStep(AccountState.AWAITING_VERIFICATION, "m", ticket="t-3")
    with pytest.raises(BrokerError) as caught:
        adapter().complete(step, code)
    assert caught.value.kind is ErrorKind.TRANSIENT


def test_a_password_no_header_can_carry_is_permanent_naming_the_key() -> None:
    with pytest.raises(BrokerError) as caught:
        adapter(password="pass\nword")._login_headers()
    assert caught.value.kind is ErrorKind.PERMANENT and "'password'" in caught.value.message
    assert "pass\nword" not in str(caught.value)


def test_login_headers_and_step_headers() -> None:
    headers = adapter()._login_headers("t-4", ("VerificationCode", "code", "654321"))
    assert headers == {
        "Accept": "application/json",
        "Et-App-Key": "etna-app-key",
        "Username": "trader1",
        "Password": "s3cret-pass",
        "VerificationCode": "654321",
        "Authorization": "Bearer t-4",
    }


def test_registry_alias_and_required_base_url() -> None:
    assert broker_class("etna") is AutoShares and broker_class("autoshares") is AutoShares
    assert CREDS.broker == "autoshares"
    without_root = {key: value for key, value in BASE.items() if key != "base_url"}
    with pytest.raises(CredentialsError, match="'base_url' is missing"):
        parse_credentials("etna-1", json.dumps(without_root))
    assert adapter(pin="4455").credentials.get("pin") == "4455"
