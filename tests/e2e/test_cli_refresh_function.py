"""`broker-tokens refresh` in the stack's refresher function, or `--here`: the real entry point, a real Invoke.

The embedded stack serves Lambda's Invoke API for its refresher function (AWS_ENDPOINT_URL_LAMBDA in
its state file); naming the function (REFRESHER_FUNCTION_NAME, as `--stack` does with a deployed
stack) makes the CLI hand the run to it, as it does in AWS so the logins leave from the stack's IP.
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from tests.e2e import test_cli as cli
from tests.e2e.test_cli import PREFIX, add_account, assert_one_line_error, client, credentials, run_cli

# The module's own embedded stack, through test_cli's fixtures.
stack, local_env, aws = cli.stack, cli.local_env, cli.aws


def function_env(local_env: dict[str, str], stack: dict[str, Any], name: str | None = None) -> dict[str, str]:
    """The shell of someone who named the stack's refresher function."""
    return {**local_env, "REFRESHER_FUNCTION_NAME": name or stack["state"]["refresher_function"]}


def stored_token(aws: boto3.Session, stack: dict[str, Any], account: str) -> dict[str, Any]:
    secrets = client(aws, stack, "secretsmanager")
    return dict(json.loads(secrets.get_secret_value(SecretId=f"{PREFIX}/{account}/token")["SecretString"]))


def test_refresh_runs_in_the_refresher_function_and_says_so(
    local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any]
) -> None:
    add_account(local_env, "t-fn", credentials(aws, stack, "tradejini-demo"))
    env = function_env(local_env, stack)

    result = run_cli("refresh", "t-fn", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Refreshed in the refresher function {stack['state']['refresher_function']}" in result.stderr
    assert "Logging in here" not in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["account", "broker", "state"] and " fresh " in lines[1]
    assert stored_token(aws, stack, "t-fn")["source"] == "cli"
    # Fresh now: the function skips it, and --json carries the function's own report.
    again = run_cli("refresh", "t-fn", "--json", env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["accounts"][0]["action"] == "skipped"


def test_a_function_that_cannot_be_invoked_is_an_error_not_a_local_login(
    local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any]
) -> None:
    add_account(local_env, "t-fn-missing", credentials(aws, stack, "tradejini-demo"))

    result = run_cli("refresh", "t-fn-missing", env=function_env(local_env, stack, "no-such-function"))

    line = assert_one_line_error(result)
    assert "no-such-function could not be invoked" in line and "--here" in line
    secrets = client(aws, stack, "secretsmanager")
    assert not secrets.list_secrets(Filters=[{"Key": "name", "Values": [f"{PREFIX}/t-fn-missing/token"]}])[
        "SecretList"
    ]  # nobody logged in


def test_here_logs_in_from_this_machine_even_with_a_function(
    local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any]
) -> None:
    add_account(local_env, "t-here", credentials(aws, stack, "tradejini-demo"))

    result = run_cli("refresh", "t-here", "--here", env=function_env(local_env, stack, "no-such-function"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Logging in here" in result.stderr and "--here" in result.stderr
    assert stored_token(aws, stack, "t-here")["source"] == "cli"
    unnamed = run_cli("refresh", "t-here", env=local_env)  # no function known: here, and it says why
    assert unnamed.returncode == 0 and "no refresher function known" in unnamed.stderr


def test_a_run_that_ends_not_fresh_in_the_function_reports_every_account(
    local_env: dict[str, str], aws: boto3.Session, stack: dict[str, Any]
) -> None:
    # The function raises on purpose (its alarm fires); the CLI reads where the accounts stand.
    add_account(local_env, "t-fn-wrong", {**credentials(aws, stack, "angel-demo"), "pin": "0000"})
    add_account(local_env, "t-fn-good", credentials(aws, stack, "tradejini-demo"))

    result = run_cli("refresh", "t-fn-wrong", "t-fn-good", "--json", env=function_env(local_env, stack))

    assert result.returncode == 1, result.stdout + result.stderr
    states = {line["account"]: line["state"] for line in json.loads(result.stdout)["accounts"]}
    assert states == {"t-fn-wrong": "needs-attention", "t-fn-good": "fresh"}
    assert "warning" not in result.stderr  # a not-fresh run is no failure of the function
