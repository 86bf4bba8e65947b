"""Kite family (Zerodha, BlinkX): answers mapped to error kinds, expiry, login URL, redirect parsing. No network."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from broker_tokens.brokers.kite import (
    BlinkX,
    Step,
    Zerodha,
    checksum,
    next_daily_reset,
    request_token_from,
    web_login_enabled,
)
from broker_tokens.clock import WarpClock
from broker_tokens.credentials import Credentials, validate_credentials
from broker_tokens.errors import BrokerError, CredentialsError, ErrorKind
from broker_tokens.models import AccountState, DailyReset, PendingStep
from tests.support.responses import answer, raised

TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DP"
ZERODHA = {
    "broker": "zerodha",
    "api_key": "kite-key",
    "api_secret": "kite-secret-123",
    "user_id": "AB1234",
    "password": "pass-word-1",
    "totp_secret": TOTP_SECRET,
}
BLINKX = {"broker": "blinkx", "api_key": "bx-key", "api_secret": "bx-secret-123"}


def creds(data: Mapping[str, object], account: str = "kite-1") -> Credentials:
    return validate_credentials(account, dict(data))


def kite_error(status: int, error_type: str, message: str) -> requests.Response:
    return answer(status, {"status": "error", "message": message, "error_type": error_type, "data": None})


def error_of(response: requests.Response, step: Step, adapter: Zerodha | BlinkX | None = None) -> BrokerError:
    return raised(lambda: (adapter or Zerodha(creds(ZERODHA)))._data(response, step))


# ----- error kinds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "step", "kind"),
    [
        # the exchange
        (kite_error(403, "TokenException", "Invalid `checksum`."), "exchange", ErrorKind.PERMANENT),
        (kite_error(403, "TokenException", "Token is invalid or has expired."), "exchange", ErrorKind.PERMANENT),
        (kite_error(403, "InputException", "Invalid `api_key`."), "exchange", ErrorKind.PERMANENT),
        (kite_error(500, "GeneralException", "Something went wrong"), "exchange", ErrorKind.TRANSIENT),
        (kite_error(200, "NetworkException", "Gateway busy"), "exchange", ErrorKind.TRANSIENT),
        (kite_error(429, "NetworkException", "Too many requests"), "exchange", ErrorKind.TRANSIENT),
        (answer(503, "<html>503 Service Unavailable</html>", "text/html"), "exchange", ErrorKind.TRANSIENT),
        (answer(200, "<html>maintenance</html>", "text/html"), "exchange", ErrorKind.TRANSIENT),
        # the validation right after the exchange
        (kite_error(403, "TokenException", "Incorrect `api_key` or `access_token`."), "profile", ErrorKind.TRANSIENT),
        (kite_error(403, "PermissionException", "Insufficient permission"), "profile", ErrorKind.PERMANENT),
        (kite_error(502, "DataException", "upstream"), "profile", ErrorKind.TRANSIENT),
        # Zerodha's web login
        (kite_error(400, "InputException", "Invalid username or password."), "web_login", ErrorKind.PERMANENT),
        (kite_error(403, "UserException", "Your account is locked."), "web_login", ErrorKind.PERMANENT),
        (answer(502, "<html>Bad gateway</html>", "text/html"), "web_login", ErrorKind.TRANSIENT),
        (kite_error(400, "InputException", "Invalid TOTP"), "twofa", ErrorKind.TOTP),
        (kite_error(403, "TokenException", "Your session has expired."), "twofa", ErrorKind.TRANSIENT),
        (kite_error(400, "InputException", "Invalid `api_key`."), "connect", ErrorKind.PERMANENT),
        (kite_error(403, "TokenException", "Your session has expired."), "connect", ErrorKind.TRANSIENT),
    ],
)
def test_answers_map_to_kinds(response: requests.Response, step: Step, kind: ErrorKind) -> None:
    assert error_of(response, step).kind is kind


def test_checksum_rejection_names_the_api_secret_not_its_value() -> None:
    error = error_of(kite_error(403, "TokenException", "Invalid `checksum`."), "exchange")
    assert "api_secret" in str(error) and "kite-secret-123" not in str(error)
    assert error.code == "TokenException" and error.status == 403


def test_dead_request_token_says_log_in_again() -> None:
    error = error_of(kite_error(403, "TokenException", "Token is invalid or has expired."), "exchange")
    assert "log in again" in str(error)


def test_success_envelope_yields_data() -> None:
    body = {"status": "success", "data": {"user_id": "AB1234"}}
    assert Zerodha(creds(ZERODHA))._data(answer(200, body), "profile") == {"user_id": "AB1234"}


def test_a_twofa_rejection_makes_the_retry_wait_for_a_new_window() -> None:
    adapter = Zerodha(creds(ZERODHA), clock=WarpClock())
    adapter.totp_code()
    first_window = adapter._last_window
    error_of(kite_error(400, "InputException", "Invalid TOTP"), "twofa", adapter)
    assert adapter._rejected_window == first_window is not None


def test_a_user_without_totp_cannot_be_logged_in_unattended() -> None:
    from broker_tokens.brokers.kite import _totp_twofa_type

    assert _totp_twofa_type({"twofa_type": "app_code", "twofa_types": ["totp", "app_code"]}) == "totp"
    with pytest.raises(BrokerError) as caught:
        _totp_twofa_type({"twofa_type": "app_code", "twofa_types": ["app_code"]})
    assert caught.value.kind is ErrorKind.PERMANENT and "TOTP" in str(caught.value)


# ----- expiry: the first 06:00 IST after the login -------------------------------------------------------


@pytest.mark.parametrize(
    ("login_utc", "expiry_utc"),
    [
        (datetime(2026, 11, 24, 0, 29, 59, tzinfo=UTC), datetime(2026, 11, 24, 0, 30, tzinfo=UTC)),  # 05:59:59 IST
        (datetime(2026, 11, 24, 0, 30, tzinfo=UTC), datetime(2026, 11, 25, 0, 30, tzinfo=UTC)),  # 06:00 IST sharp
        (datetime(2026, 11, 24, 2, 0, tzinfo=UTC), datetime(2026, 11, 25, 0, 30, tzinfo=UTC)),  # 07:30 IST
        (datetime(2026, 11, 24, 20, 0, tzinfo=UTC), datetime(2026, 11, 25, 0, 30, tzinfo=UTC)),  # 01:30 IST next day
        (datetime(2026, 12, 31, 18, 29, tzinfo=UTC), datetime(2027, 1, 1, 0, 30, tzinfo=UTC)),  # 23:59 IST, new year
    ],
)
def test_expiry_is_the_next_0600_ist(login_utc: datetime, expiry_utc: datetime) -> None:
    assert next_daily_reset(login_utc) == expiry_utc


def test_the_family_declares_the_0600_reset() -> None:
    assert Zerodha.daily_reset == BlinkX.daily_reset == DailyReset(time(6, 0), ZoneInfo("Asia/Kolkata"))


# ----- what an app needs ---------------------------------------------------------------------------------


def test_headers_and_authorization_per_flavour() -> None:
    zerodha, blinkx = Zerodha(creds(ZERODHA)), BlinkX(creds(BLINKX))
    assert zerodha.app_headers() == {"X-Kite-Version": "3"}
    assert blinkx.app_headers() == {"X-Version": "3", "X-BlinkX-Version": "3"}
    assert zerodha.authorization("tok") == "token kite-key:tok"
    assert blinkx.authorization("tok") == "token bx-key:tok"


def test_checksum_is_sha256_of_key_token_secret() -> None:
    assert checksum("k", "rt", "s") == hashlib.sha256(b"krts").hexdigest()


def test_default_roots_and_login_urls() -> None:
    zerodha, blinkx = Zerodha(creds(ZERODHA)), BlinkX(creds(BLINKX))
    assert zerodha.base_url == "https://api.kite.trade" and blinkx.base_url == "https://api.blinkx.in/SmartApi"
    assert zerodha.connect_url == "https://kite.zerodha.com/connect/login?v=3&api_key=kite-key"
    assert blinkx.connect_url == "https://api.blinkx.in/connect/login?v=3&api_key=bx-key"
    assert zerodha.web_origin == "https://kite.zerodha.com"


def test_login_url_override_moves_the_web_login_origin() -> None:
    adapter = Zerodha(creds({**ZERODHA, "login_url": "http://127.0.0.1:8123/connect/login"}))
    assert adapter.web_origin == "http://127.0.0.1:8123"
    assert adapter.connect_url.startswith("http://127.0.0.1:8123/connect/login?v=3&api_key=")


# ----- BlinkX (and Zerodha with the web login off): a person logs in -------------------------------------


def test_blinkx_login_is_a_pending_step_with_the_login_url() -> None:
    step = BlinkX(creds(BLINKX, "blinkx-1")).login()
    assert isinstance(step, PendingStep) and step.state is AccountState.AWAITING_LOGIN
    assert step.login_url == "https://api.blinkx.in/connect/login?v=3&api_key=bx-key"
    # The step, and every link to it, closes with the person window (past the three morning runs).
    assert step.expires_at is not None
    assert timedelta(minutes=119) < step.expires_at - datetime.now(UTC) <= timedelta(hours=2)
    assert "/callback/blinkx-1" in step.message and "broker-tokens login blinkx-1" in step.message


def test_zerodha_without_password_and_totp_is_logged_in_by_a_person() -> None:
    person_mode = {k: v for k, v in ZERODHA.items() if k not in ("password", "totp_secret")}
    step = Zerodha(creds(person_mode)).login()
    assert isinstance(step, PendingStep) and step.state is AccountState.AWAITING_LOGIN
    assert step.login_url == "https://kite.zerodha.com/connect/login?v=3&api_key=kite-key"


@pytest.mark.parametrize("key", ["password", "totp_secret"])
def test_zerodha_password_and_totp_secret_go_together(key: str) -> None:
    with pytest.raises(CredentialsError) as caught:
        creds({k: v for k, v in ZERODHA.items() if k != key})
    assert caught.value.key == key and "go together" in str(caught.value)


def test_zerodha_web_login_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    assert web_login_enabled({}) is True
    assert web_login_enabled({"ZERODHA_WEB_LOGIN": " OFF "}) is False
    with pytest.raises(BrokerError) as caught:
        web_login_enabled({"ZERODHA_WEB_LOGIN": "maybe"})
    assert caught.value.kind is ErrorKind.CONFIGURATION and "ZERODHA_WEB_LOGIN" in str(caught.value)
    monkeypatch.setenv("ZERODHA_WEB_LOGIN", "off")
    step = Zerodha(creds(ZERODHA)).login()
    assert isinstance(step, PendingStep) and step.state is AccountState.AWAITING_LOGIN
    assert step.login_url == "https://kite.zerodha.com/connect/login?v=3&api_key=kite-key"


@pytest.mark.parametrize(
    "value",
    [
        "AbC123xyz789",
        "  AbC123xyz789\n",
        "http://127.0.0.1:8765/callback/blinkx-1?request_token=AbC123xyz789&action=login&status=success",
        "https://example.com/cb?type=login&status=success&request_token=AbC123xyz789",
        "request_token=AbC123xyz789&action=login",
        "?request_token=AbC123xyz789",
    ],
)
def test_request_token_from_a_token_or_a_redirect(value: str) -> None:
    assert request_token_from(value) == "AbC123xyz789"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("https://example.com/cb?request_token=AbC123xyz789&status=cancelled", "status"),
        ("https://example.com/cb?action=login&status=success", "no request_token"),
        ("", "not a request token"),
        ("two words", "not a request token"),
        ("abc", "not a request token"),
    ],
)
def test_request_token_from_refuses_what_is_not_one(value: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        request_token_from(value)


def test_a_bad_paste_is_not_a_permanent_rejection() -> None:
    with pytest.raises(BrokerError) as caught:
        BlinkX(creds(BLINKX)).complete(None, "https://example.com/cb?status=success")
    assert caught.value.kind is ErrorKind.CONFIGURATION


# ----- the credentials contract --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["api_key", "api_secret", "user_id", "password", "totp_secret"])
def test_zerodha_requires_every_login_key(key: str) -> None:
    with pytest.raises(CredentialsError) as caught:
        creds({k: v for k, v in ZERODHA.items() if k != key})
    assert caught.value.key == key


def test_blinkx_needs_only_the_app_keys_and_accepts_the_optional_ones() -> None:
    full = creds(
        {**BLINKX, "user_id": "BX1", "password": "p", "totp_secret": TOTP_SECRET, "login_url": "https://x.in/l"}
    )
    assert full.get("user_id") == "BX1"
    with pytest.raises(CredentialsError) as caught:
        creds({"broker": "blinkx", "api_key": "k"})
    assert caught.value.key == "api_secret"


def test_login_url_must_be_https() -> None:
    with pytest.raises(CredentialsError) as caught:
        creds({**ZERODHA, "login_url": "http://kite.zerodha.com/connect/login"})
    assert caught.value.key == "login_url"
