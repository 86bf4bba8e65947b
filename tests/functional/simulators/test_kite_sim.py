"""The Kite family simulators (Zerodha, BlinkX) over real loopback HTTP, driven as a client drives the broker."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from infra.local.simulators.base import ManualClock
from infra.local.simulators.kite import (
    CONNECT_LOGIN_PATH,
    PROFILE_PATH,
    REQUEST_TOKEN_SECONDS,
    SESSION_PATH,
    TWOFA_PATH,
    WEB_LOGIN_PATH,
    BlinkXSimulator,
    KiteSimulator,
    ZerodhaSimulator,
)
from infra.local.simulators.totp import code_at

TIMEOUT = 5.0
START = datetime(2026, 11, 24, 2, 0, 10, tzinfo=UTC).timestamp()  # 07:30:10 IST, early in a TOTP step
API_KEY, API_SECRET = "app-key-1", "app-secret-1"
USER, PASSWORD, SECRET = "AB1234", "pass-word-1", "JBSWY3DPEHPK3PXP"
REDIRECT = "http://127.0.0.1:9/callback/kite-1"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def seeded(sim: KiteSimulator) -> KiteSimulator:
    sim.add_app(API_KEY, API_SECRET, REDIRECT)
    sim.add_user(USER, PASSWORD, SECRET, user_name="Test Trader", email="t@example.com")
    return sim


@pytest.fixture
def zerodha(clock: ManualClock) -> Iterator[KiteSimulator]:
    with ZerodhaSimulator(clock=clock) as sim:
        yield seeded(sim)


@pytest.fixture
def blinkx(clock: ManualClock) -> Iterator[KiteSimulator]:
    with BlinkXSimulator(clock=clock) as sim:
        yield seeded(sim)


@pytest.fixture(params=["zerodha", "blinkx"])
def kite(request: pytest.FixtureRequest, clock: ManualClock) -> Iterator[KiteSimulator]:
    """Each flavour in turn."""
    flavour = ZerodhaSimulator if request.param == "zerodha" else BlinkXSimulator
    with flavour(clock=clock) as sim:
        yield seeded(sim)


def version_headers(sim: KiteSimulator) -> dict[str, str]:
    return {"X-Kite-Version": "3"} if isinstance(sim, ZerodhaSimulator) else {"X-Version": "3"}


def person_login(
    http: requests.Session, sim: KiteSimulator, *, code: str | None = None, password: str = PASSWORD
) -> requests.Response:
    """What a person does: open the login page, submit the form."""
    page = http.get(sim.login_url, params={"v": "3", "api_key": API_KEY}, timeout=TIMEOUT)
    assert page.status_code == 200 and 'name="totp"' in page.text
    form = {
        "v": "3",
        "api_key": API_KEY,
        "user_id": USER,
        "password": password,
        "totp": code if code is not None else code_at(SECRET, sim.clock.time()),
    }
    return http.post(sim.origin + CONNECT_LOGIN_PATH, data=form, allow_redirects=False, timeout=TIMEOUT)


def request_token_of(response: requests.Response) -> str:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    params = parse_qs(urlsplit(location).query)
    assert params["action"] == ["login"] and params["status"] == ["success"]
    return params["request_token"][0]


def exchange(
    http: requests.Session,
    sim: KiteSimulator,
    request_token: str,
    *,
    secret: str = API_SECRET,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    proof = hashlib.sha256(f"{API_KEY}{request_token}{secret}".encode()).hexdigest()
    return http.post(
        sim.url + SESSION_PATH,
        data={"api_key": API_KEY, "request_token": request_token, "checksum": proof},
        headers=version_headers(sim) if headers is None else headers,
        timeout=TIMEOUT,
    )


def access_token_of(response: requests.Response) -> str:
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", body
    token: str = body["data"]["access_token"]
    return token


def profile(
    http: requests.Session, sim: KiteSimulator, token: str, headers: dict[str, str] | None = None
) -> requests.Response:
    return http.get(
        sim.url + PROFILE_PATH,
        headers={"Authorization": f"token {API_KEY}:{token}", **(version_headers(sim) if headers is None else headers)},
        timeout=TIMEOUT,
    )


def kite_error(response: requests.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["error_type"] == error_type and body["data"] is None
    message: str = body["message"]
    return message


def fresh_token(http: requests.Session, sim: KiteSimulator) -> str:
    return access_token_of(exchange(http, sim, request_token_of(person_login(http, sim))))


# ----- the happy paths ----------------------------------------------------------------------------------


def test_person_login_exchange_profile(kite: KiteSimulator, http: requests.Session) -> None:
    answer = exchange(http, kite, request_token_of(person_login(http, kite)))
    data = answer.json()["data"]
    assert data["user_id"] == USER and data["api_key"] == API_KEY and data["refresh_token"] == ""
    assert data["public_token"] and data["login_time"] == "2026-11-24 07:30:10"
    me = profile(http, kite, data["access_token"]).json()
    assert me["status"] == "success" and me["data"]["user_id"] == USER
    assert me["data"]["broker"] == ("ZERODHA" if isinstance(kite, ZerodhaSimulator) else "BLINKX")
    assert kite.logins(USER) == 1 and kite.exchanges(USER) == 1


def test_roots_per_flavour(zerodha: KiteSimulator, blinkx: KiteSimulator) -> None:
    assert zerodha.url == zerodha.origin and blinkx.url == blinkx.origin + "/SmartApi"
    assert zerodha.login_url == zerodha.origin + "/connect/login"
    assert blinkx.login_url == blinkx.origin + "/connect/login"


def test_zerodha_web_login_and_the_redirect_chain(zerodha: KiteSimulator, http: requests.Session) -> None:
    login = http.post(
        zerodha.origin + WEB_LOGIN_PATH, data={"user_id": USER, "password": PASSWORD}, timeout=TIMEOUT
    ).json()
    assert login["status"] == "success" and login["data"]["twofa_type"] == "totp"
    assert "kf_session" in http.cookies
    twofa = http.post(
        zerodha.origin + TWOFA_PATH,
        data={
            "user_id": USER,
            "request_id": login["data"]["request_id"],
            "twofa_value": code_at(SECRET, zerodha.clock.time()),
            "twofa_type": "totp",
        },
        timeout=TIMEOUT,
    )
    assert twofa.json()["status"] == "success"
    url, hops = f"{zerodha.login_url}?v=3&api_key={API_KEY}", 0
    while True:
        hop = http.get(url, allow_redirects=False, timeout=TIMEOUT)
        assert hop.status_code == 302
        url, hops = urljoin(url, hop.headers["Location"]), hops + 1
        if "request_token=" in url:
            break
    assert hops == 2 and url.startswith(REDIRECT)
    token = parse_qs(urlsplit(url).query)["request_token"][0]
    assert profile(http, zerodha, access_token_of(exchange(http, zerodha, token))).status_code == 200


def test_logout_ends_the_token(kite: KiteSimulator, http: requests.Session) -> None:
    token = fresh_token(http, kite)
    answer = http.delete(
        kite.url + SESSION_PATH,
        params={"api_key": API_KEY, "access_token": token},
        headers={"Authorization": f"token {API_KEY}:{token}", **version_headers(kite)},
        timeout=TIMEOUT,
    )
    assert answer.json() == {"status": "success", "data": True}
    kite_error(profile(http, kite, token), 403, "TokenException")


@pytest.mark.parametrize("wrong", ["no authorization", "another token's authorization", "a body", "no version"])
def test_logout_is_refused_unless_shaped_as_the_sdk_sends_it(
    kite: KiteSimulator, http: requests.Session, wrong: str
) -> None:
    token, other = fresh_token(http, kite), "not-the-token"
    headers = {"Authorization": f"token {API_KEY}:{token}", **version_headers(kite)}
    body = None
    if wrong == "no authorization":
        del headers["Authorization"]
    elif wrong == "another token's authorization":
        headers["Authorization"] = f"token {API_KEY}:{other}"
    elif wrong == "a body":
        body = {"api_key": API_KEY}
    else:
        headers = {"Authorization": headers["Authorization"]}
    params = {"api_key": API_KEY, "access_token": token}
    answer = http.delete(kite.url + SESSION_PATH, params=params, data=body, headers=headers, timeout=TIMEOUT)
    status, error_type = {"a body": (400, "InputException"), "no version": (400, "InputException")}.get(
        wrong, (403, "TokenException")
    )
    kite_error(answer, status, error_type)
    assert profile(http, kite, token).status_code == 200  # the session lives on
    # Shaped right it ends the session; the same logout a second time is refused.
    good = {"Authorization": f"token {API_KEY}:{token}", **version_headers(kite)}
    assert http.delete(kite.url + SESSION_PATH, params=params, headers=good, timeout=TIMEOUT).json()["data"] is True
    again = http.delete(kite.url + SESSION_PATH, params=params, headers=good, timeout=TIMEOUT)
    kite_error(again, 403, "TokenException")


# ----- every rejection ----------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["none", "wrong value"])
def test_missing_version_header_is_refused(kite: KiteSimulator, http: requests.Session, missing: str) -> None:
    token = fresh_token(http, kite)
    headers = {} if missing == "none" else {name: "2" for name in version_headers(kite)}
    message = kite_error(profile(http, kite, token, headers=headers), 400, "InputException")
    assert "version" in message
    request_token = request_token_of(person_login(http, kite))
    kite_error(exchange(http, kite, request_token, headers=headers), 400, "InputException")


def test_blinkx_takes_either_version_header_and_zerodha_only_its_own(
    zerodha: KiteSimulator, blinkx: KiteSimulator, http: requests.Session
) -> None:
    token = fresh_token(http, blinkx)
    for header in ("X-Version", "X-BlinkX-Version"):
        assert profile(http, blinkx, token, headers={header: "3"}).status_code == 200
    kite_error(profile(http, blinkx, token, headers={"X-Kite-Version": "3"}), 400, "InputException")
    token = fresh_token(http, zerodha)
    kite_error(profile(http, zerodha, token, headers={"X-Version": "3"}), 400, "InputException")


def test_bad_checksum_is_refused_and_keeps_the_request_token(kite: KiteSimulator, http: requests.Session) -> None:
    request_token = request_token_of(person_login(http, kite))
    message = kite_error(exchange(http, kite, request_token, secret="wrong-secret"), 403, "TokenException")
    assert message == "Invalid `checksum`."
    assert exchange(http, kite, request_token).status_code == 200


def test_reused_request_token_is_refused(kite: KiteSimulator, http: requests.Session) -> None:
    request_token = request_token_of(person_login(http, kite))
    access_token_of(exchange(http, kite, request_token))
    message = kite_error(exchange(http, kite, request_token), 403, "TokenException")
    assert message == "Token is invalid or has expired."


def test_expired_request_token_is_refused(kite: KiteSimulator, http: requests.Session, clock: ManualClock) -> None:
    request_token = request_token_of(person_login(http, kite))
    clock.advance(REQUEST_TOKEN_SECONDS)
    kite_error(exchange(http, kite, request_token), 403, "TokenException")


def test_request_token_just_within_five_minutes_works(
    kite: KiteSimulator, http: requests.Session, clock: ManualClock
) -> None:
    request_token = request_token_of(person_login(http, kite))
    clock.advance(REQUEST_TOKEN_SECONDS - 1)
    assert exchange(http, kite, request_token).status_code == 200


def test_unknown_api_key_is_refused_at_the_exchange_and_the_login_page(
    kite: KiteSimulator, http: requests.Session
) -> None:
    answer = http.post(
        kite.url + SESSION_PATH,
        data={"api_key": "nobody", "request_token": "abcdef123456", "checksum": "0" * 64},
        headers=version_headers(kite),
        timeout=TIMEOUT,
    )
    assert kite_error(answer, 403, "InputException") == "Invalid `api_key`."
    page = http.get(kite.login_url, params={"v": "3", "api_key": "nobody"}, timeout=TIMEOUT)
    kite_error(page, 400, "InputException")
    no_version = http.get(kite.login_url, params={"api_key": API_KEY}, timeout=TIMEOUT)
    kite_error(no_version, 400, "InputException")


def test_stale_totp_on_the_login_form_is_refused(kite: KiteSimulator, http: requests.Session) -> None:
    stale = code_at(SECRET, kite.clock.time() - 90)
    answer = person_login(http, kite, code=stale)
    assert answer.status_code == 200 and "Location" not in answer.headers and "Invalid TOTP" in answer.text
    wrong_password = person_login(http, kite, password="nope")
    assert "Location" not in wrong_password.headers and "Invalid username or password." in wrong_password.text


def test_stale_totp_on_zerodha_twofa_is_refused(zerodha: KiteSimulator, http: requests.Session) -> None:
    login = http.post(zerodha.origin + WEB_LOGIN_PATH, data={"user_id": USER, "password": PASSWORD}, timeout=TIMEOUT)
    form = {
        "user_id": USER,
        "request_id": login.json()["data"]["request_id"],
        "twofa_value": code_at(SECRET, zerodha.clock.time() - 60),
        "twofa_type": "totp",
    }
    assert kite_error(http.post(zerodha.origin + TWOFA_PATH, data=form, timeout=TIMEOUT), 400, "InputException") == (
        "Invalid TOTP"
    )
    # Still not logged in: the connect URL shows the login page, no redirect.
    page = http.get(zerodha.login_url, params={"v": "3", "api_key": API_KEY}, allow_redirects=False, timeout=TIMEOUT)
    assert page.status_code == 200 and "Location" not in page.headers


def test_zerodha_web_login_rejections(zerodha: KiteSimulator, http: requests.Session) -> None:
    wrong = http.post(zerodha.origin + WEB_LOGIN_PATH, data={"user_id": USER, "password": "nope"}, timeout=TIMEOUT)
    assert kite_error(wrong, 400, "InputException") == "Invalid username or password."
    login = http.post(zerodha.origin + WEB_LOGIN_PATH, data={"user_id": USER, "password": PASSWORD}, timeout=TIMEOUT)
    form = {
        "user_id": USER,
        "request_id": login.json()["data"]["request_id"],
        "twofa_value": code_at(SECRET, zerodha.clock.time()),
        "twofa_type": "totp",
    }
    # Without the session cookie (another client) the interim request id means nothing.
    cookieless = requests.post(zerodha.origin + TWOFA_PATH, data=form, timeout=TIMEOUT)
    kite_error(cookieless, 403, "TokenException")


def test_blinkx_has_no_web_login_endpoints(blinkx: KiteSimulator, http: requests.Session) -> None:
    answer = http.post(blinkx.origin + WEB_LOGIN_PATH, data={"user_id": USER, "password": PASSWORD}, timeout=TIMEOUT)
    kite_error(answer, 404, "GeneralException")


def test_newest_login_wins(kite: KiteSimulator, http: requests.Session) -> None:
    first = fresh_token(http, kite)
    second = fresh_token(http, kite)
    kite_error(profile(http, kite, first), 403, "TokenException")
    assert profile(http, kite, second).status_code == 200
    assert kite.issued_tokens(USER) == [first, second]


def test_access_token_dies_at_0600_ist(kite: KiteSimulator, http: requests.Session, clock: ManualClock) -> None:
    token = fresh_token(http, kite)
    clock.set(datetime(2026, 11, 25, 0, 29, 59, tzinfo=UTC).timestamp())  # 05:59:59 IST next day
    assert profile(http, kite, token).status_code == 200
    clock.set(datetime(2026, 11, 25, 0, 30, tzinfo=UTC).timestamp())  # 06:00 IST
    kite_error(profile(http, kite, token), 403, "TokenException")


def test_authorization_must_name_the_tokens_api_key(kite: KiteSimulator, http: requests.Session) -> None:
    token = fresh_token(http, kite)
    for value in (f"token other-key:{token}", f"Bearer {token}", f"token {API_KEY}:nope"):
        answer = http.get(
            kite.url + PROFILE_PATH, headers={"Authorization": value, **version_headers(kite)}, timeout=TIMEOUT
        )
        assert kite_error(answer, 403, "TokenException") == "Incorrect `api_key` or `access_token`."


def test_faults_speak_kite(kite: KiteSimulator, http: requests.Session) -> None:
    token = fresh_token(http, kite)
    kite.faults.rate_limit_next(1, endpoint="profile")
    kite_error(profile(http, kite, token), 429, "NetworkException")
    kite.faults.reject_validation_next(1)
    kite_error(profile(http, kite, token), 403, "TokenException")
    kite.faults.transient_error_next(1, endpoint="profile")
    kite_error(profile(http, kite, token), 503, "NetworkException")
    assert profile(http, kite, token).status_code == 200


def test_api_rate_limit_is_ten_per_second(kite: KiteSimulator, http: requests.Session, clock: ManualClock) -> None:
    token = fresh_token(http, kite)  # the exchange counted once
    statuses = [profile(http, kite, token).status_code for _ in range(10)]
    assert statuses == [200] * 9 + [429]
    clock.advance(1.0)
    assert profile(http, kite, token).status_code == 200


def test_an_apps_redirect_can_be_pointed_elsewhere(kite: KiteSimulator, http: requests.Session) -> None:
    kite.set_redirect_url(API_KEY, "http://127.0.0.1:7/callback/other?x=1")
    location = person_login(http, kite).headers["Location"]
    assert location.startswith("http://127.0.0.1:7/callback/other?x=1&request_token=")


def test_redirect_params_come_back_appended_as_is(kite: KiteSimulator, http: requests.Session) -> None:
    carried = "n=AbC-_123&from=page"
    page = http.get(kite.login_url, params={"v": "3", "api_key": API_KEY, "redirect_params": carried}, timeout=TIMEOUT)
    assert 'name="redirect_params" value="n=AbC-_123&amp;from=page"' in page.text  # kept through the form
    form = {"v": "3", "api_key": API_KEY, "redirect_params": carried, "user_id": USER, "password": PASSWORD}
    form["totp"] = code_at(SECRET, kite.clock.time())
    answer = http.post(kite.origin + CONNECT_LOGIN_PATH, data=form, allow_redirects=False, timeout=TIMEOUT)
    location = answer.headers["Location"]
    assert location.endswith("&status=success&" + carried)
    assert parse_qs(urlsplit(location).query)["n"] == ["AbC-_123"] and request_token_of(answer)
    # A wrong password re-renders the form with the params still in it.
    again = http.post(
        kite.origin + CONNECT_LOGIN_PATH, data={**form, "password": "wrong"}, allow_redirects=False, timeout=TIMEOUT
    )
    assert again.status_code == 200 and 'name="redirect_params"' in again.text


def test_redirect_params_survive_zerodhas_web_session_hops(zerodha: KiteSimulator, http: requests.Session) -> None:
    login = http.post(zerodha.origin + WEB_LOGIN_PATH, data={"user_id": USER, "password": PASSWORD}, timeout=TIMEOUT)
    request_id = login.json()["data"]["request_id"]
    twofa = {"user_id": USER, "request_id": request_id, "twofa_type": "totp"}
    twofa["twofa_value"] = code_at(SECRET, zerodha.clock.time())
    assert http.post(zerodha.origin + TWOFA_PATH, data=twofa, timeout=TIMEOUT).json()["status"] == "success"
    url = f"{zerodha.login_url}?v=3&api_key={API_KEY}&redirect_params=n%3DXyZ"
    while "request_token=" not in url:
        url = urljoin(url, http.get(url, allow_redirects=False, timeout=TIMEOUT).headers["Location"])
    assert url.endswith("&status=success&n=XyZ")
