"""The refresher's EMF output carries the metric names and dimensions template.yaml's alarms read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from broker_tokens.errors import ErrorKind
from broker_tokens.models import AccountState, Outcome
from broker_tokens.refresh import Report
from refresher import app

NOW = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    blobs = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and "_aws" in line:
            blobs.append(json.loads(line))
    return blobs


def values(blob: dict[str, object], name: str) -> list[float]:
    """EMF allows one value or a list of them."""
    raw = blob[name]
    return [float(v) for v in raw] if isinstance(raw, list) else [float(raw)]  # type: ignore[arg-type]


def test_service_and_per_broker_metrics(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    report = Report(
        [
            Outcome(
                "a1",
                "angelone",
                AccountState.FRESH,
                action="logged-in",
                logins=1,
                duration_ms=420,
                issued_at=NOW - timedelta(minutes=5),
            ),
            Outcome(
                "t1",
                "tradejini",
                AccountState.NEEDS_ATTENTION,
                action="logged-in",
                logins=2,
                error_kind=ErrorKind.PERMANENT,
                error="x",
            ),
            Outcome("a2", "angelone", AccountState.FRESH, action="skipped", issued_at=NOW - timedelta(hours=1)),
        ]
    )
    app.metrics.set_default_dimensions(service="broker-tokens")
    app.record_metrics(report, now=NOW)
    app.metrics.flush_metrics()
    blobs = emitted(capsys)
    service = next(b for b in blobs if "RefreshFailed" in b and "broker" not in b)
    assert values(service, "RefreshSucceeded") == [1.0] and values(service, "RefreshFailed") == [1.0]
    assert values(service, "AccountsNotFresh") == [1.0]
    assert sorted(values(service, "TokenAgeSeconds")) == [300.0, 3600.0]
    dims = service["_aws"]["CloudWatchMetrics"][0]["Dimensions"]  # type: ignore[index]
    assert dims == [["service"]]
    per_broker = {
        (b["broker"], name): values(b, name)
        for b in blobs
        if "broker" in b
        for name in ("RefreshSucceeded", "RefreshFailed")
        if name in b
    }
    assert per_broker[("angelone", "RefreshSucceeded")] == [1.0]
    assert per_broker[("tradejini", "RefreshFailed")] == [1.0]
    assert per_broker[("tradejini", "RefreshSucceeded")] == [0.0]
