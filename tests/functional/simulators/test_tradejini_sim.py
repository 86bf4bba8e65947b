"""The Tradejini CubePlus simulator over real loopback HTTP, driven as a client would drive the broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from infra.local.simulators.base import ManualClock
from infra.local.simulators.totp import code_at
from infra.local.simulators.tradejini import DETAILS_PATH, LOGIN_PATH, LOGOUT_PATH, TradejiniSimulator

TIMEOUT = 5.0
START = 1_700_000_010.0  # the first second of a TOTP step
USER = "TJ0001"
API_KEY = "tj-demo-key"
PIN = "2468"
SECRET = "JBSWY3DPEHPK3PXP"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[TradejiniSimulator]:
    with TradejiniSimulator(clock=clock) as simulator:
        simulator.add_account(user_id=USER, api_key=API_KEY, pin=PIN, totp_secret=SECRET, user_name="Demo Trader")
        yield simulator


def login(
    http: requests.Session,
    sim: TradejiniSimulator,
    *,
    code: str | None = None,
    pin: str = PIN,
    authorization: str | None = f"Bearer {API_KEY}",
    form: dict[str, str] | None = None,
) -> requests.Response:
    totp = code if code is not None else code_at(SECRET, sim.clock.time())
    headers = {"Authorization": authorization} if authorization is not None else {}
    body = form if form is not None else {"password": pin, "twoFa": totp, "twoFaTyp": "totp"}
    return http.post(sim.url + LOGIN_PATH, data=body, headers=headers, timeout=TIMEOUT)


def token_of(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def details(http: requests.Session, sim: TradejiniSimulator, authorization: str | None) -> requests.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return http.get(sim.url + DETAILS_PATH, headers=headers, timeout=TIMEOUT)


def refused(response: requests.Response) -> tuple[int, str]:
    body = response.json()
    assert body["s"] == "error" and set(body) == {"s", "msg"}
    return response.status_code, str(body["msg"])


UNAUTHORIZED = (401, "Unauthorized")


# ----- the happy path ---------------------------------------------------------------------------------


def test_login_then_details(sim: TradejiniSimulator, http: requests.Session) -> None:
    answer = login(http, sim)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("bearer", 86400, "general")
    seen = details(http, sim, f"Bearer {API_KEY}:{body['access_token']}").json()
    assert seen["s"] == "ok"
    assert seen["d"] == {
        "userId": USER,
        "userName": "Demo Trader",
        "products": ["CNC", "MIS", "NRML"],
        "segments": ["NSE", "BSE", "NFO", "BFO", "CDS", "MCX"],
    }
    assert sim.logins(USER) == 1 and sim.issued_tokens(USER) == [body["access_token"]]
    assert [(r.endpoint, r.status, r.account) for r in sim.requests] == [("login", 200, USER), ("details", 200, USER)]


def test_url_ends_with_the_v2_root(sim: TradejiniSimulator) -> None:
    assert sim.url == f"http://127.0.0.1:{sim.port}/v2"


def test_paths_and_methods_are_exact(sim: TradejiniSimulator, http: requests.Session) -> None:
    trailing = http.post(sim.url + LOGIN_PATH + "/", data={"a": "b"}, timeout=TIMEOUT)
    unrooted = http.post(sim.url.removesuffix("/v2") + LOGIN_PATH, data={"a": "b"}, timeout=TIMEOUT)
    wrong_method = http.get(sim.url + LOGIN_PATH, timeout=TIMEOUT)
    assert refused(trailing)[0] == 404 and refused(unrooted)[0] == 404
    assert refused(wrong_method)[0] == 405 and wrong_method.headers["Allow"] == "POST"


# ----- the request's shape ----------------------------------------------------------------------------


def test_a_json_body_is_415(sim: TradejiniSimulator, http: requests.Session) -> None:
    answer = http.post(
        sim.url + LOGIN_PATH,
        json={"password": PIN, "twoFa": code_at(SECRET, sim.clock.time()), "twoFaTyp": "totp"},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=TIMEOUT,
    )
    status, message = refused(answer)
    assert status == 415 and "x-www-form-urlencoded" in message
    assert sim.issued_tokens(USER) == []


@pytest.mark.parametrize(
    ("form", "missing"),
    [
        ({"twoFa": "123456", "twoFaTyp": "totp"}, "password"),
        ({"password": PIN, "twoFaTyp": "totp"}, "twoFa"),
        ({"password": PIN, "twoFa": "123456"}, "twoFaTyp"),
        ({"password": PIN, "twoFa": "123456", "twoFaTyp": "otp"}, "twoFaTyp"),
    ],
    ids=["no-password", "no-code", "no-type", "type-not-totp"],
)
def test_input_validation_is_400(
    sim: TradejiniSimulator, http: requests.Session, form: dict[str, str], missing: str
) -> None:
    status, message = refused(login(http, sim, form=form))
    assert status == 400 and message.startswith("Input validation failed") and missing in message


# ----- every login rejection is the same bare 401 -----------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, API_KEY, f"Token {API_KEY}", "Bearer not-a-key", f"Bearer {API_KEY}:some-token"],
    ids=["none", "no-scheme", "other-scheme", "unknown-key", "key-and-token"],
)
def test_a_bad_authorization_header_is_401(
    sim: TradejiniSimulator, http: requests.Session, authorization: str | None
) -> None:
    assert refused(login(http, sim, authorization=authorization)) == UNAUTHORIZED


def test_a_wrong_pin_is_401(sim: TradejiniSimulator, http: requests.Session) -> None:
    assert refused(login(http, sim, pin="1357")) == UNAUTHORIZED
    assert sim.logins(USER) == 1


def test_totp_one_step_either_side_is_accepted_two_is_not(
    sim: TradejiniSimulator, http: requests.Session, clock: ManualClock
) -> None:
    statuses = {}
    for offset in (-60, -30, 30, 60):
        clock.advance(1.0)  # keep clear of the 3/s limit
        statuses[offset] = login(http, sim, code=code_at(SECRET, clock.time() + offset)).status_code
    assert statuses == {-60: 401, -30: 200, 30: 200, 60: 401}
    clock.advance(1.0)
    assert refused(login(http, sim, code="12345")) == UNAUTHORIZED


def test_a_source_ip_off_the_whitelist_is_401(
    sim: TradejiniSimulator, http: requests.Session, clock: ManualClock
) -> None:
    sim.client_ip = "198.51.100.7"  # e.g. a Lambda without the static egress IP
    assert refused(login(http, sim)) == UNAUTHORIZED
    sim.allowed_ips = {"127.0.0.1", "198.51.100.7"}
    assert login(http, sim).status_code == 200
    sim.allowed_ips = None
    sim.client_ip = "203.0.113.9"
    assert login(http, sim).status_code == 200


def test_login_limit_is_three_per_second_per_ip(
    sim: TradejiniSimulator, http: requests.Session, clock: ManualClock
) -> None:
    sim.add_account(user_id="TJ0002", api_key="other-key", pin="1111", totp_secret=SECRET)
    statuses = [login(http, sim).status_code for _ in range(2)]
    statuses.append(login(http, sim, pin="1111", authorization="Bearer other-key").status_code)
    limited = login(http, sim)
    assert statuses == [200, 200, 200]
    assert refused(limited) == (429, "Too many requests")
    clock.advance(1.0)
    assert login(http, sim).status_code == 200
    assert sim.logins(USER) == 4 and sim.logins("TJ0002") == 1


# ----- tokens -----------------------------------------------------------------------------------------


def test_details_wants_key_and_token(sim: TradejiniSimulator, http: requests.Session, clock: ManualClock) -> None:
    sim.add_account(user_id="TJ0002", api_key="other-key", pin="1111", totp_secret=SECRET)
    token = token_of(login(http, sim))
    for authorization in (None, f"Bearer {token}", f"Bearer {API_KEY}", token, f"Bearer other-key:{token}"):
        assert refused(details(http, sim, authorization)) == UNAUTHORIZED
    good = f"Bearer {API_KEY}:{token}"
    clock.advance(86400 - 1)
    assert details(http, sim, good).json()["s"] == "ok"
    clock.advance(1)
    assert refused(details(http, sim, good)) == UNAUTHORIZED


def test_logout_kills_the_token(sim: TradejiniSimulator, http: requests.Session) -> None:
    good = f"Bearer {API_KEY}:{token_of(login(http, sim))}"
    out = http.post(sim.url + LOGOUT_PATH, headers={"Authorization": good}, timeout=TIMEOUT)
    assert out.json() == {"s": "ok"}
    assert refused(details(http, sim, good)) == UNAUTHORIZED
    # A token already logged out gets the 401, and a JSON body the 415, as every call with a body.
    again = http.post(sim.url + LOGOUT_PATH, headers={"Authorization": good}, timeout=TIMEOUT)
    assert refused(again) == UNAUTHORIZED
    fresh = f"Bearer {API_KEY}:{token_of(login(http, sim))}"
    as_json = http.post(sim.url + LOGOUT_PATH, json={}, headers={"Authorization": fresh}, timeout=TIMEOUT)
    assert as_json.status_code == 415 and as_json.json()["s"] == "error"
    assert details(http, sim, fresh).status_code == 200


@pytest.mark.parametrize("revokes", [False, True])
def test_new_login_revokes_previous_switch(sim: TradejiniSimulator, http: requests.Session, revokes: bool) -> None:
    sim.new_login_revokes_previous = revokes
    first = token_of(login(http, sim))
    second = token_of(login(http, sim))
    assert details(http, sim, f"Bearer {API_KEY}:{second}").status_code == 200
    assert details(http, sim, f"Bearer {API_KEY}:{first}").status_code == (401 if revokes else 200)


# ----- faults -----------------------------------------------------------------------------------------


def test_reject_totp_fires_only_on_an_otherwise_good_login(
    sim: TradejiniSimulator, http: requests.Session, clock: ManualClock
) -> None:
    sim.faults.reject_totp_next(1)
    assert refused(login(http, sim, pin="9999")) == UNAUTHORIZED
    assert sim.faults.pending("reject_totp") == 1
    assert refused(login(http, sim)) == UNAUTHORIZED
    clock.advance(1.0)
    assert login(http, sim).status_code == 200


def test_transient_error_validation_rejection_and_server_faults(
    sim: TradejiniSimulator, http: requests.Session
) -> None:
    sim.faults.transient_error_next(1, endpoint="login")
    assert refused(login(http, sim)) == (500, "Internal server error")
    good = f"Bearer {API_KEY}:{token_of(login(http, sim))}"
    sim.faults.reject_validation_next(1)
    assert refused(details(http, sim, good)) == UNAUTHORIZED
    sim.faults.fail_next(1, status=502, endpoint="details")
    page = details(http, sim, good)
    assert page.status_code == 502 and page.headers["Content-Type"].startswith("text/html")
    sim.faults.rate_limit_next(1, endpoint="details")
    assert refused(details(http, sim, good)) == (429, "Too many requests")
    assert details(http, sim, good).json()["s"] == "ok"
