"""A credentials secret of every bad kind fails its own account with a clear error; the others refresh."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from infra.local.simulators.angelone import AngelOneSimulator

from broker_tokens.errors import ErrorKind
from broker_tokens.models import AccountState
from tests.functional.test_refresh_angelone import angel_account
from tests.support.harness import Harness

GOOD_SHAPE = {
    "broker": "angelone",
    "api_key": "k-bad",
    "client_code": "B1",
    "pin": "2580",
    "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DP",
}

BAD_SECRETS: dict[str, tuple[str, str]] = {
    # account: (secret text, words the error must contain)
    "bad-not-json": ("{broker: angelone", "not valid JSON"),
    "bad-blank": ("   ", "is empty"),
    "bad-list": (json.dumps([GOOD_SHAPE]), "JSON object"),
    "bad-missing-keys": (json.dumps({"broker": "angelone", "api_key": "k"}), "'client_code' is missing"),
    "bad-wrong-type": (json.dumps({**GOOD_SHAPE, "pin": 2580}), "'pin' must be a string"),
    "bad-unknown-broker": (json.dumps({**GOOD_SHAPE, "broker": "moneybags"}), "unknown broker"),
    "bad-huge-value": (json.dumps({**GOOD_SHAPE, "api_key": "k" * 60_000}), "'api_key' is longer than"),
    "bad-totp": (json.dumps({**GOOD_SHAPE, "totp_secret": "0189-not-base32!"}), "'totp_secret' is not a base32"),
    "bad-unknown-key": (json.dumps({**GOOD_SHAPE, "passwrd": "x"}), "unknown key(s) 'passwrd'"),
}


@pytest.fixture
def seeded(angel: AngelOneSimulator, harness: Harness) -> Iterator[Harness]:
    angel_account(angel, harness, "good-one")
    for account, (text, _) in BAD_SECRETS.items():
        harness.add_account(account, text)
    yield harness


def test_every_bad_secret_fails_alone(seeded: Harness, angel: AngelOneSimulator) -> None:
    report = seeded.refresher().run()
    by_account = {outcome.account: outcome for outcome in report.outcomes}
    assert by_account["good-one"].state is AccountState.FRESH
    for account, (_, words) in BAD_SECRETS.items():
        outcome = by_account[account]
        assert outcome.state is AccountState.FAILED, account
        assert outcome.error_kind is ErrorKind.CONFIGURATION, account
        assert f"'{account}'" in (outcome.error or ""), account
        assert words in (outcome.error or ""), (account, outcome.error)
        assert len(outcome.error or "") < 300, "an error is one readable line, not the value echoed back"
    assert not report.ok
    assert angel.logins("B1") == 0
