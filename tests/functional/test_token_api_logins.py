"""Logins a person finishes (BlinkX's browser redirect, AutoShares' e-mailed code), PiTrade's signed
JWTs, and the refresher function's event contract (LambdaBackend), all over the local front.
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterator
from typing import Any

import jwt
import pyotp
import pytest
import requests
from infra.local.lambda_context import LocalLambdaContext
from infra.local.moto_server import MotoServer
from infra.local.simulators.angelone import AngelOneSimulator
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.kite import BlinkXSimulator
from infra.local.simulators.pitrade import PiTradeSimulator
from infra.local.template import LocalResources

from broker_tokens.backend import LambdaBackend
from broker_tokens.clock import WarpClock
from broker_tokens.person.runtime import install_person
from broker_tokens.runtime import container_refresher
from refresher.app import lambda_handler as refresher_handler
from tests.functional.test_person_pages import blinkx_person, broker_login, start
from tests.functional.test_refresh_angelone import angel_account
from tests.functional.test_token_api import Api, api_fixture, start_api  # noqa: F401 - `api` is a fixture
from tests.support.accounts import etna_credentials
from tests.support.harness import Harness
from tests.support.logsink import remember_secret
from tests.support.person import PersonPages, nonce_of, person_fixture, start_person_pages  # noqa: F401

# -- BlinkX: the browser redirect --------------------------------------------------------------------


def blinkx_account(sim: BlinkXSimulator, harness: Harness, front: Api, account: str = "blinkx-1") -> dict[str, str]:
    """A BlinkX app whose redirect URL is the front's callback, and the person who logs in to it."""
    api_key, api_secret = "bx-app-key", secrets.token_urlsafe(24)
    person = {"user_id": "BX1234", "password": secrets.token_urlsafe(12), "totp_secret": pyotp.random_base32()}
    remember_secret(person["password"], person["totp_secret"])
    sim.add_app(api_key, api_secret, f"{front.url}/callback/{account}")
    sim.add_user(person["user_id"], person["password"], person["totp_secret"])
    credentials = {"broker": "blinkx", "api_key": api_key, "api_secret": api_secret}
    harness.add_account(account, {**credentials, "base_url": sim.url, "login_url": sim.login_url})
    return {**person, "api_key": api_key}


def log_in_as_a_person(sim: BlinkXSimulator, person: dict[str, str], clock: WarpClock) -> str:
    """Submit the broker's login form; return where the broker redirects the browser."""
    form = {
        "v": "3",
        "api_key": person["api_key"],
        "user_id": person["user_id"],
        "password": person["password"],
        "totp": pyotp.TOTP(person["totp_secret"]).at(clock.time()),
    }
    answer = requests.post(sim.login_url, data=form, allow_redirects=False, timeout=5)
    assert answer.status_code in (302, 303), answer.text[:200]
    return str(answer.headers["Location"])


def test_a_refresh_of_a_browser_login_account_answers_where_to_log_in(
    api: Api, blinkx: BlinkXSimulator, harness: Harness
) -> None:
    blinkx_account(blinkx, harness, api)
    answer = api.call("POST", "/accounts/blinkx-1/refresh", api.key())
    assert answer.status_code == 202
    assert answer.json()["state"] == "awaiting-login" and answer.json()["login_url"].startswith(blinkx.login_url)


def test_the_login_route_gives_a_caller_with_refresh_a_one_time_link(
    person: PersonPages, api: Api, blinkx: BlinkXSimulator, harness: Harness
) -> None:
    me = blinkx_person(blinkx, harness, person)
    harness.refresher().run()
    reader = api.call("GET", "/accounts/blinkx-1/login", api.key("reader", actions=("read",)))
    assert reader.status_code == 200 and "link" not in reader.json()  # a link finishes a login: refresh only
    answer = api.call("GET", "/accounts/blinkx-1/login", api.key("ops", actions=("read", "refresh")))
    link = answer.json()["link"]
    api.answers.pop()  # this answer is the link itself, for the person: the one place it may be
    remember_secret(nonce_of(link))
    assert link.startswith(f"{person.url}/login/blinkx-1?n=")
    assert 'id="page-done"' in person.get(broker_login(blinkx, start(person, link), me)).text


# -- AutoShares: the e-mailed code -------------------------------------------------------------------


def etna_account(sim: AutoSharesSimulator, harness: Harness, account: str = "etna-2") -> str:
    password = secrets.token_urlsafe(12)
    harness.add_account(account, etna_credentials(sim, "trader2", password, app_key="etna-app-key", two_factor=True))
    return "trader2"


def test_an_emailed_code_completes_the_login(api: Api, autoshares: AutoSharesSimulator, harness: Harness) -> None:
    username = etna_account(autoshares, harness)
    key = api.key()
    started = api.call("POST", "/accounts/etna-2/refresh", key)
    assert started.status_code == 202 and started.json()["state"] == "awaiting-verification"
    code = autoshares.outbox(username)[-1]
    remember_secret(code)
    answer = api.call("POST", "/accounts/etna-2/verification", key, json={"code": code})
    assert answer.status_code == 200, answer.text
    assert answer.json() == harness.token("etna-2") and answer.json()["source"] == "callback"
    repeat = api.call("POST", "/accounts/etna-2/verification", key, json={"code": code})
    assert repeat.status_code == 409


# -- PiTrade: a JWT signed per request ---------------------------------------------------------------


def pitrade_account(sim: PiTradeSimulator, harness: Harness, *, tagged: bool = True) -> str:
    secret_key = secrets.token_urlsafe(32)
    sim.add_client("pt-client", secret_key)
    remember_secret(secret_key)
    text = json.dumps({"broker": "pitrade", "client_id": "pt-client", "secret_key": secret_key, "base_url": sim.url})
    tags = [{"Key": "broker", "Value": "pitrade"}] if tagged else []
    harness.secrets_client.create_secret(Name="broker-tokens/pt-1/credentials", SecretString=text, Tags=tags)
    return secret_key


@pytest.mark.parametrize("tagged", [True, False])
def test_pitrade_tokens_are_jwts_signed_for_each_request(
    api: Api, pitrade: PiTradeSimulator, harness: Harness, tagged: bool
) -> None:
    secret_key = pitrade_account(pitrade, harness, tagged=tagged)
    assert harness.refresher().run().ok  # the run checks the keys: the account is healthy
    answer = api.call("GET", "/accounts/pt-1/token", api.key())
    assert answer.status_code == 200, answer.text
    record = answer.json()
    claims = jwt.decode(record["access_token"], secret_key, algorithms=["HS256"])
    assert claims["clientId"] == "pt-client" and 0 < claims["exp"] - claims["iat"] <= 900
    assert record["broker"] == "pitrade" and record["source"] == "api"
    assert record["authorization"] == f"Bearer {record['access_token']}"
    portfolio = requests.get(f"{pitrade.url}/portfolio", headers={"Authorization": record["authorization"]}, timeout=5)
    assert portfolio.status_code == 200 and isinstance(portfolio.json(), list)
    assert harness.token("pt-1") is None  # nothing is stored for PiTrade


def test_a_pitrade_refresh_answers_a_signed_jwt(api: Api, pitrade: PiTradeSimulator, harness: Harness) -> None:
    pitrade_account(pitrade, harness)
    answer = api.call("POST", "/accounts/pt-1/refresh", api.key())
    assert answer.status_code == 200 and answer.json()["authorization"].startswith("Bearer ey")


# -- LambdaBackend: the refresher function's own event -----------------------------------------------


class InProcessLambda:
    """Lambda Invoke of the refresher function, run here: the real handler gets the real event."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
        assert InvocationType == "RequestResponse"
        event = json.loads(Payload)
        self.events.append(event)
        try:
            result: Any = refresher_handler(event, LocalLambdaContext(FunctionName))
        except Exception as exc:  # what Lambda reports for a function that raised
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(error).encode())}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}


@pytest.fixture
def lambda_api(
    harness: Harness, moto: MotoServer, cloud: LocalResources, clock: WarpClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Api, InProcessLambda]]:
    """The API with logins handed to the refresher function (as in AWS), that function run in-process."""
    for name, value in {**cloud.environment("RefresherFunction"), "BROKER_HTTP_TIMEOUT_SECONDS": "5"}.items():
        monkeypatch.setenv(name, value)
    container_refresher.cache_clear()
    invoker = InProcessLambda()
    started = start_api(harness, moto, cloud, clock)
    function = cloud.environment("TokenApiFunction")["REFRESHER_FUNCTION_NAME"]
    started.service.backend = LambdaBackend(function, client=invoker)
    yield started, invoker
    started.front.stop()
    container_refresher.cache_clear()


def test_a_refresh_is_handed_to_the_refresher_function(
    lambda_api: tuple[Api, InProcessLambda], angel: AngelOneSimulator, harness: Harness
) -> None:
    front, invoker = lambda_api
    angel_account(angel, harness)
    answer = front.call("POST", "/accounts/angel-1/refresh", front.key())
    assert answer.status_code == 200 and answer.json() == harness.token("angel-1")
    assert invoker.events == [{"accounts": ["angel-1"], "force": True, "source": "api"}]


def test_a_failed_run_of_the_refresher_function_is_reported_from_the_state_table(
    lambda_api: tuple[Api, InProcessLambda], angel: AngelOneSimulator, harness: Harness
) -> None:
    front, _ = lambda_api
    credentials = angel_account(angel, harness)
    harness.add_account("angel-1", {**credentials, "pin": "9753"})  # a wrong MPIN: permanent
    answer = front.call("POST", "/accounts/angel-1/refresh", front.key())
    assert answer.status_code == 409
    assert answer.json()["error"] == "login-failed" and answer.json()["state"] == "needs-attention"


@pytest.fixture
def lambda_person(
    lambda_api: tuple[Api, InProcessLambda], harness: Harness, moto: MotoServer, cloud: LocalResources, clock: WarpClock
) -> Iterator[tuple[PersonPages, InProcessLambda]]:
    """The person pages with completions handed to the refresher function (as in AWS), run in-process."""
    _, invoker = lambda_api
    function = cloud.environment("TokenApiFunction")["REFRESHER_FUNCTION_NAME"]
    person = start_person_pages(harness, moto, cloud, clock, backend=LambdaBackend(function, client=invoker))
    yield person, invoker
    person.front.stop()
    install_person(None)


def test_a_person_page_completion_is_handed_to_the_refresher_function(
    lambda_person: tuple[PersonPages, InProcessLambda], blinkx: BlinkXSimulator, harness: Harness, clock: WarpClock
) -> None:
    person, invoker = lambda_person
    me = blinkx_person(blinkx, harness, person)
    harness.refresher().run()
    link = person.link("blinkx-1")
    # A failed completion answers its outcome (no function error), so the page can say what happened.
    forged = person.get(f"/callback/blinkx-1?request_token=abcdefabcdef1234&status=success&n={nonce_of(link)}")
    assert forged.status_code == 409 and 'id="page-failed"' in forged.text and 'id="login"' in forged.text
    page = person.get(broker_login(blinkx, start(person, link), me))
    assert page.status_code == 200 and 'id="page-done"' in page.text, page.text[:300]
    assert [event["source"] for event in invoker.events] == ["callback", "callback"]
    event = invoker.events[-1]
    assert event["complete"]["account"] == "blinkx-1"
    assert event["complete"]["nonce"] == nonce_of(link)  # the refresher checks the link again, under the lease
    assert (harness.token("blinkx-1") or {})["source"] == "callback"


def test_a_link_is_made_by_the_refresher_function(
    lambda_api: tuple[Api, InProcessLambda], blinkx: BlinkXSimulator, harness: Harness
) -> None:
    front, invoker = lambda_api
    blinkx_account(blinkx, harness, front)
    harness.refresher().run()
    answer = front.call("GET", "/accounts/blinkx-1/login", front.key())
    link = answer.json()["link"]
    front.answers.pop()  # the link itself, for the person
    remember_secret(nonce_of(link))
    # The API may not write the state table: the refresher function adds the link to the open step.
    assert invoker.events == [{"link": {"account": "blinkx-1"}}]
    assert "/login/blinkx-1?n=" in link and harness.refresher().state.get("blinkx-1").pending is not None
    # the alert's, the morning summary's (both pinned: sent to the person) and this one
    assert len(harness.refresher().state.get("blinkx-1").pending.nonce_hashes) == 3
