"""The `broker-tokens` CLI end to end: the real entry point in a subprocess, against `broker-tokens local up`.

One embedded stack (moto + simulators, in its own background process) serves the module. Tests read
what the CLI wrote straight from moto, and drive logins a person would finish (a browser login, an
e-mailed code) over real HTTP. Each test uses its own accounts, or demo accounts nobody else changes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pyotp
import pytest
import requests
from infra.local.person import PageElements
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.base import ManualClock
from infra.local.simulators.tradejini import TradejiniSimulator

from broker_tokens.callers import CallerStore
from broker_tokens.totp import BrokerTOTP
from tests.support.accounts import etna_credentials

CLI_TIMEOUT_SECONDS = 90
PREFIX = "broker-tokens"
# Variables of the developer's shell that must not steer the CLI under test.
SCRUBBED_PREFIXES = ("AWS_", "BROKER_TOKENS_")
SCRUBBED_NAMES = ("SECRET_PREFIX", "STATE_TABLE_NAME", "ALERT_TOPIC_ARN", "SECRETS_KMS_KEY_ARN", "NO_COLOR")


def cli_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m broker_tokens.cli`."""
    script = Path(sys.executable).with_name("broker-tokens")
    return [str(script)] if script.exists() else [sys.executable, "-m", "broker_tokens.cli"]


def clean_environment(state_file: Path) -> dict[str, str]:
    """This process's environment without AWS settings, pointed at a state file of its own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(SCRUBBED_PREFIXES) and key not in SCRUBBED_NAMES
    }
    missing = str(state_file.parent / "no-such-aws-config")
    env.update(
        BROKER_TOKENS_LOCAL_STATE=str(state_file),
        AWS_CONFIG_FILE=missing,
        AWS_SHARED_CREDENTIALS_FILE=missing,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def run_cli(
    *args: str,
    env: dict[str, str],
    stdin: str | None = None,
    timeout: float = CLI_TIMEOUT_SECONDS,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `broker-tokens ARGS` to completion (bounded), capturing both streams."""
    return subprocess.run(
        [*cli_command(), *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The command failed with ``code``, one line on stderr and no traceback; returns that line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("broker-tokens")
    return lines[0]


# -- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`broker-tokens local up` for the module; `local down` after it."""
    state_file = tmp_path_factory.mktemp("cli-stack") / "state.json"
    env = clean_environment(state_file)
    up = run_cli("local", "up", "--lifetime-hours", "1", env=env)
    assert up.returncode == 0, up.stderr
    try:
        yield {"env": env, "state": json.loads(state_file.read_text()), "up": up}
    finally:
        down = run_cli("local", "down", env=env)
        assert down.returncode == 0, down.stderr
        assert not state_file.exists()


@pytest.fixture(scope="module")
def local_env(stack: dict[str, Any]) -> dict[str, str]:
    """The environment of a shell that did `export BROKER_TOKENS_LOCAL=1`."""
    return {**stack["env"], "BROKER_TOKENS_LOCAL": "1"}


@pytest.fixture(scope="module")
def aws(stack: dict[str, Any]) -> boto3.Session:
    """A boto3 session on the stack's moto, for checking what the CLI wrote."""
    environment = stack["state"]["environment"]
    return boto3.Session(
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=environment["AWS_SESSION_TOKEN"],
        region_name=environment["AWS_DEFAULT_REGION"],
    )


def client(aws: boto3.Session, stack: dict[str, Any], service: str) -> Any:
    """A client of one moto service."""
    return aws.client(service, endpoint_url=stack["state"]["environment"]["AWS_ENDPOINT_URL"])  # type: ignore[call-overload]


def credentials(aws: boto3.Session, stack: dict[str, Any], account: str) -> dict[str, Any]:
    """An account's credentials secret, as stored."""
    secrets = client(aws, stack, "secretsmanager")
    return dict(json.loads(secrets.get_secret_value(SecretId=f"{PREFIX}/{account}/credentials")["SecretString"]))


def add_account(env: dict[str, str], account: str, creds: dict[str, Any]) -> None:
    """`accounts add ACCOUNT --from-file -`, which must succeed."""
    result = run_cli("accounts", "add", account, "--from-file", "-", env=env, stdin=json.dumps(creds))
    assert result.returncode == 0, result.stderr


def write_file(tmp_path: Path, name: str, data: Any) -> str:
    """A JSON file for --from-file."""
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(path)


# -- the stack ------------------------------------------------------------------------------------------


def test_local_up_shows_the_stack_and_status_finds_it(stack: dict[str, Any]) -> None:
    out = stack["up"].stdout
    assert "moto" in out and "angelone simulator" in out and "angel-demo (angelone)" in out
    again = run_cli("local", "up", env=stack["env"])
    assert again.returncode == 0 and "already up" in again.stderr
    status = run_cli("local", "status", env=stack["env"])
    assert status.returncode == 0 and str(stack["state"]["pid"]) in status.stdout


def test_local_flag_without_a_running_stack_is_a_one_line_error(tmp_path: Path) -> None:
    env = clean_environment(tmp_path / "absent.json")
    line = assert_one_line_error(run_cli("--local", "status", env=env))
    assert "local up" in line
    assert run_cli("local", "status", env=env).returncode == 1


# -- accounts ------------------------------------------------------------------------------------------


def test_add_reads_hidden_values_from_stdin_checks_them_and_shows_the_totp_code(
    local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any]
) -> None:
    demo = credentials(aws, stack, "angel-demo")
    spaced = " ".join(demo["totp_secret"][i : i + 4] for i in range(0, len(demo["totp_secret"]), 4)).lower()
    # The prompts' order: required (api_key, client_code, pin, totp_secret), then the optional ones.
    answers = [demo["api_key"], demo["client_code"], demo["pin"], spaced, "", "", "", demo["base_url"]]
    typed = "\n".join(answers) + "\n"
    result = run_cli("accounts", "add", "t-typed", "--broker", "angelone", env=local_env, stdin=typed)
    finished = time.time()
    assert result.returncode == 0, result.stderr
    assert "Created broker-tokens/t-typed/credentials" in result.stdout
    stored = credentials(aws, stack, "t-typed")
    assert stored == {**{k: demo[k] for k in ("api_key", "client_code", "pin", "base_url")},
                      "broker": "angelone", "totp_secret": demo["totp_secret"]}  # fmt: skip
    tags = client(aws, stack, "secretsmanager").describe_secret(SecretId=f"{PREFIX}/t-typed/credentials")["Tags"]
    assert {"Key": "broker", "Value": "angelone"} in tags
    # The code shown is the one an authenticator app showed while the command ran.
    totp = BrokerTOTP(demo["totp_secret"])
    shown = next(line for line in result.stderr.splitlines() if line.startswith("TOTP check"))
    assert any(f"{code[:3]} {code[3:]}" in shown for code in (totp.at(finished), totp.at(finished - 30)))
    assert demo["pin"] not in result.stdout
    # What was typed logs in for real.
    refreshed = run_cli("refresh", "t-typed", env=local_env)
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert "fresh" in refreshed.stdout
    listed = run_cli("accounts", "list", "--json", env=local_env)
    row = next(r for r in json.loads(listed.stdout) if r["account"] == "t-typed")
    assert row["broker"] == "angelone" and row["token_written"]


def test_add_refuses_what_the_contract_refuses(local_env: dict[str, str], tmp_path: Path) -> None:
    good = {"broker": "angelone", "api_key": "k", "client_code": "C1", "pin": "1234", "totp_secret": "JBSWY3DPEHPK3PXP"}
    cases = {
        "not a base32": write_file(tmp_path, "totp.json", {**good, "totp_secret": "not base32 at all!"}),
        "not valid JSON": write_file(tmp_path, "broken.json", '{"broker": "angelone",'),
        "unknown key": write_file(tmp_path, "typo.json", {**good, "pinn": "1"}),
        "is missing": write_file(tmp_path, "missing.json", {"broker": "angelone", "api_key": "k"}),
        "unknown broker": write_file(tmp_path, "broker.json", {**good, "broker": "nosuch"}),
    }
    for expected, path in cases.items():
        line = assert_one_line_error(run_cli("accounts", "add", "t-refused", "--from-file", path, env=local_env))
        assert expected in line
    # A required value that never comes (stdin ends) is the same kind of error.
    line = assert_one_line_error(run_cli("accounts", "add", "t-refused", "--broker", "angelone", env=local_env))
    assert "api_key" in line
    assert "t-refused" not in run_cli("accounts", "list", env=local_env).stdout


def test_update_keeps_values_on_enter_and_refuses_secrets_on_the_command_line(
    local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any], tmp_path: Path
) -> None:
    original = {"broker": "angelone", "api_key": "k", "client_code": "C2", "pin": "1234",
                "totp_secret": "JBSWY3DPEHPK3PXP", "mac_address": "00:1A:2B:3C:4D:5E"}  # fmt: skip
    add_account(local_env, "t-update", original)
    # Enter everywhere but the PIN (third prompt).
    result = run_cli("accounts", "update", "t-update", env=local_env, stdin="\n\n9876\n\n\n\n\n\n")
    assert result.returncode == 0, result.stderr
    assert "pin" in result.stdout and "TOTP check" not in result.stderr
    assert credentials(aws, stack, "t-update") == {**original, "pin": "9876"}
    result = run_cli(
        "accounts", "update", "t-update", "--set", "enabled=false", "--unset", "mac_address", env=local_env
    )
    assert result.returncode == 0, result.stderr
    expected = {**original, "pin": "9876", "enabled": False}
    del expected["mac_address"]
    assert credentials(aws, stack, "t-update") == expected
    line = assert_one_line_error(run_cli("accounts", "update", "t-update", "--set", "pin=1111", env=local_env))
    assert "secret" in line and "1111" not in line
    unchanged = run_cli("accounts", "update", "t-update", "--set", "enabled=false", env=local_env)
    assert unchanged.returncode == 0 and unchanged.stdout.startswith("No change")


def test_remove_asks_first_and_keeps_the_secrets_recoverable(
    local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any], tmp_path: Path
) -> None:
    creds = {"broker": "tradejini", "api_key": "k", "password": "p4ss", "totp_secret": "JBSWY3DPEHPK3PXP"}
    add_account(local_env, "t-remove", creds)
    declined = run_cli("accounts", "remove", "t-remove", env=local_env, stdin="n\n")
    assert declined.returncode == 2 and "nothing deleted" in declined.stderr
    assert "t-remove" in run_cli("accounts", "list", env=local_env).stdout
    removed = run_cli("accounts", "remove", "t-remove", env=local_env, stdin="y\n")
    assert removed.returncode == 0, removed.stderr
    described = client(aws, stack, "secretsmanager").describe_secret(SecretId=f"{PREFIX}/t-remove/credentials")
    assert "DeletedDate" in described  # scheduled, not gone: restore-secret still works
    assert "t-remove" not in run_cli("accounts", "list", env=local_env).stdout
    assert_one_line_error(run_cli("status", "t-remove", env=local_env))
    line = assert_one_line_error(
        run_cli("accounts", "add", "t-remove", "--from-file", write_file(tmp_path, "r.json", creds), env=local_env)
    )
    assert "scheduled for deletion" in line


# -- refresh, status, token ------------------------------------------------------------------------------


def test_refresh_status_and_token(local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any]) -> None:
    result = run_cli("refresh", "angel-demo", "tradejini-demo", env=local_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[1/2]" in result.stderr and "[2/2]" in result.stderr  # a line per finished account
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["account", "broker", "state"]
    assert all(" fresh " in line for line in lines[1:]) and len(lines) == 3
    assert "\033[" not in result.stdout  # not a terminal: no colour

    status = run_cli("status", "angel-demo", "tradejini-demo", "--json", env=local_env)
    assert status.returncode == 0
    assert {a["account"]: a["state"] for a in json.loads(status.stdout)["accounts"]} == {
        "angel-demo": "fresh",
        "tradejini-demo": "fresh",
    }
    again = run_cli("refresh", "angel-demo", "--json", env=local_env)
    assert json.loads(again.stdout)["accounts"][0]["action"] == "skipped"

    stored = json.loads(
        client(aws, stack, "secretsmanager").get_secret_value(SecretId=f"{PREFIX}/angel-demo/token")["SecretString"]
    )
    header = run_cli("token", "angel-demo", "--header", env=local_env)
    assert header.returncode == 0 and header.stdout == stored["authorization"] + "\n"
    record = json.loads(run_cli("token", "angel-demo", env=local_env).stdout)
    assert record == stored and record["source"] == "cli"
    signed = json.loads(run_cli("token", "pitrade-demo", env=local_env).stdout)
    assert signed["authorization"].startswith("Bearer ey")


def test_token_of_an_expired_or_missing_token_exits_1(
    local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any], tmp_path: Path
) -> None:
    creds = {"broker": "tradejini", "api_key": "k", "password": "p4ss", "totp_secret": "JBSWY3DPEHPK3PXP"}
    add_account(local_env, "t-expired", creds)
    missing = run_cli("token", "t-expired", env=local_env)
    assert missing.returncode == 1 and missing.stdout == "" and "no token" in missing.stderr
    old = {"schema": 1, "account": "t-expired", "broker": "tradejini", "access_token": "old-token-value",
           "authorization": "Bearer k:old-token-value", "headers": {}, "issued_at": "2020-01-01T02:00:00Z",
           "expires_at": "2020-01-02T02:00:00Z", "source": "schedule"}  # fmt: skip
    client(aws, stack, "secretsmanager").create_secret(Name=f"{PREFIX}/t-expired/token", SecretString=json.dumps(old))
    expired = run_cli("token", "t-expired", "--header", env=local_env)
    assert expired.returncode == 1 and expired.stdout == ""
    assert "expired" in assert_one_line_error(expired, code=1)


def test_a_rejected_login_exits_1_and_reset_clears_needs_attention(
    local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any], tmp_path: Path
) -> None:
    wrong = {**credentials(aws, stack, "angel-demo"), "pin": "0000"}
    add_account(local_env, "t-wrong-pin", wrong)
    result = run_cli("refresh", "t-wrong-pin", env=local_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "needs-attention" in result.stdout and "reset t-wrong-pin" in result.stderr
    status = run_cli("status", "t-wrong-pin", env=local_env)
    assert status.returncode == 1 and "needs-attention" in status.stdout and "permanent" in status.stdout
    # The breaker: no second login with the same credentials.
    again = run_cli("refresh", "t-wrong-pin", "--json", env=local_env)
    assert again.returncode == 1 and json.loads(again.stdout)["logins"] == 0
    reset = run_cli("reset", "t-wrong-pin", env=local_env)
    assert reset.returncode == 0 and "Cleared" in reset.stdout
    after = json.loads(run_cli("status", "t-wrong-pin", "--json", env=local_env).stdout)["accounts"][0]
    assert after["state"] != "needs-attention"
    assert "nothing to clear" in run_cli("reset", "t-wrong-pin", env=local_env).stdout


# -- logins a person finishes -------------------------------------------------------------------------------


def test_login_prints_the_one_tap_link_and_finishes_with_the_redirect(
    local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any]
) -> None:
    started = run_cli("login", "blinkx-demo", env=local_env)
    assert started.returncode == 0, started.stderr
    link = started.stdout.strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/login/blinkx-demo\?n=[\w-]{43}", link), link
    # The person: the link's page, its "Log in" button, the broker's form answered as a browser would.
    start = requests.get(link, timeout=10)
    assert start.status_code == 200 and start.headers["Cache-Control"] == "no-store"
    login_url = PageElements(start.text).by_id("login")["href"]
    creds = credentials(aws, stack, "blinkx-demo")
    page = requests.get(login_url, timeout=10)
    _, hidden = PageElements(page.text).form()
    form = {**hidden, "user_id": creds["user_id"], "password": creds["password"]}
    form["totp"] = pyotp.TOTP(creds["totp_secret"]).now()
    parts = urlsplit(login_url)
    answer = requests.post(
        f"{parts.scheme}://{parts.netloc}/connect/login", data=form, allow_redirects=False, timeout=10
    )
    redirect = answer.headers["Location"]
    assert "request_token=" in redirect and "/callback/blinkx-demo?" in redirect
    bad = run_cli("login", "blinkx-demo", "https://example.com/cb?action=login&status=cancelled", env=local_env)
    assert "status" in assert_one_line_error(bad)
    # Instead of following the redirect to the person pages, paste it into the CLI (the operator's path).
    finished = run_cli("login", "blinkx-demo", redirect, env=local_env)
    # Between midnight and 06:00 IST a Kite token is already "expiring" (it dies at 06:00): exit 1 then.
    state = finished.stdout.splitlines()[1].split()[2]
    assert state in ("fresh", "expiring"), finished.stdout + finished.stderr
    assert finished.returncode == (0 if state == "fresh" else 1)
    assert run_cli("token", "blinkx-demo", "--header", env=local_env).stdout.startswith("token ")
    assert requests.get(link, timeout=10).status_code == 403  # the login is over: its link is dead
    not_browser = run_cli("login", "angel-demo", env=local_env)
    assert "without a browser" in assert_one_line_error(not_browser)


def test_verify_finishes_a_login_with_the_emailed_code(local_env: dict[str, str]) -> None:
    with AutoSharesSimulator() as sim:
        creds = etna_credentials(sim, "cli.2fa", "cli-pass-word", app_key="cli-app-key", two_factor=True, broker="etna")
        add_account(local_env, "t-etna", creds)
        early = run_cli("verify", "t-etna", "123456", env=local_env)
        assert "not waiting for a code" in assert_one_line_error(early)
        started = run_cli("refresh", "t-etna", env=local_env)
        assert started.returncode == 1 and "awaiting-verification" in started.stdout
        assert "verify t-etna CODE" in started.stderr
        code = sim.outbox("cli.2fa")[-1]
        verified = run_cli("verify", "t-etna", env=local_env, stdin=code + "\n")  # the code asked on stdin
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert " fresh " in verified.stdout
    assert "never waits for a code" in assert_one_line_error(run_cli("verify", "angel-demo", "1", env=local_env))


# -- callers -------------------------------------------------------------------------------------------------


def test_callers_add_list_revoke(local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any]) -> None:
    table = stack["state"]["environment"]["STATE_TABLE_NAME"]
    store = CallerStore(table, client=client(aws, stack, "dynamodb"), cache_seconds=0)  # reads what the CLI wrote
    added = run_cli("callers", "add", "t-bot", "--accounts", "angel-demo,kite-*", "--actions", "read", env=local_env)
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith("btk_") and "shown" in added.stderr
    caller = store.authenticate_key(key)
    assert caller is not None and caller.accounts == ("angel-demo", "kite-*") and caller.actions == {"read"}
    listed = json.loads(run_cli("callers", "list", "--json", env=local_env).stdout)
    mine = next(c for c in listed if c["name"] == "t-bot")
    assert {k: mine[k] for k in ("accounts", "actions")} == {"accounts": ["angel-demo", "kite-*"], "actions": ["read"]}
    assert mine["created_at"] and mine["last_used"] == "unknown"  # locally nobody keeps the grant log lines
    table = run_cli("callers", "list", env=local_env)
    assert key not in table.stdout and "created" in table.stdout and "last used" in table.stdout
    row = next(line for line in table.stdout.splitlines() if line.startswith("t-bot "))
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d IST\s+unknown$", row), row
    assert "exists" in assert_one_line_error(
        run_cli("callers", "add", "t-bot", "--accounts", "*", "--actions", "read", env=local_env)
    )
    replaced = run_cli(
        "callers", "add", "t-bot", "--accounts", "*", "--actions", "read,refresh", "--replace", env=local_env
    )
    new_key = replaced.stdout.strip()
    assert new_key != key and store.authenticate_key(key) is None and store.authenticate_key(new_key) is not None
    assert "actions" in assert_one_line_error(
        run_cli("callers", "add", "t-bad", "--accounts", "a", "--actions", "fly", env=local_env)
    )
    revoked = run_cli("callers", "revoke", "t-bot", env=local_env)
    assert revoked.returncode == 0 and "within 10 s" in revoked.stdout and "at once" not in revoked.stdout
    assert store.authenticate_key(new_key) is None
    assert "no caller" in assert_one_line_error(run_cli("callers", "revoke", "t-bot", env=local_env))


# -- doctor ------------------------------------------------------------------------------------------------


def test_doctor_passes_on_the_local_stack(local_env: dict[str, str]) -> None:
    result = run_cli("doctor", env=local_env)
    assert "ok    AWS:" in result.stdout
    assert "state table 'local-StateTable' answers" in result.stdout
    assert "clock:" in result.stdout and "FAIL  clock" not in result.stdout


def test_doctor_fails_on_a_clock_15_s_off_and_on_a_broken_secret(
    local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any], tmp_path: Path
) -> None:
    secrets = client(aws, stack, "secretsmanager")
    with TradejiniSimulator(clock=ManualClock(time.time() + 40)) as ahead:
        creds = {"broker": "tradejini", "api_key": "k", "password": "p4ss", "totp_secret": "JBSWY3DPEHPK3PXP",
                 "base_url": ahead.url}  # fmt: skip
        add_account(local_env, "t-skew", creds)
        secrets.create_secret(Name=f"{PREFIX}/t-broken/credentials", SecretString='{"broker": "angelone"}')
        try:
            result = run_cli("doctor", env=local_env)
        finally:
            for account in ("t-skew", "t-broken"):
                run_cli("accounts", "remove", account, "--yes", env=local_env)
    assert result.returncode == 1, result.stdout
    host = urlsplit(ahead.url).netloc
    skew = next(line for line in result.stdout.splitlines() if f"({host})" in line)
    assert skew.startswith("FAIL  clock:") and f"behind Tradejini CubePlus ({host})" in skew
    assert "http://" not in "\n".join(line for line in result.stdout.splitlines() if "clock:" in line)
    assert "FAIL  account 't-broken': credentials key 'api_key' is missing" in result.stdout
    assert "fix: broker-tokens accounts update t-broken" in result.stdout


def printed_fixes(output: str) -> list[str]:
    """The broker-tokens commands doctor printed as fixes."""
    fixes = [line.split("fix:", 1)[1].strip() for line in output.splitlines() if line.strip().startswith("fix:")]
    return [fix for fix in fixes if fix.startswith("broker-tokens ")]


def run_printed(
    line: str, env: dict[str, str], fill: dict[str, str], stdin: str = ""
) -> list[subprocess.CompletedProcess[str]]:
    """Run a command line the CLI printed (`a && b  # why`), CAPITALS filled in; none may be a usage error."""
    results = []
    for part in line.split("  #", 1)[0].split("&&"):
        words = shlex.split(part)
        assert words and words[0] == "broker-tokens", line
        result = run_cli(*[fill.get(word, word) for word in words[1:]], env=env, stdin=stdin)
        assert result.returncode in (0, 1), f"`{line}` failed: {result.stderr}"
        assert "Traceback" not in result.stderr
        results.append(result)
    return results


def angel_answers(demo: dict[str, Any]) -> str:
    """What a person types at `accounts add|update --broker angelone` (required values, optional ones skipped)."""
    return (
        "\n".join(
            [demo["api_key"], demo["client_code"], demo["pin"], demo["totp_secret"], "", "", "", demo["base_url"]]
        )
        + "\n"
    )


def test_every_fix_doctor_prints_works(local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any]) -> None:
    secrets = client(aws, stack, "secretsmanager")
    demo = credentials(aws, stack, "angel-demo")
    secrets.create_secret(Name=f"{PREFIX}/t-notjson/credentials", SecretString="{not json",
                          Tags=[{"Key": "broker", "Value": "angelone"}])  # fmt: skip
    secrets.create_secret(Name=f"{PREFIX}/t-untagged/credentials", SecretString="api_key=oops")
    secrets.create_secret(Name=f"{PREFIX}/t-mistagged/credentials", SecretString=json.dumps(demo),
                          Tags=[{"Key": "broker", "Value": "tradejini"}])  # fmt: skip
    try:
        before = run_cli("doctor", env=local_env)
        fixes = [fix for fix in printed_fixes(before.stdout) if " t-" in fix]
        assert len(fixes) == 3, before.stdout
        for fix in fixes:
            run_printed(fix, local_env, {"NAME": "angelone"}, stdin=angel_answers(demo))
        after = run_cli("doctor", env=local_env)
        assert not [line for line in after.stdout.splitlines() if "'t-" in line and not line.startswith("ok")]
        assert credentials(aws, stack, "t-notjson") == {"broker": "angelone", **{k: demo[k] for k in
            ("api_key", "client_code", "pin", "totp_secret", "base_url")}}  # fmt: skip
    finally:
        for account in ("t-notjson", "t-untagged", "t-mistagged"):
            run_cli("accounts", "remove", account, "--yes", env=local_env)


def next_hints(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The commands under "Next:" on stderr."""
    _, _, rest = result.stderr.partition("Next:\n")
    return [line.strip() for line in rest.splitlines() if line.startswith("  broker-tokens ")]


def test_every_next_hint_runs_as_printed(local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any]) -> None:
    wrong_pin = {**credentials(aws, stack, "angel-demo"), "pin": "0000"}
    add_account(local_env, "t-hint-pin", wrong_pin)
    refused = run_cli("refresh", "t-hint-pin", env=local_env)
    hints = next_hints(refused)
    assert hints == [
        "broker-tokens accounts update t-hint-pin  # wrong credentials",
        "broker-tokens reset t-hint-pin && broker-tokens refresh t-hint-pin  # fixed at the broker",
    ], refused.stderr
    run_printed(hints[0], local_env, {}, stdin="\n" * 8)  # Enter keeps every value
    reset, again = run_printed(hints[1], local_env, {})
    assert "Cleared" in reset.stdout and "needs-attention" in again.stdout  # the PIN is still wrong

    with AutoSharesSimulator() as sim:
        creds = etna_credentials(sim, "hint.2fa", "hint-pass-word", app_key="hint-app-key", two_factor=True)
        add_account(local_env, "t-hint-etna", creds)
        started = run_cli("refresh", "t-hint-etna", env=local_env)
        assert next_hints(started) == ["broker-tokens verify t-hint-etna CODE"], started.stderr
        wrong = "000000" if sim.outbox("hint.2fa")[-1] != "000000" else "111111"
        (refused_code,) = run_printed(next_hints(started)[0], local_env, {"CODE": wrong})
        # A refused code keeps the login open: the hint is to type it again.
        assert next_hints(refused_code) == ["broker-tokens verify t-hint-etna CODE"], refused_code.stderr
        (spent,) = run_printed(next_hints(refused_code)[0], local_env, {"CODE": wrong})
        for hint in next_hints(spent):  # the simulator's ETNA spent its ticket: a new login and a new code
            assert "accounts update" not in hint
            run_printed(hint, local_env, {"CODE": wrong})
        status = run_cli("status", "t-hint-etna", env=local_env)
        (last,) = next_hints(status)
        assert last == "broker-tokens verify t-hint-etna CODE", status.stdout + status.stderr
        (done,) = run_printed(last, local_env, {"CODE": sim.outbox("hint.2fa")[-1]})
        assert done.returncode == 0 and " fresh " in done.stdout, done.stdout + done.stderr


# -- bad input, unreachable AWS ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["token", "no-such-account"], "unknown account 'no-such-account'"),
        (["refresh", "no-such-account"], "unknown account"),
        (["status", "--bogus-flag"], "unrecognized arguments"),
        (["accounts", "add", "t-x", "--broker", "nosuch"], "unknown broker 'nosuch'"),
        (["token", "Not_An_Id"], "not an account id"),
        (["reset", "no-such-account"], "unknown account"),
        (["login", "no-such-account"], "unknown account"),
        (["logout", "no-such-account"], "unknown account"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(local_env: dict[str, str], args: list[str], expected: str) -> None:
    assert expected in assert_one_line_error(run_cli(*args, env=local_env))


def test_unreachable_aws_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {
        **clean_environment(tmp_path / "state.json"),
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_DEFAULT_REGION": "ap-south-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_MAX_ATTEMPTS": "1",
    }
    for args in (["status"], ["refresh"], ["doctor"], ["accounts", "list"]):
        assert "AWS is unreachable" in assert_one_line_error(run_cli(*args, env=env, timeout=30))
    no_region = {k: v for k, v in env.items() if k != "AWS_DEFAULT_REGION"}
    assert "no AWS region" in assert_one_line_error(run_cli("status", env=no_region, timeout=30))


def test_python_dash_m_is_the_same_entry_point(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "broker_tokens.cli", "--version"],
        capture_output=True,
        text=True,
        env=clean_environment(tmp_path / "state.json"),
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.startswith("broker-tokens ")
    assert shutil.which("broker-tokens", path=str(Path(sys.executable).parent)) is not None


def test_alerts_test_and_history_on_the_local_stack(local_env: dict[str, str]) -> None:
    result = run_cli("alerts", "test", env=local_env)
    assert result.returncode == 0, result.stderr
    assert ": published (e-mail subscribers and the stack's notifier get it)" in result.stdout
    assert "Telegram chat 100200300: sent (message " in result.stdout
    # The stack hands what the topic got to the notifier, as SNS does: its log shows Telegram's copy.
    log = Path(local_env["BROKER_TOKENS_LOCAL_STATE"]).with_suffix(".log")
    relayed: list[str] = []
    for _ in range(40):
        lines = log.read_text().splitlines()
        relayed = [line for line in lines if line.startswith("[Telegram, chat 100200300] broker-tokens test message")]
        if relayed:
            break
        time.sleep(0.25)
    assert relayed
    history = run_cli("history", "--json", env=local_env)
    assert history.returncode == 0 and isinstance(json.loads(history.stdout)["entries"], list)


# -- a deployed stack: status and doctor --stack ----------------------------------------------------------

STACK_TEMPLATE = {
    "Resources": {"Alerts": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {
        "RefresherFunctionName": {"Value": "t-refresher"},
        "AlertTopicArn": {"Value": {"Ref": "Alerts"}},
        "StateTableName": {"Value": "local-StateTable"},
    },
}


def test_status_and_doctor_read_a_deployed_stack(
    local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any]
) -> None:
    cloudformation = client(aws, stack, "cloudformation")
    cloudformation.create_stack(StackName="t-stack", TemplateBody=json.dumps(STACK_TEMPLATE))
    outputs = cloudformation.describe_stacks(StackName="t-stack")["Stacks"][0]["Outputs"]
    topic = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "AlertTopicArn")
    region = stack["state"]["environment"]["AWS_DEFAULT_REGION"]
    function_arn = f"arn:aws:lambda:{region}:123456789012:function:t-refresher"
    scheduler = client(aws, stack, "scheduler")
    for name, expression, state in (("t-first", "cron(30 7 ? * MON-FRI *)", "ENABLED"),
                                    ("t-third", "cron(30 8 ? * MON-FRI *)", "DISABLED")):  # fmt: skip
        scheduler.create_schedule(
            Name=name, ScheduleExpression=expression, ScheduleExpressionTimezone="Asia/Kolkata", State=state,
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": function_arn, "RoleArn": "arn:aws:iam::123456789012:role/t-scheduler", "Input": "{}"},
        )  # fmt: skip
    cloudwatch = client(aws, stack, "cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="t-refresh-failed", MetricName="RefreshFailed", Namespace="BrokerTokens", Statistic="Sum",
        Period=300, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[topic],
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName="t-refresh-failed", StateValue="ALARM", StateReason="1 account failed")
    ran = datetime.now(UTC) - timedelta(minutes=30)
    cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": "t-refresher"}],
             "Timestamp": ran, "Value": 1}
        ],
    )  # fmt: skip
    with_stack = {**local_env, "BROKER_TOKENS_STACK": "t-stack"}

    status = json.loads(run_cli("status", "angel-demo", "--json", env=with_stack).stdout)
    assert [s["name"] for s in status["schedule"]["schedules"]] == ["t-first", "t-third"]
    assert status["schedule"]["next"].endswith("07:30:00+05:30")  # the disabled 08:30 run is not counted
    assert status["accounts"][0]["source"] in ("cli", "schedule", None)

    before = run_cli("doctor", env=with_stack)
    assert "FAIL  schedule(s) disabled: t-third" in before.stdout, before.stdout
    assert "FAIL  alerts: nobody is subscribed" in before.stdout
    assert "FAIL  alarm t-refresh-failed is in ALARM: 1 account failed" in before.stdout
    assert re.search(r"(ok|FAIL)\s+last run: \d{4}-\d\d-\d\d \d\d:\d\d IST, ok", before.stdout), before.stdout
    assert before.returncode == 1

    scheduler.update_schedule(
        Name="t-third", ScheduleExpression="cron(30 8 ? * MON-FRI *)", State="ENABLED",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": function_arn, "RoleArn": "arn:aws:iam::123456789012:role/t-scheduler", "Input": "{}"},
    )  # fmt: skip
    client(aws, stack, "sns").subscribe(TopicArn=topic, Protocol="email", Endpoint="trader@example.com")
    cloudwatch.set_alarm_state(AlarmName="t-refresh-failed", StateValue="OK", StateReason="quiet")
    after = run_cli("doctor", env=with_stack)
    assert "ok    2 schedule(s) run the refresher, all enabled" in after.stdout, after.stdout
    assert "ok    alerts: 1 confirmed subscription(s)" in after.stdout
    assert "ok    alarms: 1, none in ALARM" in after.stdout


# -- the end-of-day logout (last: it ends tradejini-demo's sessions at the simulator) ----------------------


def test_logout_ends_the_session_the_token_reads_expired_and_a_refresh_logs_in_again(
    local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any]
) -> None:
    add_account(local_env, "t-logout", credentials(aws, stack, "tradejini-demo"))
    add_account(local_env, "t-logout-etna", credentials(aws, stack, "etna-demo"))
    assert run_cli("refresh", "t-logout", env=local_env).returncode == 0
    before = run_cli("token", "t-logout", env=local_env)
    assert before.returncode == 0

    result = run_cli("logout", "t-logout", "t-logout-etna", env=local_env)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["account", "broker", "state", "action"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["t-logout"][2:4] == ["expired", "logged-out"]
    assert rows["t-logout-etna"][3] in ("no-token", "no-logout-at-broker")
    token = run_cli("token", "t-logout", "--header", env=local_env)
    assert token.returncode == 1 and token.stdout == "" and "expired" in token.stderr
    stored = json.loads(
        client(aws, stack, "secretsmanager").get_secret_value(SecretId=f"{PREFIX}/t-logout/token")["SecretString"]
    )
    assert stored["source"] == "logout"
    # The session is over at the broker: the old token fails the account-details call.
    old = json.loads(before.stdout)
    details = requests.get(
        credentials(aws, stack, "t-logout")["base_url"] + "/api/account/details",
        headers={"Authorization": old["authorization"]},
        timeout=10,
    )
    assert details.status_code == 401
    again = json.loads(run_cli("logout", "t-logout", "--json", env=local_env).stdout)
    assert again["ok"] and again["accounts"][0]["action"] == "already-expired"
    # The next run logs in again: a logout record is never fresh.
    morning = json.loads(run_cli("refresh", "t-logout", "--json", env=local_env).stdout)
    assert morning["ok"] and morning["accounts"][0]["action"] == "logged-in"
