"""`broker-tokens history`, `alerts test` and `alerts telegram set`, in-process against moto and the
Telegram simulator."""

from __future__ import annotations

import io
import json
import logging
import re
import sys

import pytest
from infra.local.alert_tap import AlertTap
from infra.local.moto_server import MotoServer
from infra.local.simulators.angelone import AngelOneSimulator
from infra.local.simulators.telegram import TelegramSimulator
from infra.local.template import LocalResources

from broker_tokens.cli.main import main
from broker_tokens.config import telegram_secret_name
from broker_tokens.logs import logger
from tests.support.accounts import angel_credentials
from tests.support.harness import PREFIX, Harness
from tests.support.logsink import remember_secret
from tests.support.simulators import TELEGRAM_CHAT_ID

CHAT_ID = TELEGRAM_CHAT_ID


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, cloud: LocalResources, telegram: TelegramSimulator) -> None:
    for key, value in {
        "SECRET_PREFIX": PREFIX,
        "STATE_TABLE_NAME": cloud.table_name,
        "ALERT_TOPIC_ARN": cloud.topic_arn,
        "TELEGRAM_API_URL": telegram.url,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TELEGRAM_CHAT_ID", raising=False)


def run(capsys: pytest.CaptureFixture[str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    # main() points the core's log handler at the stderr of the moment, which an earlier test's capture
    # may have closed since: start from (and go back to) the real one, without flushing the old.
    handler = logger.registered_handler
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sys.__stderr__
        code = main(list(args))
    finally:
        sys.stdin = old
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sys.__stderr__
    out, err = capsys.readouterr()
    return code, out, err


def test_history_shows_each_run_in_ist(harness: Harness, cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    harness.add_account("desk-bad", {"broker": "angelone", "api_key": "k"})
    refresher = harness.refresher(run_times=())
    refresher.run()
    refresher.run()
    code, out, _ = run(capsys, "history")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["when", "account", "state", "action", "logins", "source", "note"]
    assert len(lines) == 3 and all("IST" in line and "desk-bad" in line and "failed" in line for line in lines[1:])
    assert "configuration:" in lines[1]
    code, out, _ = run(capsys, "history", "desk-bad", "--days", "1", "--json")
    entries = json.loads(out)["entries"]
    assert (
        code == 0
        and [(e["account"], e["state"], e["source"]) for e in entries] == [("desk-bad", "failed", "schedule")] * 2
    )
    with pytest.raises(SystemExit) as usage:
        run(capsys, "history", "--days", "0")
    assert usage.value.code == 2 and "a whole number of days" in capsys.readouterr().err


def test_telegram_set_stores_the_token_from_stdin_without_echoing_it(
    moto: MotoServer, cli_env: None, telegram: TelegramSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    token = telegram.add_bot("desk_bot")
    remember_secret(token)
    code, out, err = run(capsys, "alerts", "telegram", "set", stdin=token + "\n")
    assert code == 0, err
    assert token not in out + err
    stored = moto.client("secretsmanager").get_secret_value(SecretId=telegram_secret_name(PREFIX))
    assert json.loads(stored["SecretString"]) == {"bot_token": token}
    code, out, err = run(capsys, "alerts", "telegram", "set", stdin="not-a-token\n")
    assert code == 2 and "not a Telegram bot token" in err and "not-a-token" not in err


def test_alerts_test_uses_every_channel_and_says_what_it_did(
    moto: MotoServer,
    cloud: LocalResources,
    cli_env: None,
    telegram: TelegramSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tap = AlertTap.subscribe(moto.session(), cloud.topic_arn)
    token = telegram.add_bot("desk_bot")
    remember_secret(token)
    assert run(capsys, "alerts", "telegram", "set", stdin=token + "\n")[0] == 0
    code, out, err = run(capsys, "alerts", "test", "--chat-id", str(CHAT_ID))
    assert code == 0, err
    assert f"SNS topic {cloud.topic_arn}: published" in out
    assert f"Telegram chat {CHAT_ID}: sent (message 1)" in out
    assert [m.plain.splitlines()[0].startswith("broker-tokens test message") for m in telegram.inbox] == [True]
    assert len(tap.drain()) == 1
    # A dead token: Telegram's refusal is named, the topic still gets the message, exit 1.
    telegram.revoke_bot(token)
    code, out, err = run(capsys, "alerts", "test", "--chat-id", str(CHAT_ID))
    assert code == 1
    assert "published" in out
    assert f"Telegram chat {CHAT_ID}: not sent: Telegram refused the message (401 Unauthorized)" in err
    assert token not in out + err
    assert len(tap.drain()) == 1


def test_alerts_test_without_any_channel_is_an_error(
    monkeypatch: pytest.MonkeyPatch, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ALERT_TOPIC_ARN")
    code, _, err = run(capsys, "alerts", "test")
    assert code == 1 and "no alert channel configured" in err


def test_status_shows_the_last_success(
    harness: Harness, angel: AngelOneSimulator, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.add_account("angel-main", angel_credentials(angel, "A100001", pin="2468", api_key="angel-key-1"))
    harness.add_account("desk-bad", {"broker": "angelone", "api_key": "k"})
    harness.refresher(run_times=()).run()
    code, out, _ = run(capsys, "status")
    assert code == 1
    header, angel_row, bad_row = out.splitlines()[:3]
    assert "last success" in header
    assert re.search(r"angel-main .* IST .* IST +\d{4}-\d\d-\d\d \d\d:\d\d IST", angel_row)
    code, out, _ = run(capsys, "status", "--json")
    lines = {line["account"]: line for line in json.loads(out)["accounts"]}
    assert lines["angel-main"]["last_success_at"].endswith("Z")
    assert "last_success_at" not in lines["desk-bad"]
    assert bad_row.startswith("desk-bad")
