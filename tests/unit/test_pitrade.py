"""PiTrade: the self-signed JWT, the credentials' TTL limits and the portfolio answers' kinds. No network."""

from __future__ import annotations

from datetime import UTC, datetime

import jwt
import pytest
import requests

from broker_tokens.brokers.pitrade import PiTrade, sign_jwt
from broker_tokens.credentials import Credentials, validate_credentials
from broker_tokens.errors import BrokerError, CredentialsError, ErrorKind
from broker_tokens.models import Session
from tests.support.responses import FrozenClock, answer

SECRET_KEY = "pitrade-unit-signing-key-0123456789abcdef"
GOOD = {
    "broker": "pitrade",
    "client_id": "partner-7",
    "secret_key": SECRET_KEY,
    "base_url": "https://partner.pitrade.example/v1",
}
AT = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)


def creds(**changes: object) -> Credentials:
    return validate_credentials("pt-1", {**GOOD, **changes})


def test_sign_jwt_makes_an_hs256_token_with_the_documented_claims() -> None:
    session = sign_jwt(creds(), FrozenClock(AT))
    assert session.authorization == f"Bearer {session.access_token}"
    assert jwt.get_unverified_header(session.access_token)["alg"] == "HS256"
    claims = jwt.decode(
        session.access_token, SECRET_KEY, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
    )
    now = int(AT.timestamp())
    assert claims == {"clientId": "partner-7", "iat": now, "exp": now + 900}
    assert session.expires_at == datetime.fromtimestamp(now + 900, UTC)
    assert session.headers == {} and session.refresh_token is None


def test_token_ttl_seconds_shortens_the_jwt() -> None:
    session = sign_jwt(creds(token_ttl_seconds=120), FrozenClock(AT))
    claims = jwt.decode(session.access_token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120


def test_a_jwt_signed_with_another_key_does_not_verify() -> None:
    session = sign_jwt(creds(), FrozenClock(AT))
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(session.access_token, "another-key-of-enough-length-0123456789", algorithms=["HS256"])


@pytest.mark.parametrize(
    ("value", "words"),
    [(901, "at most 900"), (3600, "at most 900"), (59, "at least 60"), (0, "at least 60"), ("900", "whole number")],
)
def test_token_ttl_outside_60_to_900_is_refused_naming_the_key(value: object, words: str) -> None:
    with pytest.raises(CredentialsError) as caught:
        creds(token_ttl_seconds=value)
    assert caught.value.key == "token_ttl_seconds" and words in str(caught.value)


def test_base_url_is_required_for_pitrade() -> None:
    with pytest.raises(CredentialsError) as caught:
        validate_credentials("pt-1", {k: v for k, v in GOOD.items() if k != "base_url"})
    assert caught.value.key == "base_url" and "missing" in str(caught.value)


def test_pitrade_stores_no_token_and_login_is_signing() -> None:
    adapter = PiTrade(creds(), clock=FrozenClock(AT))
    assert PiTrade.stores_token is False and PiTrade.daily_reset is None
    session = adapter.login()
    assert isinstance(session, Session)
    assert jwt.decode(session.access_token, options={"verify_signature": False})["clientId"] == "partner-7"


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (answer(401, {"error": "invalid_token"}), ErrorKind.PERMANENT),
        (answer(401, "", "text/plain"), ErrorKind.PERMANENT),
        (answer(403, {"error": "forbidden"}), ErrorKind.PERMANENT),
        (answer(500, "<html>oops</html>", "text/html"), ErrorKind.TRANSIENT),
        (answer(503, {"error": "unavailable"}), ErrorKind.TRANSIENT),
        (answer(429, {"error": "rate_limited"}), ErrorKind.TRANSIENT),
        (answer(200, "<html>maintenance</html>", "text/html"), ErrorKind.TRANSIENT),
        (answer(200, {"positions": []}), ErrorKind.TRANSIENT),
    ],
)
def test_portfolio_answers_map_to_kinds(response: requests.Response, kind: ErrorKind) -> None:
    with pytest.raises(BrokerError) as caught:
        PiTrade(creds())._check_portfolio(response)
    assert caught.value.kind is kind
    assert SECRET_KEY not in str(caught.value)


def test_a_portfolio_list_validates() -> None:
    PiTrade(creds())._check_portfolio(answer(200, [{"symbol": "AAPL", "quantity": 1}]))
