"""`make run LOGOUT=1`'s job, as a user runs it: a fresh process, the embedded stack, the demo tables,
then the end-of-day logout and the next morning's run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

REPO = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^([a-z0-9][a-z0-9-]*)\s+([a-z]+)\s+([a-z-]+)\b")


# `make run` serves on the fixed demo ports (8765, 8766): the tests that start it share one worker.
pytestmark = pytest.mark.xdist_group("demo-ports")


@pytest.fixture(scope="module")
def demo() -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.pop("BROKER_TOKENS_LOCAL", None)
    return subprocess.run(
        [sys.executable, "-m", "infra.local", "run", "--logout"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def tables(output: str) -> tuple[dict[str, str], dict[str, str]]:
    """(account -> state) of the scheduled run's table, and of the final `status` table."""
    first, _, final = output.partition("$ broker-tokens status")
    first = first.partition("Running the refresher")[2]

    def states(text: str) -> dict[str, str]:
        rows = {}
        for line in text.splitlines():
            match = ROW.match(line)
            if match and match.group(1) != "account":
                rows[match.group(1)] = match.group(3)
            elif rows and not line.strip():
                break
        return rows

    return states(first), states(final)


def kite_state_now() -> str:
    """Before 06:00 IST a Kite-family token dies at that morning's reset: honest, not fresh."""
    return "expiring" if datetime.now(ZoneInfo("Asia/Kolkata")).hour < 6 else "fresh"


def test_make_run_exits_zero_without_a_traceback(demo: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in demo.stderr, demo.stderr[-3000:]
    assert demo.returncode == 0, demo.stdout[-3000:]
    assert "Stack stopped." in demo.stdout


def test_the_scheduled_run_table(demo: subprocess.CompletedProcess[str]) -> None:
    first, _ = tables(demo.stdout)
    assert first == {
        "angel-demo": "fresh",
        "blinkx-demo": "awaiting-login",
        "etna-2fa-demo": "awaiting-verification",
        "etna-demo": "fresh",
        "pitrade-demo": "healthy",
        "tradejini-demo": "fresh",
        "zerodha-demo": kite_state_now(),
    }
    blinkx = next(line for line in demo.stdout.splitlines() if line.startswith("blinkx-demo"))
    assert "/connect/login?v=3&api_key=" in blinkx  # the login URL a person opens


def test_person_logins_finish_and_every_account_ends_usable(demo: subprocess.CompletedProcess[str]) -> None:
    _, final = tables(demo.stdout)
    # Both person logins go through the one-tap links of their alerts, and each ends on the done page.
    for account in ("etna-2fa-demo", "blinkx-demo"):
        assert re.search(rf"http://127\.0\.0\.1:\d+/login/{account}\?n=[\w-]{{43}}", demo.stdout), account
    assert "The page says: Done: etna-2fa-demo is fresh until" in demo.stdout
    assert "The page says: Done: blinkx-demo is" in demo.stdout
    assert final == {
        "angel-demo": "fresh",
        "blinkx-demo": kite_state_now(),
        "etna-2fa-demo": "fresh",
        "etna-demo": "fresh",
        "pitrade-demo": "healthy",
        "tradejini-demo": "fresh",
        "zerodha-demo": kite_state_now(),
    }
    angel = next(
        line for line in demo.stdout.split("$ broker-tokens status")[1].splitlines() if line.startswith("angel-demo")
    )
    issued, expires = re.findall(r"(\d{4}-\d\d-\d\d \d\d:\d\d) IST", angel)
    assert issued[:10] < expires[:10]  # about 24 h ahead: the next day


def test_demo_prints_how_an_app_reads_the_token(demo: subprocess.CompletedProcess[str]) -> None:
    # The README's way: the small client, not raw boto3.
    assert 'from broker_tokens.client import get_token\n    token = get_token("angel-demo")' in demo.stdout
    assert "get_secret_value" not in demo.stdout
    assert re.search(
        r"curl -s -H \"Authorization: Bearer btk_\w+_[\w-]+\" http://127\.0\.0\.1:\d+/accounts/", demo.stdout
    )


def test_the_logout_ends_each_session_at_its_simulator_and_the_next_run_logs_in(
    demo: subprocess.CompletedProcess[str],
) -> None:
    section = demo.stdout.partition("Running the end-of-day logout")[2].partition("Read a token from an app")[0]
    logout, _, morning = section.partition("The next morning's schedule")
    actions = {m.group(1): line.split()[3] for line in logout.splitlines() if (m := ROW.match(line))}
    assert {name: action for name, action in actions.items() if name != "account"} == {
        "angel-demo": "logged-out",
        "blinkx-demo": "logged-out",
        "etna-2fa-demo": "no-logout-at-broker",
        "etna-demo": "no-logout-at-broker",
        "pitrade-demo": "no-logout-at-broker",
        "tradejini-demo": "logged-out",
        "zerodha-demo": "logged-out",
    }
    refused = re.findall(r"^  ([a-z-]+): the old token at \w+: refused \(", logout, re.MULTILINE)
    assert sorted(refused) == ["angel-demo", "blinkx-demo", "tradejini-demo", "zerodha-demo"]
    assert "STILL ACCEPTED" not in logout
    again = {m.group(1): m.group(3) for line in morning.splitlines() if (m := ROW.match(line))}
    assert again["angel-demo"] == again["tradejini-demo"] == "fresh"
    assert again["blinkx-demo"] == "awaiting-login"  # a person logs in again, as every morning


def test_alerts_reach_the_local_telegram_and_history_shows_the_runs(demo: subprocess.CompletedProcess[str]) -> None:
    out = demo.stdout
    messages = [block.partition("\n\n")[0] for block in out.split("[Telegram, chat 100200300]")[1:]]
    awaiting = next(m for m in messages if "blinkx-demo waits for you" in m)
    assert re.search(r"Log in \[http://127\.0\.0\.1:\d+/login/blinkx-demo\?n=[A-Za-z0-9_-]+\]", awaiting)
    assert any("etna-2fa-demo waits for you" in m for m in messages)
    failure = next(m for m in messages if "angel-demo failed to refresh" in m)
    assert "Why: Angel One SmartAPI: login: broker answered HTTP 503" in failure
    assert re.search(r"the next run at \d\d:\d\d IST", failure)
    summaries = [m for m in messages if re.search(r"\d\d:\d\d IST: \d of 7 accounts fresh", m)]
    # Before 06:00 IST the Kite tokens die at the reset, so the schedule still has work: no summary yet.
    assert len(summaries) == (1 if kite_state_now() == "fresh" else 0)
    assert len([m for m in messages if "blinkx-demo waits for you" in m.splitlines()[1]]) == 1  # once a day
    history = out.partition("$ broker-tokens history")[2].partition("$ broker-tokens status")[0]
    assert re.search(r"IST\s+angel-demo\s+failed\s+logged-in\s+\d+\s+cli\s+transient: ", history)
    assert re.search(r"IST\s+blinkx-demo\s+fresh\s+logged-in\s+1\s+callback", history)
