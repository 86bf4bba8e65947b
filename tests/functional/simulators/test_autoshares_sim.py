"""The AutoShares (ETNA Trader) simulator over real loopback HTTP, driven as a client would drive it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from infra.local.simulators.autoshares import TOKEN_PATH, USER_INFO_PATH, AutoSharesSimulator
from infra.local.simulators.base import ManualClock

TIMEOUT = 5.0
APP_KEY = "etna-app-key"
OTHER_KEY = "etna-other-app"
USER, PASSWORD = "trader1", "s3cret-pass"
TWO_FA_USER, PIN_USER, BOTH_USER = "trader2fa", "traderpin", "traderboth"
PIN = "4455"
APP_KEY_ERROR = {"error": "Application key is not defined or does not exist"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[AutoSharesSimulator]:
    with AutoSharesSimulator(clock=clock) as simulator:
        simulator.add_app_key(APP_KEY)
        simulator.add_app_key(OTHER_KEY)
        simulator.add_account(USER, PASSWORD, first_name="Demo", last_name="Trader", email="demo@example.com")
        simulator.add_account(TWO_FA_USER, PASSWORD, two_factor=True)
        simulator.add_account(PIN_USER, PASSWORD, pin_step=True, pin=PIN)
        simulator.add_account(BOTH_USER, PASSWORD, two_factor=True, pin_step=True, pin=PIN)
        yield simulator


def token_call(
    http: requests.Session,
    sim: AutoSharesSimulator,
    user: str = USER,
    *,
    password: str = PASSWORD,
    app_key: str | None = APP_KEY,
    ticket: str | None = None,
    **step: str,
) -> requests.Response:
    headers = {"Username": user, "Password": password, **step}
    if app_key is not None:
        headers["Et-App-Key"] = app_key
    if ticket is not None:
        headers["Authorization"] = f"Bearer {ticket}"
    return http.post(sim.url + TOKEN_PATH, headers=headers, timeout=TIMEOUT)


def info(
    http: requests.Session, sim: AutoSharesSimulator, token: str | None, app_key: str | None = APP_KEY
) -> requests.Response:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if app_key is not None:
        headers["Et-App-Key"] = app_key
    return http.get(sim.url + USER_INFO_PATH, headers=headers, timeout=TIMEOUT)


def expecting(response: requests.Response, step: str) -> str:
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["State"] == "Expecting" and body["Step"] == step and body["Reason"]
    ticket: str = body["Token"]
    return ticket


def succeeded(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"State", "Token"} and body["State"] == "Succeeded"
    token: str = body["Token"]
    return token


def failure(response: requests.Response) -> tuple[int, str, str]:
    body: dict[str, Any] = response.json()
    assert body["State"] == "Failed"
    return response.status_code, str(body["Step"]), str(body["Reason"])


CORRUPTED = (401, "VerificationCode", "Corrupted ticket")


# ----- the happy paths --------------------------------------------------------------------------------


def test_single_factor_login_then_user_info(sim: AutoSharesSimulator, http: requests.Session) -> None:
    token = succeeded(token_call(http, sim))
    answer = info(http, sim, token)
    assert answer.status_code == 200
    assert answer.json() == {
        "UserId": 1000,
        "Login": USER,
        "FirstName": "Demo",
        "LastName": "Trader",
        "Email": "demo@example.com",
    }
    assert sim.logins(USER) == 1 and sim.issued_tokens(USER) == [token] and sim.outbox(USER) == []
    assert [(r.endpoint, r.status, r.account) for r in sim.requests] == [("token", 200, USER), ("user_info", 200, USER)]


def test_two_factor_login_waits_for_the_mailed_code(sim: AutoSharesSimulator, http: requests.Session) -> None:
    ticket = expecting(token_call(http, sim, TWO_FA_USER), "VerificationCode")
    [code] = sim.outbox(TWO_FA_USER)
    assert len(code) == 6 and code.isdigit()
    assert info(http, sim, ticket).status_code == 401  # an interim ticket is not a session
    token = succeeded(token_call(http, sim, TWO_FA_USER, ticket=ticket, VerificationCode=code))
    assert info(http, sim, token).json()["Login"] == TWO_FA_USER
    assert sim.logins(TWO_FA_USER) == 2 and sim.outbox(USER) == []


def test_pin_step_then_code_step(sim: AutoSharesSimulator, http: requests.Session) -> None:
    pin_ticket = expecting(token_call(http, sim, PIN_USER), "SecutityPin")
    assert sim.outbox(PIN_USER) == []
    assert succeeded(token_call(http, sim, PIN_USER, ticket=pin_ticket, PinCode=PIN))

    first = expecting(token_call(http, sim, BOTH_USER), "SecutityPin")
    second = expecting(token_call(http, sim, BOTH_USER, ticket=first, PinCode=PIN), "VerificationCode")
    [code] = sim.outbox(BOTH_USER)
    assert succeeded(token_call(http, sim, BOTH_USER, ticket=second, VerificationCode=code))


def test_url_ends_with_the_api_root(sim: AutoSharesSimulator) -> None:
    assert sim.url == f"http://127.0.0.1:{sim.port}/api"


def test_paths_and_methods_are_exact(sim: AutoSharesSimulator, http: requests.Session) -> None:
    headers = {"Et-App-Key": APP_KEY, "Username": USER, "Password": PASSWORD}
    assert http.post(sim.url + TOKEN_PATH + "/", headers=headers, timeout=TIMEOUT).status_code == 404
    assert http.post(sim.url.removesuffix("/api") + TOKEN_PATH, headers=headers, timeout=TIMEOUT).status_code == 404
    wrong = http.get(sim.url + TOKEN_PATH, headers=headers, timeout=TIMEOUT)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"


# ----- the first step's rejections --------------------------------------------------------------------


@pytest.mark.parametrize("app_key", [None, "not-a-key"], ids=["missing", "unknown"])
def test_the_app_key_is_checked_first(sim: AutoSharesSimulator, http: requests.Session, app_key: str | None) -> None:
    answer = token_call(http, sim, password="wrong", app_key=app_key)
    assert answer.status_code == 403 and answer.json() == APP_KEY_ERROR
    assert sim.issued_tokens(USER) == []


def test_a_body_is_refused(sim: AutoSharesSimulator, http: requests.Session) -> None:
    headers = {"Et-App-Key": APP_KEY, "Username": USER, "Password": PASSWORD}
    answer = http.post(sim.url + TOKEN_PATH, data={"username": USER}, headers=headers, timeout=TIMEOUT)
    assert answer.status_code == 400 and "no body" in answer.json()["error"]


@pytest.mark.parametrize(("user", "password"), [(USER, "wrong-pass"), ("nobody", PASSWORD), ("", PASSWORD), (USER, "")])
def test_bad_credentials_are_401(sim: AutoSharesSimulator, http: requests.Session, user: str, password: str) -> None:
    answer = token_call(http, sim, user, password=password)
    assert failure(answer) == (401, "BaseAuthentication", "Invalid credentials")


def test_an_expired_password(sim: AutoSharesSimulator, http: requests.Session) -> None:
    sim.expire_password(USER)
    assert failure(token_call(http, sim))[2] == "Your Password has expired and must be changed"
    assert failure(token_call(http, sim, password="wrong"))[2] == "Invalid credentials"
    sim.expire_password(USER, expired=False)
    assert succeeded(token_call(http, sim))


# ----- tickets ----------------------------------------------------------------------------------------


def test_a_code_without_its_ticket_is_a_corrupted_ticket(sim: AutoSharesSimulator, http: requests.Session) -> None:
    expecting(token_call(http, sim, TWO_FA_USER), "VerificationCode")
    [code] = sim.outbox(TWO_FA_USER)
    assert failure(token_call(http, sim, TWO_FA_USER, VerificationCode=code)) == CORRUPTED
    assert failure(token_call(http, sim, PIN_USER, PinCode=PIN)) == (401, "SecutityPin", "Corrupted ticket")


def test_a_ticket_is_single_use(sim: AutoSharesSimulator, http: requests.Session) -> None:
    ticket = expecting(token_call(http, sim, TWO_FA_USER), "VerificationCode")
    [code] = sim.outbox(TWO_FA_USER)
    assert succeeded(token_call(http, sim, TWO_FA_USER, ticket=ticket, VerificationCode=code))
    assert failure(token_call(http, sim, TWO_FA_USER, ticket=ticket, VerificationCode=code)) == CORRUPTED


def test_a_wrong_code_spends_the_ticket(sim: AutoSharesSimulator, http: requests.Session) -> None:
    ticket = expecting(token_call(http, sim, TWO_FA_USER), "VerificationCode")
    [code] = sim.outbox(TWO_FA_USER)
    wrong = "000000" if code != "000000" else "111111"
    answer = token_call(http, sim, TWO_FA_USER, ticket=ticket, VerificationCode=wrong)
    assert failure(answer) == (401, "VerificationCode", "Invalid verification code")
    assert failure(token_call(http, sim, TWO_FA_USER, ticket=ticket, VerificationCode=code)) == CORRUPTED


def test_a_wrong_pin(sim: AutoSharesSimulator, http: requests.Session) -> None:
    ticket = expecting(token_call(http, sim, PIN_USER), "SecutityPin")
    assert failure(token_call(http, sim, PIN_USER, ticket=ticket, PinCode="0000")) == (
        401,
        "SecutityPin",
        "Invalid pin",
    )


@pytest.mark.parametrize(
    "change",
    [
        {"user": USER},
        {"app_key": OTHER_KEY},
        {"ticket": "made-up-ticket"},
        {"password": "wrong-pass"},
    ],
    ids=["another-user", "another-app-key", "invented", "wrong-password"],
)
def test_a_ticket_is_bound_to_its_login(
    sim: AutoSharesSimulator, http: requests.Session, change: dict[str, str]
) -> None:
    ticket = expecting(token_call(http, sim, TWO_FA_USER), "VerificationCode")
    [code] = sim.outbox(TWO_FA_USER)
    call: dict[str, Any] = {"user": TWO_FA_USER, "ticket": ticket, **change}
    answer = token_call(http, sim, call.pop("user"), VerificationCode=code, **call)
    expected = (401, "BaseAuthentication", "Invalid credentials") if "password" in change else CORRUPTED
    assert failure(answer) == expected


def test_tickets_lapse(sim: AutoSharesSimulator, http: requests.Session, clock: ManualClock) -> None:
    ticket = expecting(token_call(http, sim, TWO_FA_USER), "VerificationCode")
    clock.advance(600)
    code = sim.outbox(TWO_FA_USER)[-1]
    assert failure(token_call(http, sim, TWO_FA_USER, ticket=ticket, VerificationCode=code)) == CORRUPTED

    sim.ticket_lifetime_seconds = None
    ticket = expecting(token_call(http, sim, TWO_FA_USER), "VerificationCode")
    clock.advance(7 * 24 * 3600)
    code = sim.outbox(TWO_FA_USER)[-1]
    assert succeeded(token_call(http, sim, TWO_FA_USER, ticket=ticket, VerificationCode=code))
    assert len(sim.outbox(TWO_FA_USER)) == 2


# ----- the session ------------------------------------------------------------------------------------


def test_user_info_wants_the_token_and_its_app_key(
    sim: AutoSharesSimulator, http: requests.Session, clock: ManualClock
) -> None:
    token = succeeded(token_call(http, sim))
    denied = {"Message": "Authorization has been denied for this request."}
    for bad_token in (None, "not-a-token"):
        answer = info(http, sim, bad_token)
        assert answer.status_code == 401 and answer.json() == denied
    for app_key in (None, "not-a-key", OTHER_KEY):
        answer = info(http, sim, token, app_key=app_key)
        assert answer.status_code == 403 and answer.json() == APP_KEY_ERROR
    no_scheme = http.get(
        sim.url + USER_INFO_PATH, headers={"Authorization": token, "Et-App-Key": APP_KEY}, timeout=TIMEOUT
    )
    assert no_scheme.status_code == 401
    clock.advance(24 * 3600 - 1)
    assert info(http, sim, token).status_code == 200
    clock.advance(1)
    assert info(http, sim, token).status_code == 401


@pytest.mark.parametrize("revokes", [False, True])
def test_new_login_revokes_previous_switch(sim: AutoSharesSimulator, http: requests.Session, revokes: bool) -> None:
    sim.new_login_revokes_previous = revokes
    first = succeeded(token_call(http, sim))
    second = succeeded(token_call(http, sim))
    assert info(http, sim, second).status_code == 200
    assert info(http, sim, first).status_code == (401 if revokes else 200)


# ----- faults -----------------------------------------------------------------------------------------


def test_faults(sim: AutoSharesSimulator, http: requests.Session) -> None:
    sim.faults.transient_error_next(1, endpoint="token")
    broken = token_call(http, sim)
    assert broken.status_code == 500 and broken.json() == {"Message": "An error has occurred."}
    token = succeeded(token_call(http, sim))
    sim.faults.reject_validation_next(1)
    assert info(http, sim, token).status_code == 401
    sim.faults.fail_next(1, status=503, endpoint="token")
    page = token_call(http, sim)
    assert page.status_code == 503 and page.headers["Content-Type"].startswith("text/html")
    sim.faults.rate_limit_next(1)
    assert token_call(http, sim).status_code == 429
    assert info(http, sim, token).status_code == 200
    assert sim.logins(USER) == 4


def test_add_account_refuses_a_pin_step_without_pin(sim: AutoSharesSimulator) -> None:
    with pytest.raises(ValueError, match="pin"):
        sim.add_account("nopin", PASSWORD, pin_step=True)
