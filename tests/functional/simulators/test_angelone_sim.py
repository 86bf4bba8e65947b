"""The Angel One simulator over real loopback HTTP, driven as a client would drive the broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from infra.local.simulators.angelone import (
    GENERATE_TOKENS_PATH,
    LOGIN_PATH,
    LOGOUT_PATH,
    PROFILE_PATH,
    RATE_LIMIT_BODY,
    AngelOneSimulator,
)
from infra.local.simulators.base import ManualClock
from infra.local.simulators.totp import code_at

TIMEOUT = 5.0
START = 1_700_000_010.0  # the first second of a TOTP step, so a few seconds more stay in it
CLIENT = "A123456"
PIN = "1234"
SECRET = "JBSWY3DPEHPK3PXP"
API_KEY = "demo-key"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[AngelOneSimulator]:
    with AngelOneSimulator(clock=clock) as simulator:
        simulator.add_account(client_code=CLIENT, pin=PIN, totp_secret=SECRET, api_key=API_KEY, name="Demo Trader")
        yield simulator


def angel_headers(api_key: str = API_KEY, token: str | None = None) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-UserType": "USER",
        "X-SourceID": "WEB",
        "X-ClientLocalIP": "127.0.0.1",
        "X-ClientPublicIP": "106.193.147.98",
        "X-MACAddress": "fe:80:00:00:00:01",
        "X-PrivateKey": api_key,
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def login(
    http: requests.Session,
    sim: AngelOneSimulator,
    *,
    code: str | None = None,
    pin: str = PIN,
    client: str = CLIENT,
    headers: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> requests.Response:
    totp = code if code is not None else code_at(SECRET, sim.clock.time())
    return http.post(
        sim.url + LOGIN_PATH,
        json={"clientcode": client, "password": pin, "totp": totp},
        headers=headers if headers is not None else angel_headers(),
        timeout=timeout,
    )


def jwt_of(response: requests.Response) -> str:
    body = response.json()
    assert body["status"] is True, body
    token: str = body["data"]["jwtToken"]
    return token


def profile(http: requests.Session, sim: AngelOneSimulator, token: str | None, **kw: Any) -> requests.Response:
    return http.get(sim.url + PROFILE_PATH, headers=angel_headers(token=token, **kw), timeout=TIMEOUT)


def app_error(response: requests.Response) -> str:
    assert response.status_code == 200
    body = response.json()
    assert body["status"] is False and body["data"] is None
    code: str = body["errorcode"]
    return code


def gateway_error(response: requests.Response) -> str:
    return gateway_error_body(response.json())


def gateway_error_body(body: dict[str, Any]) -> str:
    assert body["success"] is False and body["data"] == ""
    code: str = body["errorCode"]
    return code


# ----- the happy path ---------------------------------------------------------------------------------


def test_login_then_profile(sim: AngelOneSimulator, http: requests.Session, clock: ManualClock) -> None:
    answer = login(http, sim)

    body = answer.json()
    assert answer.status_code == 200
    assert (body["status"], body["message"], body["errorcode"]) == (True, "SUCCESS", "")
    assert set(body["data"]) == {"jwtToken", "refreshToken", "feedToken"}
    token = body["data"]["jwtToken"]
    assert not token.startswith("Bearer")
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == CLIENT
    assert claims["iat"] == int(START)
    assert claims["exp"] - claims["iat"] == 24 * 3600

    seen = profile(http, sim, token).json()
    assert seen["status"] is True
    data = seen["data"]
    assert data["clientcode"] == CLIENT and data["name"] == "Demo Trader"
    assert {"email", "mobileno", "lastlogintime", "brokerid"} <= set(data)
    assert "nse_cm" in data["exchanges"] and "CNC" in data["products"]

    assert sim.logins(CLIENT) == 1
    assert sim.issued_tokens(CLIENT) == [token]
    assert [(r.method, r.endpoint, r.status, r.account) for r in sim.requests] == [
        ("POST", "login", 200, CLIENT),
        ("GET", "profile", 200, CLIENT),
    ]


def test_url_is_the_bare_root(sim: AngelOneSimulator) -> None:
    assert sim.url == f"http://127.0.0.1:{sim.port}"


def test_profile_accepts_the_sdk_query_string(sim: AngelOneSimulator, http: requests.Session) -> None:
    # the official SDK sends its GET parameters as a JSON-encoded query string
    token = jwt_of(login(http, sim))
    answer = http.get(
        sim.url + PROFILE_PATH,
        params='{"refreshToken": "x"}',
        headers=angel_headers(token=token),
        timeout=TIMEOUT,
    )
    assert answer.json()["status"] is True


# ----- the gateway ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Content-Type",
        "Accept",
        "X-UserType",
        "X-SourceID",
        "X-ClientLocalIP",
        "X-ClientPublicIP",
        "X-MACAddress",
        "X-PrivateKey",
    ],
)
def test_a_missing_header_is_a_400_naming_it(sim: AngelOneSimulator, http: requests.Session, header: str) -> None:
    headers = angel_headers()
    del headers[header]
    # requests would add its own Content-Type for json=, so send the body as bytes
    answer = http.post(
        sim.url + LOGIN_PATH,
        data=b'{"clientcode": "A123456", "password": "1234", "totp": "000000"}',
        headers=headers,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 400
    assert gateway_error(answer) == ""
    assert header in answer.json()["message"]


@pytest.mark.parametrize(
    ("header", "value"),
    [("X-UserType", "ADMIN"), ("X-SourceID", "APP"), ("Accept", "*/*"), ("Content-Type", "text/plain")],
)
def test_a_wrong_header_value_is_a_400(sim: AngelOneSimulator, http: requests.Session, header: str, value: str) -> None:
    answer = login(http, sim, headers={**angel_headers(), header: value})
    assert answer.status_code == 400
    assert header in answer.json()["message"]
    assert sim.issued_tokens(CLIENT) == []


@pytest.mark.parametrize(
    "body",
    [
        b"clientcode=A123456&password=1234&totp=000000",
        b'["A123456", "1234"]',
        b'{"clientcode": "A123456", "clientcode": "A123456", "password": "1234", "totp": "000000"}',
        b'{"clientcode": "A123456", "password": "1234"}',
        b'{"clientcode": "A123456", "password": 1234, "totp": "000000"}',
        b"",
    ],
    ids=["form", "array", "duplicate-key", "no-totp", "numeric-pin", "empty"],
)
def test_a_body_that_is_not_the_json_object_is_a_400(
    sim: AngelOneSimulator, http: requests.Session, body: bytes
) -> None:
    answer = http.post(sim.url + LOGIN_PATH, data=body, headers=angel_headers(), timeout=TIMEOUT)
    assert answer.status_code == 400
    assert gateway_error(answer) == ""


def test_an_unknown_api_key_is_ag8004(sim: AngelOneSimulator, http: requests.Session) -> None:
    answer = login(http, sim, headers=angel_headers(api_key="not-a-key"))
    assert answer.status_code == 200
    assert gateway_error(answer) == "AG8004"
    assert answer.json()["message"] == "Invalid API Key"


def test_another_clients_api_key_is_ag8004(sim: AngelOneSimulator, http: requests.Session) -> None:
    sim.add_account(client_code="B765432", pin="4321", totp_secret=SECRET, api_key="other-key")
    answer = login(http, sim, headers=angel_headers(api_key="other-key"))
    assert gateway_error(answer) == "AG8004"


def test_paths_and_methods_are_exact(sim: AngelOneSimulator, http: requests.Session) -> None:
    trailing = http.post(sim.url + LOGIN_PATH + "/", json={}, headers=angel_headers(), timeout=TIMEOUT)
    wrong_method = http.get(sim.url + LOGIN_PATH, headers=angel_headers(), timeout=TIMEOUT)
    assert trailing.status_code == 404
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "POST"


# ----- login rejections -------------------------------------------------------------------------------


def test_totp_one_step_either_side_is_accepted_two_is_not(
    sim: AngelOneSimulator, http: requests.Session, clock: ManualClock
) -> None:
    outcomes = {}
    for offset in (-60, -30, 30, 60):
        clock.advance(1.0)  # the 1/s login limit
        answer = login(http, sim, code=code_at(SECRET, clock.time() + offset))
        outcomes[offset] = answer.json()["errorcode"] or "OK"
    assert outcomes == {-60: "AB1050", -30: "OK", 30: "OK", 60: "AB1050"}
    assert login_message(http, sim, clock, code="12345") == ("AB1050", "Invalid totp")


def login_message(http: requests.Session, sim: AngelOneSimulator, clock: ManualClock, **kw: Any) -> tuple[str, str]:
    clock.advance(1.0)
    body = login(http, sim, **kw).json()
    return body["errorcode"], body["message"]


def test_credential_rejections(sim: AngelOneSimulator, http: requests.Session, clock: ManualClock) -> None:
    assert login_message(http, sim, clock, pin="9999") == ("AB1007", "Invalid PIN")
    assert login_message(http, sim, clock, client="Z000000")[0] == "AB1000"
    assert login_message(http, sim, clock, pin="my-long-password") == (
        "AB7001",
        "LoginbyPassword is not allowed. Please switch to Login by MPIN now.",
    )
    sim.block_account(CLIENT)
    assert login_message(http, sim, clock)[0] == "AB1006"
    sim.block_account(CLIENT, blocked=False)
    assert login_message(http, sim, clock)[0] == ""
    assert sim.logins(CLIENT) == 4
    assert sim.logins("Z000000") == 1


def test_re_adding_an_account_replaces_its_pin(
    sim: AngelOneSimulator, http: requests.Session, clock: ManualClock
) -> None:
    sim.add_account(client_code=CLIENT, pin="5678", totp_secret=SECRET, api_key=API_KEY)
    assert login_message(http, sim, clock)[0] == "AB1007"
    assert login_message(http, sim, clock, pin="5678")[0] == ""


def test_repeated_failures_can_lock_the_account(
    sim: AngelOneSimulator, http: requests.Session, clock: ManualClock
) -> None:
    sim.lock_after_failed_logins = 2
    assert login_message(http, sim, clock, pin="9999")[0] == "AB1007"
    assert login_message(http, sim, clock, code="000000")[0] == "AB1050"
    assert login_message(http, sim, clock)[0] == "AB1006"
    assert sim.account(CLIENT).blocked


def test_login_rate_limit_is_403_plain_text(sim: AngelOneSimulator, http: requests.Session, clock: ManualClock) -> None:
    assert login(http, sim).json()["status"] is True
    clock.advance(0.5)
    limited = login(http, sim)
    assert limited.status_code == 403
    assert limited.headers["Content-Type"].startswith("text/plain")
    assert limited.text == RATE_LIMIT_BODY
    clock.advance(0.5)
    assert login(http, sim).json()["status"] is True
    assert sim.logins(CLIENT) == 3


def test_the_login_limit_is_per_client(sim: AngelOneSimulator, http: requests.Session) -> None:
    sim.add_account(client_code="B765432", pin="4321", totp_secret=SECRET, api_key="other-key")
    assert login(http, sim).json()["status"] is True
    other = login(http, sim, client="B765432", pin="4321", headers=angel_headers(api_key="other-key"))
    assert other.json()["status"] is True


def test_profile_limit_is_three_per_second(sim: AngelOneSimulator, http: requests.Session, clock: ManualClock) -> None:
    token = jwt_of(login(http, sim))
    statuses = [profile(http, sim, token).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 403]
    clock.advance(1.0)
    assert profile(http, sim, token).json()["status"] is True


# ----- tokens -----------------------------------------------------------------------------------------


def test_dead_tokens(sim: AngelOneSimulator, http: requests.Session, clock: ManualClock) -> None:
    token = jwt_of(login(http, sim))
    forged = jwt.encode(jwt.decode(token, options={"verify_signature": False}), "k" * 64, algorithm="HS512")
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    assert gateway_error(profile(http, sim, None)) == "AG8003"
    assert gateway_error(profile(http, sim, forged)) == "AG8001"
    clock.advance(1.0)
    assert gateway_error(profile(http, sim, tampered)) == "AG8001"
    no_scheme = http.get(sim.url + PROFILE_PATH, headers={**angel_headers(), "Authorization": token}, timeout=TIMEOUT)
    assert gateway_error(no_scheme) == "AG8001"

    clock.advance(24 * 3600 - 2)  # one second before exp
    assert profile(http, sim, token).json()["status"] is True
    clock.advance(1.0)
    expired = profile(http, sim, token)
    assert expired.status_code == 200
    assert gateway_error(expired) == "AG8002"


def test_logout_kills_the_accounts_tokens(sim: AngelOneSimulator, http: requests.Session, clock: ManualClock) -> None:
    token = jwt_of(login(http, sim))
    wrong = http.post(
        sim.url + LOGOUT_PATH, json={"clientcode": "B765432"}, headers=angel_headers(token=token), timeout=TIMEOUT
    )
    assert app_error(wrong) == "AB1000"
    out = http.post(
        sim.url + LOGOUT_PATH, json={"clientcode": CLIENT}, headers=angel_headers(token=token), timeout=TIMEOUT
    )
    assert out.json()["status"] is True
    assert gateway_error(profile(http, sim, token)) == "AG8001"
    clock.advance(1.0)
    assert profile(http, sim, jwt_of(login(http, sim))).json()["status"] is True


@pytest.mark.parametrize("revokes", [False, True])
def test_new_login_revokes_previous_switch(
    sim: AngelOneSimulator, http: requests.Session, clock: ManualClock, revokes: bool
) -> None:
    sim.new_login_revokes_previous = revokes
    first = jwt_of(login(http, sim))
    clock.advance(1.0)
    second = jwt_of(login(http, sim))
    assert profile(http, sim, second).json()["status"] is True
    old = profile(http, sim, first).json()
    if revokes:
        assert gateway_error_body(old) == "AG8001"
    else:
        assert old["status"] is True


@pytest.mark.parametrize("reject_reused", [False, True])
def test_reject_reused_totp_switch(
    sim: AngelOneSimulator, http: requests.Session, clock: ManualClock, reject_reused: bool
) -> None:
    sim.reject_reused_totp = reject_reused
    code = code_at(SECRET, clock.time())
    assert login(http, sim, code=code).json()["status"] is True
    clock.advance(1.0)  # same 30 s step
    again = login(http, sim, code=code).json()
    assert again["status"] is (not reject_reused)
    if reject_reused:
        assert again["errorcode"] == "AB1050"


def refresh(http: requests.Session, sim: AngelOneSimulator, token: str, refresh_token: str) -> requests.Response:
    return http.post(
        sim.url + GENERATE_TOKENS_PATH,
        json={"refreshToken": refresh_token},
        headers=angel_headers(token=token),
        timeout=TIMEOUT,
    )


def test_generate_tokens(sim: AngelOneSimulator, http: requests.Session, clock: ManualClock) -> None:
    data = login(http, sim).json()["data"]
    clock.advance(60.0)
    renewed = refresh(http, sim, data["jwtToken"], data["refreshToken"]).json()
    assert renewed["status"] is True
    new_token = renewed["data"]["jwtToken"]
    assert new_token != data["jwtToken"]
    assert renewed["data"]["refreshToken"] == data["refreshToken"]
    assert profile(http, sim, new_token).json()["status"] is True
    assert sim.issued_tokens(CLIENT) == [data["jwtToken"], new_token]

    limited = refresh(http, sim, new_token, data["refreshToken"])
    assert (limited.status_code, limited.text) == (403, RATE_LIMIT_BODY)
    clock.advance(1.0)
    assert app_error(refresh(http, sim, new_token, "not-the-refresh-token")) == "AB8050"
    clock.advance(28 * 3600)
    assert app_error(refresh(http, sim, new_token, data["refreshToken"])) == "AB8051"
    assert gateway_error(refresh(http, sim, "x.y.z", data["refreshToken"])) == "AG8001"


# ----- faults -----------------------------------------------------------------------------------------


def test_fail_next_answers_html_5xx_and_counts_the_login(sim: AngelOneSimulator, http: requests.Session) -> None:
    sim.faults.fail_next(2, status=503)
    first, second = login(http, sim), login(http, sim)
    assert (first.status_code, second.status_code) == (503, 503)
    assert first.headers["Content-Type"].startswith("text/html")
    assert login(http, sim).json()["status"] is True
    assert sim.logins(CLIENT) == 3
    assert [r.fault for r in sim.requests] == ["fail", "fail", None]


def test_faults_can_target_one_endpoint(sim: AngelOneSimulator, http: requests.Session) -> None:
    sim.faults.fail_next(1, status=502, endpoint="profile")
    token = jwt_of(login(http, sim))
    assert profile(http, sim, token).status_code == 502
    assert profile(http, sim, token).json()["status"] is True
    with pytest.raises(ValueError, match="unknown endpoint"):
        sim.faults.fail_next(1, endpoint="profle")


def test_rate_limit_and_malformed_faults(sim: AngelOneSimulator, http: requests.Session) -> None:
    sim.faults.rate_limit_next(1)
    limited = login(http, sim)
    assert (limited.status_code, limited.text) == (403, RATE_LIMIT_BODY)
    sim.faults.malformed_next(1, endpoint="login")
    page = login(http, sim)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    with pytest.raises(requests.JSONDecodeError):
        page.json()
    assert login(http, sim).json()["status"] is True


def test_reject_totp_fires_only_on_a_valid_code(
    sim: AngelOneSimulator, http: requests.Session, clock: ManualClock
) -> None:
    sim.faults.reject_totp_next(1)
    assert login_message(http, sim, clock, pin="9999")[0] == "AB1007"
    assert sim.faults.pending("reject_totp") == 1
    assert login_message(http, sim, clock) == ("AB1050", "Invalid totp")
    assert login_message(http, sim, clock)[0] == ""


def test_reject_validation_and_transient_error(
    sim: AngelOneSimulator, http: requests.Session, clock: ManualClock
) -> None:
    sim.faults.transient_error_next(1)
    assert login_message(http, sim, clock)[0] == "AB1004"
    clock.advance(1.0)
    token = jwt_of(login(http, sim))
    sim.faults.reject_validation_next(1)
    assert gateway_error(profile(http, sim, token)) == "AG8001"
    assert profile(http, sim, token).json()["status"] is True


def test_latency_and_hang_outlast_a_short_client_timeout(sim: AngelOneSimulator, http: requests.Session) -> None:
    sim.faults.latency = 0.5
    with pytest.raises(requests.Timeout):
        login(http, sim, timeout=0.05)
    sim.faults.latency = 0
    sim.faults.hang_next(1, seconds=5.0)
    with requests.Session() as other, pytest.raises(requests.Timeout):
        login(other, sim, timeout=0.1)
    assert sim.faults.pending("hang") == 0
    assert [r.fault for r in sim.requests] == [None, "hang"]
    assert sim.logins(CLIENT) == 2


def test_stop_ends_a_hang(clock: ManualClock) -> None:
    sim = AngelOneSimulator(clock=clock).start()
    sim.add_account(client_code=CLIENT, pin=PIN, totp_secret=SECRET, api_key=API_KEY)
    sim.faults.hang_next(1, seconds=60.0)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            with requests.Session() as session:
                login(session, sim, timeout=30.0)
        except requests.RequestException as error:
            outcome.append(error)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    for _ in range(500):  # until the request is inside its hang
        if any(record.fault == "hang" for record in sim.requests):
            break
        time.sleep(0.01)
    sim.stop()
    caller.join(timeout=10.0)
    assert not caller.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], requests.ConnectionError)
    assert sim.requests[0].status is None
    sim.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(sim.url + PROFILE_PATH, timeout=TIMEOUT)
