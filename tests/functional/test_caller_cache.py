"""API-key lookups are cached briefly: a revocation holds at once here, within 10 s in another container."""

from __future__ import annotations

from infra.local.moto_server import MotoServer
from infra.local.template import LocalResources

from broker_tokens.callers import AUTH_CACHE_SECONDS, CallerStore
from broker_tokens.clock import WarpClock
from tests.support.logsink import remember_secret


def test_revocation_reaches_every_container_within_the_cache_time(
    moto: MotoServer, cloud: LocalResources, clock: WarpClock
) -> None:
    dynamodb = moto.client("dynamodb")
    api_container = CallerStore(cloud.table_name, client=dynamodb, clock=clock)  # type: ignore[arg-type]
    cli = CallerStore(cloud.table_name, client=dynamodb, clock=clock)  # type: ignore[arg-type]
    key = cli.add("bot", ["*"], ["read"])
    assert key is not None
    remember_secret(key)
    assert api_container.authenticate_key(key) is not None
    calls: list[str] = []
    dynamodb.meta.events.register("before-call.dynamodb.GetItem", lambda **_: calls.append("get"))  # type: ignore[attr-defined]
    for _ in range(100):
        assert api_container.authenticate_key(key) is not None
    assert calls == []  # warm: no DynamoDB read per request
    cli.revoke("bot")
    assert cli.authenticate_key(key) is None  # the store that revoked knows at once
    assert api_container.authenticate_key(key) is not None  # another container: until its cache lapses
    clock.advance(AUTH_CACHE_SECONDS)
    assert api_container.authenticate_key(key) is None


def test_unknown_keys_are_cached_too(moto: MotoServer, cloud: LocalResources, clock: WarpClock) -> None:
    dynamodb = moto.client("dynamodb")
    store = CallerStore(cloud.table_name, client=dynamodb, clock=clock)  # type: ignore[arg-type]
    calls: list[str] = []
    dynamodb.meta.events.register("before-call.dynamodb.GetItem", lambda **_: calls.append("get"))  # type: ignore[attr-defined]
    for _ in range(20):
        assert store.authenticate_key("btk_0123456789ab_" + "g" * 43) is None
    assert len(calls) == 1
