"""The token API fuzzed from its own OpenAPI document: no input makes a 5xx, no answer carries a secret.

Schemathesis generates requests from docs/openapi.json (valid and invalid: odd ids, bodies, methods,
headers) and sends them over loopback to the local front, with a caller key for every account, so the
handlers behind authorization are reached too. Bounded: a fixed number of examples per operation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from infra.local.moto_server import MotoServer
from infra.local.template import LocalResources

from broker_tokens.clock import WarpClock
from tests.functional.test_token_api import Api, angel1_fixture, start_api  # noqa: F401  (fixture reused)
from tests.support.harness import Harness
from tests.support.logsink import leaks

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
EXAMPLES_PER_OPERATION = 50


@pytest.fixture
def fuzz_api(
    harness: Harness, moto: MotoServer, cloud: LocalResources, clock: WarpClock, angel1: dict[str, Any]
) -> Iterator[Api]:
    started = start_api(harness, moto, cloud, clock)
    yield started
    started.front.stop()


def test_no_server_error_and_no_secret(fuzz_api: Api) -> None:
    raw = json.loads(DOCUMENT.read_text())
    document = schemathesis.openapi.from_dict(raw)
    key = fuzz_api.key("fuzzer", actions=("read", "refresh", "admin"))
    tried: dict[str, int] = {}
    failures: list[str] = []

    def send(case: Any) -> None:
        headers = dict(case.headers or {})
        headers.setdefault("Authorization", f"Bearer {key}")
        response = case.call(base_url=fuzz_api.url, headers=headers, timeout=30)
        label = f"{case.method} {case.path}"
        tried[label] = tried.get(label, 0) + 1
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path}: HTTP {response.status_code}")
        if leaks([response.text, json.dumps(dict(response.headers))]):
            failures.append(f"{case.method} {case.formatted_path}: a fixture secret reached the answer")

    for result in document.get_all_operations():
        operation = result.ok()
        run = settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )(given(case=operation.as_strategy())(send))
        run()
    print(f"fuzzed {sum(tried.values())} requests over {len(tried)} operations: {len(failures)} server errors or leaks")
    assert len(tried) >= 7, tried  # every operation of the document (the callback is the person pages')
    assert not failures, failures[:10]
