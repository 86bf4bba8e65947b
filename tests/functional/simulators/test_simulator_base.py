"""The simulator base on its own, through a tiny broker with a path in its root, over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pyotp
import pytest
import requests
from infra.local.simulators.base import (
    MAX_HANG_SECONDS,
    Clock,
    Faults,
    ManualClock,
    RateLimiter,
    RefusedError,
    Request,
    Response,
    SimulatorServer,
    text_field,
)
from infra.local.simulators.totp import check_secret, code_at, code_for_step, matching_step

TIMEOUT = 5.0


class FormBroker(SimulatorServer):
    """A broker whose root has a path, that takes forms on one route and JSON on another."""

    root_path = "/v2"

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self.add_route("POST", "/form", "form", self._form)
        self.add_route("POST", "/json", "json", self._json)
        self.add_route("GET", "/boom", "boom", self._boom)
        self.add_route("GET", "/teapot", "teapot", self._teapot)

    def account_of(self, request: Request) -> str | None:
        return request.header("X-User")

    def _form(self, request: Request) -> Response:
        return Response.json({"fields": request.form(), "query": request.query_params()})

    def _json(self, request: Request) -> Response:
        return Response.json({"word": text_field(request.json_object(), "word")})

    def _boom(self, request: Request) -> Response:
        raise RuntimeError("a bug in a handler")

    def _teapot(self, request: Request) -> Response:
        raise RefusedError(Response.text("short and stout", 418))


@pytest.fixture
def broker() -> Iterator[FormBroker]:
    with FormBroker(ManualClock()) as sim:
        yield sim


def test_url_carries_the_root_path_and_routes_live_under_it(broker: FormBroker) -> None:
    assert broker.url == f"http://127.0.0.1:{broker.port}/v2"
    assert requests.post(broker.url + "/form", timeout=TIMEOUT).status_code == 415
    outside = requests.post(broker.url.removesuffix("/v2") + "/form", timeout=TIMEOUT)
    assert outside.status_code == 404
    assert broker.endpoints() == {"form", "json", "boom", "teapot"}


def test_form_bodies_are_read_strictly(broker: FormBroker) -> None:
    good = requests.post(broker.url + "/form?x=1", data={"password": "p w", "blank": ""}, timeout=TIMEOUT)
    assert good.json() == {"fields": {"password": "p w", "blank": ""}, "query": {"x": "1"}}
    repeated = requests.post(broker.url + "/form", data=[("a", "1"), ("a", "2")], timeout=TIMEOUT)
    as_json = requests.post(broker.url + "/form", json={"a": "1"}, timeout=TIMEOUT)
    broken = requests.post(
        broker.url + "/form",
        data=b"a",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=TIMEOUT,
    )
    assert (repeated.status_code, as_json.status_code, broken.status_code) == (400, 415, 400)


@pytest.mark.parametrize(
    ("body", "status"),
    [(b'{"word": NaN}', 400), (b'{"word": "a", "word": "b"}', 400), (b"\xff", 400), (b'{"word": 1}', 400)],
)
def test_json_bodies_are_read_strictly(broker: FormBroker, body: bytes, status: int) -> None:
    answer = requests.post(
        broker.url + "/json", data=body, headers={"Content-Type": "application/json"}, timeout=TIMEOUT
    )
    assert answer.status_code == status


def test_chunked_bodies_need_a_length(broker: FormBroker) -> None:
    answer = requests.post(broker.url + "/json", data=iter([b'{"word": "a"}']), timeout=TIMEOUT)
    assert answer.status_code == 411


def test_handler_errors_and_refusals(broker: FormBroker) -> None:
    crashed = requests.get(broker.url + "/boom", timeout=TIMEOUT)
    assert crashed.status_code == 500 and crashed.headers["Content-Type"].startswith("text/html")
    teapot = requests.get(broker.url + "/teapot", timeout=TIMEOUT)
    assert (teapot.status_code, teapot.text) == (418, "short and stout")


def test_records_and_counts(broker: FormBroker) -> None:
    requests.post(broker.url + "/json", json={"word": "a"}, headers={"X-User": "u1"}, timeout=TIMEOUT)
    requests.post(broker.url + "/json", json={}, headers={"X-User": "u2"}, timeout=TIMEOUT)
    requests.get(broker.url + "/nowhere", timeout=TIMEOUT)
    assert [(r.endpoint, r.account, r.status) for r in broker.requests] == [
        ("json", "u1", 200),
        ("json", "u2", 400),
        (None, None, 404),
    ]
    assert broker.count("json") == 2 and broker.count("json", "u1") == 1
    assert all(record.at == ManualClock().time() for record in broker.requests)


def test_faults_fire_in_order_and_are_consumed() -> None:
    faults = Faults(lambda: {"login", "profile"})
    faults.fail_next(1, status=500, endpoint="profile")
    faults.fail_next(2, status=502)
    fired = [faults.take("fail", endpoint) for endpoint in ("login", "profile", "profile", "profile")]
    assert [fault.status if fault else None for fault in fired] == [502, 500, 502, None]
    with pytest.raises(ValueError, match="5xx"):
        faults.fail_next(1, status=429)
    with pytest.raises(ValueError, match="at least 1"):
        faults.malformed_next(0)
    with pytest.raises(ValueError, match="between"):
        faults.hang_next(1, seconds=MAX_HANG_SECONDS + 1)
    faults.latency = 0.5
    faults.rate_limit_next(3)
    faults.clear()
    assert (faults.latency, faults.pending()) == (0.0, 0)


def test_transport_faults_over_http(broker: FormBroker) -> None:
    broker.faults.malformed_next(1, endpoint="json")
    broker.faults.rate_limit_next(1)
    limited = requests.post(broker.url + "/json", json={"word": "a"}, timeout=TIMEOUT)
    page = requests.post(broker.url + "/json", json={"word": "a"}, timeout=TIMEOUT)
    assert limited.status_code == 429
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert requests.post(broker.url + "/json", json={"word": "a"}, timeout=TIMEOUT).json() == {"word": "a"}


def test_rate_limiter_windows() -> None:
    clock = ManualClock(0.0)
    limiter = RateLimiter(clock, (3, 1.0), (4, 10.0))
    assert [limiter.admit("k") for _ in range(4)] == [True, True, True, False]
    clock.advance(1.0)
    assert [limiter.admit("k"), limiter.admit("k"), limiter.admit("other")] == [True, False, True]
    clock.advance(9.0)
    assert limiter.admit("k")


def test_restart_keeps_the_port() -> None:
    sim = FormBroker().start()
    url = sim.url
    sim.stop()
    with pytest.raises(requests.ConnectionError):
        requests.post(url + "/json", json={"word": "a"}, timeout=TIMEOUT)
    sim.start()
    try:
        assert sim.url == url
        assert requests.post(url + "/json", json={"word": "a"}, timeout=TIMEOUT).status_code == 200
    finally:
        sim.stop()


def test_stop_cuts_kept_alive_connections() -> None:
    sim = FormBroker().start()
    with requests.Session() as session:
        assert session.post(sim.url + "/json", json={"word": "a"}, timeout=TIMEOUT).status_code == 200
        sim.stop()
        with pytest.raises(requests.ConnectionError):
            session.post(sim.url + "/json", json={"word": "a"}, timeout=TIMEOUT)


def test_totp_matches_rfc_6238_and_pyotp() -> None:
    rfc_secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # ASCII "12345678901234567890"
    assert code_for_step(rfc_secret, 59 // 30) == "287082"
    assert code_at(rfc_secret, 1111111109) == "081804"
    assert code_at(rfc_secret, 20000000000) == "353130"
    long_secret = pyotp.random_base32()
    for at in (1_700_000_000, 1_700_000_029, 1_700_000_030):
        assert code_at(long_secret, at) == pyotp.TOTP(long_secret).at(at)
    assert matching_step(rfc_secret, " 287082", at=59) is None
    with pytest.raises(ValueError, match="base32") as caught:
        check_secret("not base32!")
    assert "not base32!" not in str(caught.value)
