"""Tradejini answers mapped to error kinds, from built responses (no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from broker_tokens.brokers import broker_class
from broker_tokens.brokers.tradejini import Tradejini
from broker_tokens.credentials import parse_credentials
from broker_tokens.errors import BrokerError, ErrorKind
from tests.support.responses import FrozenClock, answer, raised

CREDS = parse_credentials(
    "tj-1",
    json.dumps(
        {"broker": "tradejini", "api_key": "tj-key-1", "password": "2468", "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DP"}
    ),
)


def error_body(message: str) -> dict[str, str]:
    return {"s": "error", "msg": message}


def rejection(response: requests.Response, *, during_login: bool) -> BrokerError:
    what = "login" if during_login else "account details"
    return raised(lambda: Tradejini(CREDS)._body(response, what, during_login=during_login))


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (answer(401, error_body("Unauthorized")), ErrorKind.TOTP),
        (answer(400, error_body("Input validation failed: twoFa is required")), ErrorKind.PERMANENT),
        (answer(415, error_body("Content-Type must be application/x-www-form-urlencoded")), ErrorKind.PERMANENT),
        (answer(429, error_body("Too many requests")), ErrorKind.TRANSIENT),
        (answer(500, error_body("Internal server error")), ErrorKind.TRANSIENT),
        (answer(502, "<html>Bad gateway</html>", "text/html"), ErrorKind.TRANSIENT),
        (answer(200, "<html>maintenance</html>", "text/html"), ErrorKind.TRANSIENT),
        (answer(403, error_body("Forbidden")), ErrorKind.PERMANENT),
        (answer(200, error_body("Account suspended")), ErrorKind.PERMANENT),
    ],
    ids=["401", "400", "415", "429", "500", "html-502", "html-200", "undocumented-403", "error-envelope-200"],
)
def test_login_answers_map_to_kinds(response: requests.Response, kind: ErrorKind) -> None:
    assert rejection(response, during_login=True).kind is kind


def test_a_bare_401_names_the_four_suspects() -> None:
    error = rejection(answer(401, error_body("Unauthorized")), during_login=True)
    assert error.status == 401
    for suspect in ("'api_key'", "'password'", "PIN", "'totp_secret'", "static IP"):
        assert suspect in error.message


def test_input_validation_keeps_the_brokers_message() -> None:
    error = rejection(answer(400, error_body("Input validation failed: twoFa is required")), during_login=True)
    assert "twoFa is required" in error.message


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (answer(401, error_body("Unauthorized")), ErrorKind.TRANSIENT),
        (answer(429, error_body("Too many requests")), ErrorKind.TRANSIENT),
        (answer(503, "<html>down</html>", "text/html"), ErrorKind.TRANSIENT),
        (answer(400, error_body("Input validation failed")), ErrorKind.PERMANENT),
    ],
    ids=["401", "429", "503", "400"],
)
def test_validation_answers_map_to_kinds(response: requests.Response, kind: ErrorKind) -> None:
    assert rejection(response, during_login=False).kind is kind


def test_the_success_body_passes_through() -> None:
    body = {"access_token": "a", "token_type": "bearer", "expires_in": 86400, "scope": "general"}
    assert Tradejini(CREDS)._body(answer(200, body), "login", during_login=True) == body


@pytest.mark.parametrize(("expires_in", "seconds"), [(86400, 86400), (3600, 3600), (None, 86400), ("soon", 86400)])
def test_lifetime_comes_from_expires_in(expires_in: object, seconds: int) -> None:
    assert Tradejini(CREDS)._lifetime(expires_in) == seconds


def test_expiry_is_expires_in_from_now() -> None:
    issued = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    adapter = Tradejini(CREDS, clock=FrozenClock(issued))
    assert adapter.expires_in(adapter._lifetime(86400)) == issued + timedelta(hours=24)


def test_registry_and_contract() -> None:
    assert broker_class("tradejini") is Tradejini
    assert Tradejini.default_base_url == "https://api.tradejini.com/v2"
    required = {field.name for field in Tradejini.fields if field.required}
    assert required == {"api_key", "password", "totp_secret"}
    assert Tradejini.login_rate is not None and Tradejini.login_rate.per_second == 3
    assert Tradejini.login_rate.scope == "ip"
