"""The refresher function's handler as Lambda runs it: its EMF output for the market-open alarm."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from infra.local.lambda_context import LocalLambdaContext
from infra.local.simulators.angelone import AngelOneSimulator
from infra.local.template import LocalResources

from broker_tokens.refresh import NotFreshError
from broker_tokens.runtime import container_refresher
from refresher.app import lambda_handler
from tests.functional.test_refresh_angelone import angel_account
from tests.support.harness import Harness


@pytest.fixture
def function(cloud: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The refresher function's environment from the template, metrics on."""
    for name, value in {**cloud.environment("RefresherFunction"), "BROKER_HTTP_TIMEOUT_SECONDS": "5"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    container_refresher.cache_clear()
    yield
    container_refresher.cache_clear()


def invoke(event: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Run the handler with ``event``; the EMF blobs it printed (a run that ends not fresh raises)."""
    capsys.readouterr()
    with contextlib.suppress(NotFreshError):
        lambda_handler(event, LocalLambdaContext("t1-RefresherFunction"))
    lines = capsys.readouterr().out.splitlines()
    return [json.loads(line) for line in lines if line.startswith("{") and '"_aws"' in line]


def deadline_figures(blobs: list[dict[str, Any]]) -> list[float]:
    """Every AccountsNotFresh value the handler emitted (the alarm's metric)."""
    found: list[float] = []
    for blob in blobs:
        value = blob.get("AccountsNotFresh")
        if value is not None:  # EMF allows one value or a list of them
            found.extend(float(v) for v in (value if isinstance(value, list) else [value]))
    return found


def test_only_a_full_scheduled_run_feeds_the_market_open_alarm(
    function: None, angel: AngelOneSimulator, harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    angel_account(angel, harness, "angel-1")
    broken = angel_account(angel, harness, "angel-2", client_code="A100002", api_key="angel-key-2")
    harness.add_account("angel-2", {**broken, "pin": "9753"})  # a wrong MPIN: needs attention

    scheduled = invoke({}, capsys)  # what EventBridge Scheduler sends (Input "{}")
    assert deadline_figures(scheduled) == [1.0]

    # The API hands one healthy account's refresh to the function: its report says nothing of angel-2.
    for event in (
        {"accounts": ["angel-1"], "force": True, "source": "api"},
        {"accounts": ["angel-1"], "force": True, "source": "cli"},
        {"accounts": ["angel-1"]},
    ):
        blobs = invoke(event, capsys)
        assert deadline_figures(blobs) == [], event
        assert any("RefreshSucceeded" in blob for blob in blobs), event  # the other metrics still flow
