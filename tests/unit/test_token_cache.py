"""The token cache: memory first, a version check every 30 s, one GetSecretValue per token version."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from broker_tokens.client import TokenCache, TokenUnavailableError, get_token
from broker_tokens.clock import WarpClock
from broker_tokens.models import iso

PREFIX = "broker-tokens"
NAME = f"{PREFIX}/angel-1/token"


class CallCounter:
    """Counts Secrets Manager operations made through one client (a botocore event hook)."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        client.meta.events.register("before-call.secrets-manager.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1


def record(token: str, expires_in: timedelta = timedelta(hours=20)) -> str:
    now = datetime.now(UTC)
    return json.dumps(
        {
            "schema": 1,
            "account": "angel-1",
            "broker": "angelone",
            "access_token": token,
            "authorization": f"Bearer {token}",
            "headers": {"X-PrivateKey": "k"},
            "issued_at": iso(now),
            "expires_at": iso(now + expires_in),
            "source": "schedule",
        }
    )


@pytest.fixture
def secrets() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="ap-south-1")


@pytest.fixture
def writer() -> Any:
    """Another client: the refresher elsewhere."""
    return boto3.client("secretsmanager", region_name="ap-south-1")


def test_a_thousand_reads_make_one_get_secret_value(secrets: Any, clock: WarpClock) -> None:
    secrets.create_secret(Name=NAME, SecretString=record("tok-1"))
    counter = CallCounter(secrets)
    cache = TokenCache(secrets, prefix=PREFIX, clock=clock)
    tokens = {cache.get("angel-1")["access_token"] for _ in range(1000)}  # type: ignore[index]
    assert tokens == {"tok-1"}
    assert counter.calls["GetSecretValue"] == 1 and counter.calls["DescribeSecret"] == 0


def test_a_refresh_elsewhere_is_seen_within_60_seconds(secrets: Any, writer: Any, clock: WarpClock) -> None:
    secrets.create_secret(Name=NAME, SecretString=record("tok-1"))
    counter = CallCounter(secrets)
    cache = TokenCache(secrets, prefix=PREFIX, clock=clock)
    assert cache.get("angel-1")["access_token"] == "tok-1"  # type: ignore[index]
    writer.put_secret_value(SecretId=NAME, SecretString=record("tok-2"))
    seen_after = None
    for second in range(1, 61):
        clock.advance(1)
        if cache.get("angel-1")["access_token"] == "tok-2":  # type: ignore[index]
            seen_after = second
            break
    assert seen_after is not None and seen_after <= 60
    assert seen_after >= 25  # it was served from memory meanwhile, not re-read
    assert counter.calls["GetSecretValue"] == 2  # one per version


def test_an_unchanged_version_costs_a_describe_not_a_read(secrets: Any, clock: WarpClock) -> None:
    secrets.create_secret(Name=NAME, SecretString=record("tok-1"))
    counter = CallCounter(secrets)
    cache = TokenCache(secrets, prefix=PREFIX, clock=clock)
    for _ in range(5):
        assert cache.get("angel-1")["access_token"] == "tok-1"  # type: ignore[index]
        clock.advance(31)
    assert counter.calls["GetSecretValue"] == 1 and counter.calls["DescribeSecret"] == 4


def test_revalidate_sees_a_new_version_at_once(secrets: Any, writer: Any, clock: WarpClock) -> None:
    secrets.create_secret(Name=NAME, SecretString=record("tok-1"))
    cache = TokenCache(secrets, prefix=PREFIX, clock=clock)
    cache.get("angel-1")
    writer.put_secret_value(SecretId=NAME, SecretString=record("tok-2"))
    assert cache.revalidate("angel-1")["access_token"] == "tok-2"  # type: ignore[index]
    assert cache.get("angel-1")["access_token"] == "tok-2"  # type: ignore[index]


def test_concurrent_cold_readers_share_one_read(secrets: Any, clock: WarpClock) -> None:
    secrets.create_secret(Name=NAME, SecretString=record("tok-1"))
    counter = CallCounter(secrets)
    cache = TokenCache(secrets, prefix=PREFIX, clock=clock)
    start = threading.Barrier(20, timeout=10)

    def read(_: int) -> str:
        start.wait()
        return str(cache.get("angel-1")["access_token"])  # type: ignore[index]

    with ThreadPoolExecutor(max_workers=20) as pool:
        assert set(pool.map(read, range(20))) == {"tok-1"}
    assert counter.calls["GetSecretValue"] == 1


def test_a_missing_token_is_none_and_its_creation_is_seen(secrets: Any, writer: Any, clock: WarpClock) -> None:
    cache = TokenCache(secrets, prefix=PREFIX, clock=clock)
    assert cache.get("angel-1") is None
    writer.create_secret(Name=NAME, SecretString=record("tok-1"))
    clock.advance(31)
    assert cache.get("angel-1")["access_token"] == "tok-1"  # type: ignore[index]


def test_a_copy_is_handed_out(secrets: Any, clock: WarpClock) -> None:
    secrets.create_secret(Name=NAME, SecretString=record("tok-1"))
    cache = TokenCache(secrets, prefix=PREFIX, clock=clock)
    cache.get("angel-1")["headers"]["X-PrivateKey"] = "changed"  # type: ignore[index]
    assert cache.get("angel-1")["headers"] == {"X-PrivateKey": "k"}  # type: ignore[index]


def test_get_token_serves_a_good_token_and_refuses_a_dead_or_missing_one(secrets: Any, clock: WarpClock) -> None:
    secrets.create_secret(Name=NAME, SecretString=record("tok-1"))
    assert get_token("angel-1", prefix=PREFIX, client=secrets, clock=clock)["authorization"] == "Bearer tok-1"
    with pytest.raises(TokenUnavailableError, match="no token yet"):
        get_token("angel-2", prefix=PREFIX, client=secrets, clock=clock)
    secrets.create_secret(Name=f"{PREFIX}/angel-3/token", SecretString=record("tok-3", timedelta(seconds=-5)))
    with pytest.raises(TokenUnavailableError, match="expired"):
        get_token("angel-3", prefix=PREFIX, client=secrets, clock=clock)
    with pytest.raises(ValueError, match="account ids"):
        get_token("../credentials", prefix=PREFIX, client=secrets, clock=clock)


def test_get_token_caches_across_calls(secrets: Any, clock: WarpClock) -> None:
    secrets.create_secret(Name=NAME, SecretString=record("tok-1"))
    counter = CallCounter(secrets)
    for _ in range(100):
        get_token("angel-1", prefix=PREFIX, client=secrets, clock=clock)
    assert counter.calls["GetSecretValue"] <= 1
