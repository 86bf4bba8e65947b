"""The AutoShares (ETNA Trader) refresh end to end, over loopback HTTP: simulator + moto.

Two-factor accounts pause for the code ETNA e-mails; the simulator's outbox stands in for the inbox.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from infra.local.simulators.autoshares import USER_INFO_PATH, AutoSharesSimulator

from broker_tokens.clock import WarpClock
from broker_tokens.errors import ErrorKind
from broker_tokens.models import AccountState, parse_iso
from tests.support.accounts import call_with_record, etna_credentials
from tests.support.harness import Harness
from tests.support.logsink import SINK, leaks, remember_secret

APP_KEY = "etna-app-key"


def etna_account(
    sim: AutoSharesSimulator,
    harness: Harness,
    account: str = "etna-demo",
    *,
    username: str = "demo.trader",
    password: str = "Pass-word-1",
    broker: str = "autoshares",
    two_factor: bool = False,
    pin: str | None = None,
) -> dict[str, Any]:
    credentials = etna_credentials(
        sim, username, password, app_key=APP_KEY, two_factor=two_factor, pin=pin, broker=broker
    )
    harness.add_account(account, credentials)
    return credentials


def two_factor_account(sim: AutoSharesSimulator, harness: Harness) -> dict[str, Any]:
    return etna_account(sim, harness, "etna-2fa-demo", username="demo.2fa", two_factor=True)


def call_with(record: dict[str, Any], sim: AutoSharesSimulator) -> dict[str, Any]:
    """A user-info call made from the token record alone, as an app makes it."""
    answer = call_with_record(sim.url + USER_INFO_PATH, record)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_refresh_writes_a_valid_token_record(autoshares: AutoSharesSimulator, harness: Harness) -> None:
    etna_account(autoshares, harness)
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.FRESH and outcome.action == "logged-in" and outcome.logins == 1
    record = harness.token("etna-demo")
    assert record is not None
    assert record["schema"] == 1 and record["broker"] == "autoshares" and record["source"] == "schedule"
    assert record["authorization"] == f"Bearer {record['access_token']}"
    assert record["headers"] == {"Et-App-Key": APP_KEY}
    assert parse_iso(record["expires_at"]) - parse_iso(record["issued_at"]) == timedelta(hours=24)
    assert call_with(record, autoshares)["Login"] == "demo.trader"


def test_second_run_logs_in_zero_times(autoshares: AutoSharesSimulator, harness: Harness) -> None:
    etna_account(autoshares, harness)
    harness.refresher().run()
    second = harness.refresher().run()
    assert [o.action for o in second.outcomes] == ["skipped"] and second.ok
    assert autoshares.logins("demo.trader") == 1


def test_the_etna_alias_is_stored_under_the_canonical_name(autoshares: AutoSharesSimulator, harness: Harness) -> None:
    etna_account(autoshares, harness, broker="etna")
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.FRESH and outcome.broker == "autoshares"


def test_two_factor_waits_for_the_code_then_completes(autoshares: AutoSharesSimulator, harness: Harness) -> None:
    two_factor_account(autoshares, harness)
    mark = len(SINK.lines)
    refresher = harness.refresher()
    [started] = refresher.run().outcomes
    assert started.state is AccountState.AWAITING_VERIFICATION and started.action == "started"
    assert "broker-tokens verify etna-2fa-demo CODE" in (started.error or "")
    assert harness.token("etna-2fa-demo") is None
    pending = refresher.state.get("etna-2fa-demo").pending
    assert pending is not None and pending.ticket and pending.expires_at is not None
    [code] = autoshares.outbox("demo.2fa")
    remember_secret(code, pending.ticket)

    # While the code is pending, a run neither logs in nor makes ETNA send another e-mail.
    [waiting] = harness.refresher().run().outcomes
    assert waiting.state is AccountState.AWAITING_VERIFICATION and waiting.logins == 0
    assert autoshares.logins("demo.2fa") == 1 and autoshares.outbox("demo.2fa") == [code]

    done = harness.refresher().complete("etna-2fa-demo", code)
    assert done.state is AccountState.FRESH and done.logins == 1
    record = harness.token("etna-2fa-demo")
    assert record is not None and record["source"] == "callback"
    assert call_with(record, autoshares)["Login"] == "demo.2fa"
    assert harness.refresher().state.get("etna-2fa-demo").pending is None

    [after] = harness.refresher().run().outcomes
    assert after.action == "skipped" and autoshares.outbox("demo.2fa") == [code]
    assert not leaks(SINK.since(mark))


def test_a_wrong_code_keeps_the_login_open_until_etna_says_the_ticket_is_gone(
    autoshares: AutoSharesSimulator, harness: Harness
) -> None:
    two_factor_account(autoshares, harness)
    harness.refresher().run()
    [code] = autoshares.outbox("demo.2fa")
    wrong = "000000" if code != "000000" else "111111"
    outcome = harness.refresher().complete("etna-2fa-demo", wrong)
    # A person's typo never trips the breaker, and the login stays open for another try.
    assert outcome.state is AccountState.AWAITING_VERIFICATION and outcome.error_kind is ErrorKind.PERMANENT
    assert "verification code" in (outcome.error or "") and wrong not in (outcome.error or "")
    assert not harness.refresher().state.get("etna-2fa-demo").needs_attention
    # This simulator spends the ticket on a wrong code (ETNA does not document it): the right code now
    # meets "Corrupted ticket", which closes the step, and the next run starts a new login with a new code.
    closed = harness.refresher().complete("etna-2fa-demo", code)
    assert closed.state is AccountState.FAILED and "new code" in (closed.error or "")
    assert harness.token("etna-2fa-demo") is None
    assert not harness.refresher().state.get("etna-2fa-demo").needs_attention
    [again] = harness.refresher().run().outcomes
    assert again.state is AccountState.AWAITING_VERIFICATION and len(autoshares.outbox("demo.2fa")) == 2


def test_where_a_wrong_code_leaves_the_ticket_the_right_one_still_finishes(
    autoshares: AutoSharesSimulator, harness: Harness
) -> None:
    autoshares.wrong_answer_spends_ticket = False
    two_factor_account(autoshares, harness)
    harness.refresher().run()
    [code] = autoshares.outbox("demo.2fa")
    wrong = "000000" if code != "000000" else "111111"
    assert harness.refresher().complete("etna-2fa-demo", wrong).state is AccountState.AWAITING_VERIFICATION
    assert harness.refresher().complete("etna-2fa-demo", code).state is AccountState.FRESH


def test_complete_with_nothing_pending_sends_nothing(autoshares: AutoSharesSimulator, harness: Harness) -> None:
    two_factor_account(autoshares, harness)
    outcome = harness.refresher().complete("etna-2fa-demo", "123456")
    assert outcome.state is AccountState.FAILED and outcome.error_kind is ErrorKind.TRANSIENT
    assert autoshares.logins("demo.2fa") == 0


def test_a_lapsed_code_is_replaced_by_the_next_run(
    autoshares: AutoSharesSimulator, harness: Harness, clock: WarpClock
) -> None:
    two_factor_account(autoshares, harness)
    harness.refresher().run()
    clock.advance(11 * 60)
    [again] = harness.refresher().run().outcomes
    assert again.state is AccountState.AWAITING_VERIFICATION and again.logins == 1
    codes = autoshares.outbox("demo.2fa")
    assert len(codes) == 2
    assert harness.refresher().complete("etna-2fa-demo", codes[-1]).state is AccountState.FRESH


def test_the_pin_step_is_answered_at_once(autoshares: AutoSharesSimulator, harness: Harness) -> None:
    etna_account(autoshares, harness, pin="4455")
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.FRESH and outcome.logins == 1
    assert autoshares.logins("demo.trader") == 2  # the password call, then the PinCode call
    record = harness.token("etna-demo")
    assert record is not None and call_with(record, autoshares)["Login"] == "demo.trader"


def test_a_pin_step_without_pin_needs_attention_naming_pin(autoshares: AutoSharesSimulator, harness: Harness) -> None:
    credentials = etna_account(autoshares, harness, pin="4455")
    harness.add_account("etna-demo", {k: v for k, v in credentials.items() if k != "pin"})
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.NEEDS_ATTENTION and "'pin'" in (outcome.error or "")
    assert autoshares.logins("demo.trader") == 1


def test_wrong_password_fails_after_exactly_one_attempt(autoshares: AutoSharesSimulator, harness: Harness) -> None:
    credentials = etna_account(autoshares, harness)
    harness.add_account("etna-demo", {**credentials, "password": "Not-the-password"})
    refresher = harness.refresher()
    [outcome] = refresher.run().outcomes
    assert outcome.state is AccountState.NEEDS_ATTENTION and outcome.error_kind is ErrorKind.PERMANENT
    [again] = refresher.run(force=True).outcomes
    assert again.logins == 0 and autoshares.logins("demo.trader") == 1


def test_an_expired_password_says_what_to_do(autoshares: AutoSharesSimulator, harness: Harness) -> None:
    etna_account(autoshares, harness)
    autoshares.expire_password("demo.trader")
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.NEEDS_ATTENTION and "password has expired" in (outcome.error or "")


def test_a_wrong_app_key_needs_attention(autoshares: AutoSharesSimulator, harness: Harness) -> None:
    credentials = etna_account(autoshares, harness)
    harness.add_account("etna-demo", {**credentials, "app_key": "not-the-app-key"})
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.NEEDS_ATTENTION and "app_key" in (outcome.error or "")


def test_transient_answers_are_retried(autoshares: AutoSharesSimulator, harness: Harness) -> None:
    etna_account(autoshares, harness)
    autoshares.faults.fail_next(1, status=502, endpoint="token")
    autoshares.faults.reject_validation_next(1)
    [outcome] = harness.refresher().run().outcomes
    # The 502 costs a login; the refused validation is retried on the same session (finding 3).
    assert outcome.state is AccountState.FRESH and outcome.logins == 2
