"""The token API function's EMF output: what the dashboard's "Token API" widget plots, and nothing secret."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.functional.test_token_api import Api, angel1_fixture, api_fixture  # noqa: F401 - fixtures
from tests.support.logsink import leaks


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF blobs printed since the last call."""
    lines = capsys.readouterr().out.splitlines()
    return [json.loads(line) for line in lines if line.startswith("{") and '"_aws"' in line]


def counts(blobs: list[dict[str, Any]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for blob in blobs:
        for metric in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = blob[metric["Name"]]  # EMF allows one value or a list of them
            totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(value if isinstance(value, list) else [value])
    return totals


def test_served_tokens_and_refusals_are_counted(
    api: Api, angel1: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    reader = api.key("reader", accounts=("angel-*",), actions=("read",))
    capsys.readouterr()

    assert api.call("GET", "/accounts/angel-1/token", reader).status_code == 200
    assert api.call("GET", "/accounts/angel-1/token", reader).status_code == 200
    assert api.call("GET", "/accounts/angel-1/token").status_code == 401  # no key
    assert api.call("GET", "/accounts/angel-1/token", "btk_0123456789ab_" + "x" * 43).status_code == 401
    assert api.call("GET", "/accounts/kite-9/token", reader).status_code == 403  # out of scope
    assert api.call("GET", "/accounts", reader).status_code == 200  # neither
    assert api.call("GET", "/health").status_code == 200

    blobs = emitted(capsys)
    assert counts(blobs) == {"TokenServed": 2, "RequestRefused": 3}
    for blob in blobs:
        # The service dimension only: no account, caller or path in a metric.
        assert blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
        assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "BrokerTokens"
        assert "angel-1" not in json.dumps(blob) and "reader" not in json.dumps(blob)
    assert not leaks([json.dumps(blob) for blob in blobs])
