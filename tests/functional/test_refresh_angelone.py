"""The Angel One refresh end to end, over loopback HTTP: simulator + moto's Secrets Manager and DynamoDB."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from infra.local.simulators.angelone import AngelOneSimulator

from broker_tokens.errors import ErrorKind
from broker_tokens.models import AccountState, parse_iso
from tests.support.accounts import angel_credentials, call_with_record
from tests.support.harness import Harness
from tests.support.logsink import SECRETS, SINK


def angel_account(
    sim: AngelOneSimulator,
    harness: Harness,
    account: str = "angel-1",
    *,
    client_code: str = "A100001",
    pin: str = "2468",
    api_key: str = "angel-key-1",
) -> dict[str, Any]:
    credentials = angel_credentials(sim, client_code, pin=pin, api_key=api_key, name="Test Trader")
    harness.add_account(account, credentials)
    return credentials


def test_refresh_writes_a_valid_token_record(angel: AngelOneSimulator, harness: Harness) -> None:
    angel_account(angel, harness)
    report = harness.refresher().run()
    [outcome] = report.outcomes
    assert outcome.state is AccountState.FRESH and outcome.action == "logged-in" and outcome.logins == 1
    record = harness.token("angel-1")
    assert record is not None
    assert record["schema"] == 1 and record["account"] == "angel-1" and record["broker"] == "angelone"
    assert record["authorization"] == f"Bearer {record['access_token']}"
    assert record["refresh_token"] and record["feed_token"] and record["source"] == "schedule"
    lifetime = parse_iso(record["expires_at"]) - parse_iso(record["issued_at"])
    assert timedelta(hours=23, minutes=55) <= lifetime <= timedelta(hours=28)
    # The contract: authorization + headers (+ Accept, Content-Type) make a valid call with nothing else.
    profile = call_with_record(
        f"{angel.url}/rest/secure/angelbroking/user/v1/getProfile", record, content_type="application/json"
    ).json()
    assert profile["status"] is True and profile["data"]["clientcode"] == "A100001"


def test_second_run_logs_in_zero_times(angel: AngelOneSimulator, harness: Harness) -> None:
    angel_account(angel, harness)
    harness.refresher().run()
    version = harness.token_version("angel-1")
    second = harness.refresher().run()
    assert angel.logins("A100001") == 1
    assert [o.action for o in second.outcomes] == ["skipped"]
    assert second.ok and harness.token_version("angel-1") == version


def test_failed_login_keeps_the_previous_token(angel: AngelOneSimulator, harness: Harness) -> None:
    credentials = angel_account(angel, harness)
    harness.refresher().run()
    good = harness.token("angel-1")
    version = harness.token_version("angel-1")
    harness.add_account("angel-1", {**credentials, "pin": "1357"})  # the user typed a wrong MPIN
    report = harness.refresher().run(force=True)
    [outcome] = report.outcomes
    assert outcome.state is AccountState.NEEDS_ATTENTION and outcome.error_kind is ErrorKind.PERMANENT
    assert harness.token_version("angel-1") == version
    assert harness.token("angel-1") == good


def test_missing_pin_fails_that_account_only(angel: AngelOneSimulator, harness: Harness) -> None:
    angel_account(angel, harness, "angel-good")
    broken = angel_account(angel, harness, "angel-broken", client_code="A100002", api_key="angel-key-2")
    del broken["pin"]
    harness.add_account("angel-broken", broken)
    mark = len(SINK.lines)
    report = harness.refresher().run()
    by_account = {o.account: o for o in report.outcomes}
    assert by_account["angel-good"].state is AccountState.FRESH
    failed = by_account["angel-broken"]
    assert failed.state is AccountState.FAILED and failed.error_kind is ErrorKind.CONFIGURATION
    assert "'pin'" in (failed.error or "") and "'angel-broken'" in (failed.error or "")
    assert angel.logins("A100002") == 0
    logged = "\n".join(SINK.since(mark))
    assert "angel-broken" in logged  # the failure was logged...
    assert not [secret for secret in SECRETS if secret in logged]  # ...with no value of any secret


def test_5xx_on_first_login_still_ends_fresh(angel: AngelOneSimulator, harness: Harness) -> None:
    angel_account(angel, harness)
    angel.faults.fail_next(1, status=503, endpoint="login")
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.FRESH
    assert angel.logins("A100001") == 2


def test_wrong_pin_fails_after_exactly_one_attempt(angel: AngelOneSimulator, harness: Harness) -> None:
    credentials = angel_account(angel, harness)
    harness.refresher().run()
    previous = harness.token("angel-1")
    harness.add_account("angel-1", {**credentials, "pin": "8642"})
    refresher = harness.refresher()
    [outcome] = refresher.run(force=True).outcomes
    assert outcome.state is AccountState.NEEDS_ATTENTION
    assert angel.logins("A100001") == 2  # the first good run, then exactly one rejected attempt
    assert harness.token("angel-1") == previous
    # Later runs do not try again with the same credentials version: no lockout.
    for _ in range(2):
        [again] = refresher.run(force=True).outcomes
        assert again.state is AccountState.NEEDS_ATTENTION and again.logins == 0
    assert angel.logins("A100001") == 2


def test_totp_rejected_once_is_retried_in_the_next_window(angel: AngelOneSimulator, harness: Harness) -> None:
    angel_account(angel, harness)
    angel.faults.reject_totp_next(1)
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.FRESH and outcome.logins == 2


def test_hung_login_is_cut_by_the_timeout_and_retried(angel: AngelOneSimulator, harness: Harness) -> None:
    angel_account(angel, harness)
    angel.faults.hang_next(1, seconds=3.0, endpoint="login")
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.FRESH and outcome.logins == 2


def test_rate_limit_page_is_transient(angel: AngelOneSimulator, harness: Harness) -> None:
    angel_account(angel, harness)
    angel.faults.rate_limit_next(1, endpoint="login")
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.FRESH and outcome.logins == 2


def test_unknown_account_requested_by_event_is_reported(harness: Harness) -> None:
    [outcome] = harness.refresher().run(["nobody"]).outcomes
    assert outcome.state is AccountState.FAILED and "has no credentials secret" in (outcome.error or "")


def test_describe_reads_no_credentials_value(angel: AngelOneSimulator, harness: Harness) -> None:
    """The token API lists accounts with this, and its IAM role may not read credentials."""
    angel_account(angel, harness)
    refresher = harness.refresher()
    refresher.run()
    read: list[str] = []
    harness.secrets_client.meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue", lambda params, **_: read.append(params["SecretId"])
    )
    outcome = refresher.describe("angel-1")
    assert outcome.state is AccountState.FRESH and outcome.broker == "angelone" and outcome.expires_at
    assert read == ["broker-tokens/angel-1/token"]
