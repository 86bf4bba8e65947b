"""The token API over real HTTP: the local front, moto, and the Angel One simulator.

Every test also checks that no answer carried a fixture secret (PIN, TOTP secret, API key).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from infra.local.front import LocalFront
from infra.local.moto_server import MotoServer
from infra.local.simulators.angelone import AngelOneSimulator
from infra.local.template import LocalResources
from openapi_spec_validator import validate

from broker_tokens.api.resolver import TokenApi, route_table
from broker_tokens.api.runtime import build_service
from broker_tokens.api.service import TokenService
from broker_tokens.backend import LocalBackend
from broker_tokens.callers import CallerStore
from broker_tokens.clock import WarpClock
from tests.functional.test_refresh_angelone import angel_account
from tests.support.accounts import call_with_record
from tests.support.harness import Harness
from tests.support.logsink import SECRETS, leaks, remember_secret
from tests.unit.test_token_cache import CallCounter

ROOT = Path(__file__).resolve().parents[2]
EVERY = ("read", "refresh")


@dataclass
class Api:
    """The token API behind a local front, with helpers to call it and to inspect what it did."""

    front: LocalFront
    service: TokenService
    callers: CallerStore
    secrets: CallCounter
    answers: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.front.url

    def key(self, name: str = "bot", accounts: tuple[str, ...] = ("*",), actions: tuple[str, ...] = EVERY) -> str:
        key = self.callers.add(name, list(accounts), list(actions))
        assert key is not None
        remember_secret(key)
        return key

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key:
            headers["Authorization"] = f"Bearer {key}"
        answer = requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)
        with self._lock:
            self.answers.append(json.dumps(dict(answer.headers)) + answer.text)
        return answer


def api_environment(cloud: LocalResources, auth_mode: str = "api_key") -> dict[str, str]:
    """The function's environment as template.yaml sets it, minus the refresher function (none locally)."""
    env = {**cloud.environment("TokenApiFunction"), "AUTH_MODE": auth_mode}
    env.pop("REFRESHER_FUNCTION_NAME")
    return env


def start_api(harness: Harness, moto: MotoServer, cloud: LocalResources, clock: WarpClock, **front: Any) -> Api:
    """A TokenApi wired like the Lambda function (in-process logins), behind a started LocalFront."""
    secrets_client: Any = moto.client("secretsmanager")
    counter = CallCounter(secrets_client)
    dynamodb: Any = moto.client("dynamodb")
    service = build_service(
        api_environment(cloud, front.get("auth_mode", "api_key")),
        clock=clock,
        backend=LocalBackend(harness.refresher(http_timeout=5.0)),
        secrets_client=secrets_client,
        dynamodb_client=dynamodb,
    )
    started = LocalFront(TokenApi(service), **front).start()
    return Api(started, service, CallerStore(cloud.table_name, client=dynamodb, clock=clock), counter)


@pytest.fixture(name="api")
def api_fixture(harness: Harness, moto: MotoServer, cloud: LocalResources, clock: WarpClock) -> Iterator[Api]:
    """The token API on a local front; after the test, no answer may have carried a fixture secret."""
    started = start_api(harness, moto, cloud, clock)
    yield started
    started.front.stop()
    leaked = leaks(started.answers)
    assert not leaked, f"{len(leaked)} fixture secret(s) reached an answer"


@pytest.fixture(name="angel1")
def angel1_fixture(angel: AngelOneSimulator, harness: Harness) -> dict[str, Any]:
    """angel-1 with a fresh token from the scheduled run."""
    credentials = angel_account(angel, harness)
    assert harness.refresher().run().ok
    return credentials


# -- happy paths -------------------------------------------------------------------------------------


def test_health_and_the_document_need_no_caller(api: Api) -> None:
    health = api.call("GET", "/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert health.headers["Cache-Control"] == "no-store" and health.headers["Content-Type"] == "application/json"
    document = api.call("GET", "/openapi.json")
    assert document.status_code == 200 and document.json()["openapi"] == "3.1.0"


def test_get_token_answers_the_stored_record(api: Api, angel1: dict[str, Any], harness: Harness) -> None:
    answer = api.call("GET", "/accounts/angel-1/token", api.key())
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert answer.json() == harness.token("angel-1")


def test_the_served_record_makes_a_valid_broker_call(
    api: Api, angel1: dict[str, Any], angel: AngelOneSimulator
) -> None:
    token = api.call("GET", "/accounts/angel-1/token", api.key()).json()
    profile = call_with_record(
        f"{angel.url}/rest/secure/angelbroking/user/v1/getProfile", token, content_type="application/json"
    ).json()
    assert profile["status"] is True


def test_list_shows_the_callers_accounts_with_state_and_no_token(
    api: Api, angel1: dict[str, Any], angel: AngelOneSimulator, harness: Harness
) -> None:
    angel_account(angel, harness, "kite-like", client_code="A100002", api_key="angel-key-2")
    answer = api.call("GET", "/accounts", api.key(accounts=("angel-*",)))
    assert answer.status_code == 200
    [line] = answer.json()["accounts"]
    assert line["account"] == "angel-1" and line["state"] == "fresh" and line["broker"] == "angelone"
    assert line["issued_at"] and line["expires_at"]
    stored = harness.token("angel-1") or {}
    assert stored["access_token"] not in answer.text and stored["feed_token"] not in answer.text


def test_post_refresh_logs_in_and_answers_the_new_record(
    api: Api, angel1: dict[str, Any], angel: AngelOneSimulator, harness: Harness
) -> None:
    before = harness.token("angel-1") or {}
    answer = api.call("POST", "/accounts/angel-1/refresh", api.key())
    assert answer.status_code == 200
    record = answer.json()
    assert record == harness.token("angel-1") and record["source"] == "api"
    assert record["access_token"] != before["access_token"]
    assert angel.logins("A100001") == 2
    # The same container sees its own refresh at once: the next read answers the new record.
    assert api.call("GET", "/accounts/angel-1/token", api.key("other")).json() == record


def test_a_refresh_only_caller_gets_the_state_not_the_token(api: Api, angel1: dict[str, Any]) -> None:
    answer = api.call("POST", "/accounts/angel-1/refresh", api.key(actions=("refresh",)))
    assert answer.status_code == 200
    assert answer.json()["state"] == "fresh" and "access_token" not in answer.json()


def test_an_expired_token_is_refused_with_the_accounts_state(
    api: Api, angel1: dict[str, Any], clock: WarpClock
) -> None:
    key = api.key()
    clock.advance(3 * 24 * 3600)
    answer = api.call("GET", "/accounts/angel-1/token", key)
    assert answer.status_code == 409
    body = answer.json()
    assert body["error"] == "token-expired" and body["state"] == "expired" and "access_token" not in body


def test_an_account_without_a_token_yet_is_a_409(api: Api, angel: AngelOneSimulator, harness: Harness) -> None:
    angel_account(angel, harness)
    answer = api.call("GET", "/accounts/angel-1/token", api.key())
    assert answer.status_code == 409 and answer.json()["error"] == "no-token"


def test_login_is_a_409_for_an_account_that_awaits_none(api: Api, angel1: dict[str, Any]) -> None:
    answer = api.call("GET", "/accounts/angel-1/login", api.key())
    assert answer.status_code == 409 and answer.json()["state"] == "fresh"


# -- refusals ----------------------------------------------------------------------------------------


def test_no_key_wrong_key_and_revoked_key_are_401(api: Api, angel1: dict[str, Any]) -> None:
    key = api.key()
    path = "/accounts/angel-1/token"
    missing = api.call("GET", path)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for refused in (wrong, "btk_000000000000_" + "x" * 43, "not-a-key", "x" * 9000):
        assert api.call("GET", path, refused).status_code == 401
    assert api.call("GET", path, headers={"Authorization": f"Basic {key}"}).status_code == 401
    api.callers.revoke("bot")
    revoked = api.call("GET", path, key)
    assert revoked.status_code == 401 and revoked.json()["message"] == "unknown or revoked API key"


def test_out_of_scope_and_nonexistent_accounts_answer_alike(api: Api, angel1: dict[str, Any]) -> None:
    narrow = api.key("narrow", accounts=("kite-*",))
    wide = api.key("wide", accounts=("*",))
    out_of_scope = api.call("GET", "/accounts/angel-1/token", narrow)
    nonexistent = api.call("GET", "/accounts/angel-404/token", wide)
    assert out_of_scope.status_code == nonexistent.status_code == 403
    assert out_of_scope.json() == {"error": "forbidden", "message": "caller 'narrow' may not read account 'angel-1'"}
    assert nonexistent.json() == {"error": "forbidden", "message": "caller 'wide' may not read account 'angel-404'"}
    for method, path in (("POST", "/accounts/angel-404/refresh"), ("GET", "/accounts/angel-404/login")):
        assert api.call(method, path, wide).status_code == 403


def test_an_action_out_of_scope_is_403(api: Api, angel1: dict[str, Any], angel: AngelOneSimulator) -> None:
    reader = api.key("reader", actions=("read",))
    answer = api.call("POST", "/accounts/angel-1/refresh", reader)
    assert answer.status_code == 403 and "may not refresh" in answer.json()["message"]
    verification = api.call("POST", "/accounts/angel-1/verification", reader, json={"code": "123456"})
    assert verification.status_code == 403
    assert angel.logins("A100001") == 1


def test_grants_and_refusals_are_logged_by_caller_name_never_the_key(api: Api, angel1: dict[str, Any]) -> None:
    from tests.support.logsink import SINK

    key = api.key("logged-bot", accounts=("angel-*",))
    mark = len(SINK.lines)
    api.call("GET", "/accounts/angel-1/token", key)
    api.call("GET", "/accounts/kite-1/token", key)
    lines = SINK.since(mark)
    granted = [line for line in lines if "token api: granted" in line]
    refused = [line for line in lines if "token api: refused" in line]
    assert granted and '"caller":"logged-bot"' in granted[0] and '"account":"angel-1"' in granted[0]
    assert refused and '"caller":"logged-bot"' in refused[0] and '"account":"kite-1"' in refused[0]
    assert key not in "\n".join(lines)


# -- malformed input ---------------------------------------------------------------------------------

JSON_TYPE = {"Content-Type": "application/json"}
MALFORMED: list[tuple[str, str, dict[str, Any], int]] = [
    ("GET", "/accounts/Angel_1/token", {}, 400),
    ("GET", "/accounts/%2e%2e/token", {}, 400),
    ("GET", "/accounts/" + "a" * 64 + "/token", {}, 400),
    ("POST", "/accounts/BAD!/refresh", {}, 400),
    ("GET", "/accounts/angel-1/token/extra", {}, 404),
    ("GET", "/nowhere", {}, 404),
    ("PUT", "/accounts/angel-1/token", {}, 405),
    ("DELETE", "/accounts", {}, 405),
    ("GET", "/accounts/angel-1/refresh", {}, 405),
    ("POST", "/accounts/angel-1/refresh", {"data": "{not json", "headers": JSON_TYPE}, 400),
    ("POST", "/accounts/angel-1/refresh", {"json": [1, 2]}, 400),
    ("POST", "/accounts/angel-1/refresh", {"json": {"force": True}}, 400),
    ("POST", "/accounts/angel-1/refresh", {"data": "x", "headers": {"Content-Type": "text/plain"}}, 415),
    ("POST", "/accounts/angel-1/refresh", {"data": b"\x00\xff\xfe", "headers": JSON_TYPE}, 400),
    ("POST", "/accounts/angel-1/verification", {"json": {"code": 123456}}, 400),
    ("POST", "/accounts/angel-1/verification", {"json": {"code": "12 34"}}, 400),
    ("POST", "/accounts/angel-1/verification", {"json": {}}, 400),
    ("POST", "/accounts/angel-1/verification", {"json": {"code": "1234", "extra": 1}}, 400),
    (
        "POST",
        "/accounts/angel-1/verification",
        {"data": '{"code": "1", "code": "2"}', "headers": JSON_TYPE},
        400,
    ),
    ("POST", "/accounts/angel-1/verification", {"data": '{"code": NaN}', "headers": JSON_TYPE}, 400),
    ("POST", "/accounts/angel-1/verification", {"json": {"code": "x" * 2_000_000}}, 413),
    ("POST", "/accounts/angel-1/verification", {"data": b"0" * 7_000_000}, 413),
]


def test_malformed_input_is_a_4xx_with_a_reason(api: Api, angel1: dict[str, Any]) -> None:
    key = api.key()
    wrong = []
    for method, path, options, status in MALFORMED:
        answer = api.call(method, path, key, **options)
        body = answer.json() if answer.headers.get("Content-Type") == "application/json" else {}
        reason = body.get("message") or body.get("Message")
        if answer.status_code != status or not reason:
            wrong.append(f"{method} {path[:60]}: {answer.status_code} {answer.text[:120]}")
        elif status != 413 and answer.headers.get("Cache-Control") != "no-store":
            wrong.append(f"{method} {path[:60]}: no Cache-Control: no-store")
    assert not wrong, "\n".join(wrong)


def test_person_steps_on_an_account_awaiting_none_are_409(api: Api, angel1: dict[str, Any]) -> None:
    key = api.key()
    verification = api.call("POST", "/accounts/angel-1/verification", key, json={"code": "123456"})
    assert verification.status_code == 409 and verification.json()["error"] == "no-verification-awaited"
    # The broker's redirect is the person pages' business: the caller-authorized API has no such route.
    callback = api.call("GET", "/callback/angel-1?request_token=abcdefgh123&action=login&status=success")
    assert callback.status_code == 404 and callback.json()["error"] == "not-found"


# -- single flight and caching -----------------------------------------------------------------------

CALLERS = 20


def test_twenty_concurrent_refreshes_make_one_login_and_answer_one_token(
    api: Api, angel1: dict[str, Any], angel: AngelOneSimulator, harness: Harness
) -> None:
    before = (harness.token("angel-1") or {})["access_token"]
    key = api.key()
    angel.faults.latency = 1.0  # every request arrives while the one login is still in flight
    start = threading.Barrier(CALLERS, timeout=30)

    def refresh(_: int) -> requests.Response:
        start.wait()
        return api.call("POST", "/accounts/angel-1/refresh", key)

    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        answers = list(pool.map(refresh, range(CALLERS)))
    assert [a.status_code for a in answers] == [200] * CALLERS
    tokens = {a.json()["access_token"] for a in answers}
    assert angel.logins("A100001") == 2  # the scheduled run's, then exactly one for all twenty
    assert len(tokens) == 1 and before not in tokens
    assert tokens == {(harness.token("angel-1") or {})["access_token"]}


class FrozenClock(WarpClock):
    """Time stands still, so the 30 s revalidation cannot come due however slow the machine is."""

    def __init__(self) -> None:
        super().__init__()
        self._at = super().time()

    def time(self) -> float:
        return self._at


@pytest.mark.slow
def test_a_thousand_reads_cost_one_secrets_manager_call(
    angel1: dict[str, Any], harness: Harness, moto: MotoServer, cloud: LocalResources
) -> None:
    api = start_api(harness, moto, cloud, FrozenClock())
    key = api.key()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    tokens = set()
    for _ in range(1000):
        answer = session.get(f"{api.url}/accounts/angel-1/token", timeout=10)
        assert answer.status_code == 200
        tokens.add(answer.json()["access_token"])
    api.front.stop()
    assert len(tokens) == 1
    assert sum(api.secrets.calls.values()) == 1 and api.secrets.calls["GetSecretValue"] == 1


def test_a_refresh_elsewhere_is_served_within_60_seconds(
    api: Api, angel1: dict[str, Any], harness: Harness, clock: WarpClock
) -> None:
    key = api.key()
    old = api.call("GET", "/accounts/angel-1/token", key).json()["access_token"]
    harness.refresher().refresh("angel-1", force=True)  # another container, e.g. the schedule
    new = (harness.token("angel-1") or {})["access_token"]
    assert new != old
    waited = 0
    while api.call("GET", "/accounts/angel-1/token", key).json()["access_token"] != new:
        assert waited < 60, "the new token was not served within 60 s"
        clock.advance(5)
        waited += 5
    assert 0 < waited <= 60
    assert api.secrets.calls["GetSecretValue"] == 2  # one per version


# -- the document ------------------------------------------------------------------------------------


def test_the_document_is_valid_and_the_repositorys_copy_is_what_is_served(api: Api) -> None:
    served = api.call("GET", "/openapi.json").json()
    validate(served)
    assert json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")) == served


def test_the_document_and_the_resolver_have_the_same_routes(api: Api) -> None:
    served = api.front.api.operations  # type: ignore[union-attr]
    documented = api.call("GET", "/openapi.json").json()

    assert set(served) == {(method, template) for method, template, _ in route_table(documented)}
    assert len(served) == sum(len(ops) for ops in documented["paths"].values())


def test_no_answer_carried_a_credential(api: Api, angel1: dict[str, Any]) -> None:
    key = api.key()
    for method, path in (
        ("GET", "/accounts"),
        ("GET", "/accounts/angel-1/token"),
        ("POST", "/accounts/angel-1/refresh"),
        ("GET", "/accounts/angel-1/login"),
    ):
        api.call(method, path, key)
    assert SECRETS and not leaks(api.answers)
    assert angel1["pin"] in SECRETS and angel1["totp_secret"] in SECRETS
