"""The PiTrade Partner API simulator over real loopback HTTP: every JWT check, one test each."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from infra.local.simulators.base import ManualClock
from infra.local.simulators.pitrade import CLOCK_LEEWAY_SECONDS, PORTFOLIO_PATH, PiTradeSimulator

TIMEOUT = 5.0
START = 1_800_000_000.0
CLIENT, KEY = "partner-7", "pitrade-sim-signing-key-" + "0123456789abcdef" * 3  # 64 bytes: enough for HS512 too


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[PiTradeSimulator]:
    with PiTradeSimulator(clock=clock) as simulator:
        simulator.add_client(CLIENT, KEY)
        yield simulator


def signed(
    *, client: str = CLIENT, key: str = KEY, iat: Any = int(START), ttl: int = 900, algorithm: str = "HS256"
) -> str:
    exp = iat + ttl if isinstance(iat, int) else int(START) + ttl
    return jwt.encode({"clientId": client, "iat": iat, "exp": exp}, key, algorithm=algorithm)


def portfolio(sim: PiTradeSimulator, token: str | None, scheme: str = "Bearer") -> requests.Response:
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    return requests.get(sim.url + PORTFOLIO_PATH, headers=headers, timeout=TIMEOUT)


def refused(response: requests.Response) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    body = response.json()
    assert body["error"] == "invalid_token"
    message: str = body["message"]
    return message


def test_a_good_jwt_gets_the_portfolio(sim: PiTradeSimulator) -> None:
    answer = portfolio(sim, signed())
    assert answer.status_code == 200
    positions = answer.json()
    assert isinstance(positions, list) and {p["symbol"] for p in positions} == {"AAPL", "MSFT"}
    assert sim.calls(CLIENT) == 1


def test_wrong_signature(sim: PiTradeSimulator) -> None:
    assert "signature" in refused(portfolio(sim, signed(key="another-signing-key-0123456789abcdef")))


def test_expired_jwt(sim: PiTradeSimulator, clock: ManualClock) -> None:
    token = signed(ttl=120)
    clock.advance(119)
    assert portfolio(sim, token).status_code == 200
    clock.advance(1)
    assert "expired" in refused(portfolio(sim, token))


def test_alg_none_is_refused(sim: PiTradeSimulator) -> None:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"clientId": CLIENT, "iat": int(START), "exp": int(START) + 900}
    unsigned = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
    assert "alg" in refused(portfolio(sim, unsigned))


def test_other_hmac_algorithms_are_refused(sim: PiTradeSimulator) -> None:
    assert "alg" in refused(portfolio(sim, signed(algorithm="HS512")))


def test_ttl_over_900_is_refused(sim: PiTradeSimulator) -> None:
    assert portfolio(sim, signed(ttl=900)).status_code == 200
    assert "900" in refused(portfolio(sim, signed(ttl=901)))


def test_unknown_client_is_refused(sim: PiTradeSimulator) -> None:
    assert "clientId" in refused(portfolio(sim, signed(client="partner-8")))


def test_iat_must_be_whole_seconds(sim: PiTradeSimulator) -> None:
    assert "whole" in refused(portfolio(sim, signed(iat="1800000000")))


def test_jwt_from_the_future_is_refused(sim: PiTradeSimulator) -> None:
    assert portfolio(sim, signed(iat=int(START) + CLOCK_LEEWAY_SECONDS)).status_code == 200
    assert "future" in refused(portfolio(sim, signed(iat=int(START) + CLOCK_LEEWAY_SECONDS + 1)))


@pytest.mark.parametrize(("token", "scheme"), [(None, "Bearer"), ("x", "Bearer"), (signed(), "Token"), ("", "Bearer")])
def test_missing_or_malformed_authorization(sim: PiTradeSimulator, token: str | None, scheme: str) -> None:
    refused(portfolio(sim, token, scheme))


def test_faults(sim: PiTradeSimulator) -> None:
    sim.faults.transient_error_next(1, endpoint="portfolio")
    assert portfolio(sim, signed()).status_code == 503
    sim.faults.rate_limit_next(1)
    assert portfolio(sim, signed()).status_code == 429
    sim.faults.fail_next(1, status=502)
    assert portfolio(sim, signed()).status_code == 502
    assert portfolio(sim, signed()).status_code == 200
