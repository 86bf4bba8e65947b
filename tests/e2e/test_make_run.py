"""`make run`'s job, as a user runs it: a fresh process, the embedded stack, the demo table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_output() -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, "-m", "infra.local", "run"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    return done.stdout


def states(output: str) -> dict[str, str]:
    """account -> state, from the printed table."""
    rows = {}
    for line in output.splitlines():
        match = re.match(r"^([a-z0-9][a-z0-9-]*)\s+([a-z]+)\s+([a-z-]+)\s", line)
        if match and match.group(1) != "account":
            rows[match.group(1)] = match.group(3)
    return rows


def test_demo_angel_one_account_is_fresh_for_a_day(demo_output: str) -> None:
    assert states(demo_output)["angel-demo"] == "fresh"
    row = next(line for line in demo_output.splitlines() if line.startswith("angel-demo"))
    issued, expires = re.findall(r"(\d{4}-\d\d-\d\d \d\d:\d\d) IST", row)
    assert issued[:10] < expires[:10]  # about 24 h ahead: the next day


def test_demo_prints_how_an_app_reads_the_token(demo_output: str) -> None:
    assert 'get_secret_value(SecretId="broker-tokens/angel-demo/token")' in demo_output
    assert "Stack stopped." in demo_output
