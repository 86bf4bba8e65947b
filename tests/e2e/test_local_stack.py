"""The embedded stack as a newcomer meets it: one per-user state file, the demo's person steps, `local env`.

The stack is started with no state-file setting at all (only ``XDG_STATE_HOME``, as on a fresh
machine), from one directory, and used from another. The person steps are played by a scripted
person who reads only what the CLI printed: the demo login of `local up`, `local totp`, `local outbox`.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli import assert_one_line_error, clean_environment, run_cli
from tests.support.scripted_person import log_in

DEMO_LOGIN = re.compile(r"^  (?P<account>[a-z0-9-]+): user id (?P<user_id>\S+), password (?P<password>\S+), ", re.M)
STATE_WAIT_SECONDS = 90
REPO_ROOT = Path(__file__).resolve().parents[2]


def xdg_environment(home: Path) -> dict[str, str]:
    """A clean environment with no state-file setting: the stack's file goes to the XDG state directory."""
    env = clean_environment(home / "unused.json")
    del env["BROKER_TOKENS_LOCAL_STATE"]
    env["XDG_STATE_HOME"] = str(home / "state")
    return env


def demo_logins(printed: str) -> dict[str, dict[str, str]]:
    """The demo logins as `local up` printed them, by account."""
    return {m["account"]: {"user_id": m["user_id"], "password": m["password"]} for m in DEMO_LOGIN.finditer(printed)}


def person_logs_in(env: dict[str, str], login_url: str, login: dict[str, str]) -> list[str]:
    """The person types the printed user id and password, and the code `local totp` shows now."""
    account = login["account"]
    code = run_cli("local", "totp", account, env=env)
    assert code.returncode == 0 and re.fullmatch(r"\d{6}\n", code.stdout), code.stderr
    return log_in(login_url, {"user_id": login["user_id"], "password": login["password"], "totp": code.stdout.strip()})


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("newcomer")


@pytest.fixture(scope="module")
def stack(home: Path) -> Iterator[dict[str, Any]]:
    """`broker-tokens local up` run in one directory, with nothing but XDG_STATE_HOME set."""
    env = xdg_environment(home)
    started_in = home / "clone"
    started_in.mkdir()
    up = run_cli("local", "up", "--lifetime-hours", "1", env=env, cwd=started_in)
    assert up.returncode == 0, up.stderr
    path = home / "state" / "broker-tokens" / "local.json"
    try:
        yield {"env": env, "up": up, "path": path, "state": json.loads(path.read_text())}
    finally:
        assert run_cli("local", "down", env=env).returncode == 0
        assert not path.exists()


@pytest.fixture
def elsewhere(home: Path) -> Path:
    """Another directory than the one the stack was started in."""
    path = home / "elsewhere"
    path.mkdir(exist_ok=True)
    return path


def test_the_state_file_is_per_user_and_local_works_from_any_directory(stack: dict[str, Any], elsewhere: Path) -> None:
    assert stack["path"].is_file() and oct(stack["path"].stat().st_mode & 0o777) == "0o600"
    assert not list((stack["path"].parents[2] / "clone").iterdir())  # nothing left in the clone
    status = run_cli("--local", "status", env=stack["env"], cwd=elsewhere)
    assert status.returncode == 1 and "angel-demo" in status.stdout, status.stderr  # exit 1: not fresh yet


def test_local_env_prints_the_exports_a_bot_needs(stack: dict[str, Any], elsewhere: Path) -> None:
    printed = run_cli("local", "env", env=stack["env"], cwd=elsewhere)
    assert printed.returncode == 0, printed.stderr
    bot = (
        "import boto3, os; "
        "names = [s['Name'] for s in boto3.client('secretsmanager').list_secrets()['SecretList']]; "
        "print(os.environ['BROKER_TOKENS_API_URL'], 'broker-tokens/angel-demo/credentials' in names)"
    )
    env = {k: v for k, v in stack["env"].items() if k != "XDG_STATE_HOME"}
    script = f"{printed.stdout}\n{shlex.quote(sys.executable)} -c {shlex.quote(bot)}\n"
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [stack["state"]["token_api"], "True"]


def test_the_blinkx_browser_login_lands_on_this_stack(stack: dict[str, Any]) -> None:
    env = {**stack["env"], "BROKER_TOKENS_LOCAL": "1"}
    logins = demo_logins(stack["up"].stdout)
    assert "blinkx-demo" in logins, stack["up"].stdout
    started = run_cli("login", "blinkx-demo", env=env)
    assert started.returncode == 0, started.stderr
    visited = person_logs_in(env, started.stdout.strip(), {"account": "blinkx-demo", **logins["blinkx-demo"]})
    assert visited[0].startswith(f"{stack['state']['person_pages']}/callback/blinkx-demo?"), visited
    status = json.loads(run_cli("status", "blinkx-demo", "--json", env=env).stdout)["accounts"][0]
    assert status["state"] in ("fresh", "expiring"), status  # before 06:00 IST a Kite token is expiring


def test_the_outbox_shows_the_emailed_code_and_a_typo_spends_nothing(stack: dict[str, Any]) -> None:
    env = {**stack["env"], "BROKER_TOKENS_LOCAL": "1"}
    empty = run_cli("local", "outbox", "etna-2fa-demo", env=env)
    assert empty.returncode == 1 and "refresh" in empty.stderr
    started = run_cli("refresh", "etna-2fa-demo", env=env)
    assert "awaiting-verification" in started.stdout, started.stdout + started.stderr
    listed = run_cli("local", "outbox", env=env)
    assert listed.returncode == 0 and re.search(
        r"^etna-2fa-demo\s+\d{4}-\d\d-\d\d \d\d:\d\d IST\s+\d{6}$", listed.stdout, re.M
    )
    code = run_cli("local", "outbox", "etna-2fa-demo", "--latest", env=env).stdout.strip()
    for typo in (code[:5], code + "7", code[:5] + "x"):
        line = assert_one_line_error(run_cli("verify", "etna-2fa-demo", typo, env=env))
        assert "'etna-2fa-demo'" in line and "verification code" in line and "nothing was sent" in line
        assert typo not in line
    still = json.loads(run_cli("status", "etna-2fa-demo", "--json", env=env).stdout)["accounts"][0]
    assert still["state"] == "awaiting-verification"
    spaced = f"{code[:3]} {code[3:]}"
    verified = run_cli("verify", "etna-2fa-demo", spaced, env=env)
    assert verified.returncode == 0 and " fresh " in verified.stdout, verified.stdout + verified.stderr


@pytest.mark.xdist_group("demo-ports")  # its person pages take the fixed demo port, as `make run`'s do
def test_make_run_keep_writes_the_state_file_and_local_down_stops_it(home: Path) -> None:
    env = xdg_environment(home / "kept")
    path = home / "kept" / "state" / "broker-tokens" / "local.json"
    demo = subprocess.Popen(
        [sys.executable, "-m", "infra.local", "run", "--keep", "--port", "0"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + STATE_WAIT_SECONDS
        while not path.exists() and demo.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert path.exists(), "make run KEEP=1 wrote no state file"
        status = run_cli("--local", "status", "angel-demo", "--json", env=env)
        assert json.loads(status.stdout)["accounts"][0]["state"] == "fresh", status.stderr
        assert run_cli("local", "status", env=env).returncode == 0
        assert run_cli("local", "down", env=env).returncode == 0
        output, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(timeout=30)
    assert "Stack stopped." in output and not path.exists()
    assert 'eval "$(broker-tokens local env)"' in output
    assert "blinkx-demo: user id BX1234, password " in output
