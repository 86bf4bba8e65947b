"""Fault-matrix rows for the broker's callback to the person pages: a forged callback, another user's session.

Each row starts from an account with a good token that a forced login has put back to awaiting a person
(BlinkX: every login is a person's). The fault hits the callback; the row records the end state, the
exchanges that reached the broker, and whether the previous token was kept. Then the real person
finishes through the alert's link, which must still work.
"""

from __future__ import annotations

import secrets
from typing import Any

from infra.local.simulators.kite import BlinkXSimulator

from broker_tokens.clock import WarpClock
from broker_tokens.models import AccountState
from tests.functional.conftest import blinkx  # noqa: F401 - a fixture
from tests.functional.test_person_pages import blinkx_person, broker_login, refused, start, stranger
from tests.support.fault_matrix import MATRIX, Cell
from tests.support.harness import Harness
from tests.support.person import PersonPages, person_fixture  # noqa: F401 - `person` is a fixture

ACCOUNT = "blinkx-1"


def awaiting_with_a_good_token(
    sim: BlinkXSimulator, harness: Harness, person: PersonPages
) -> tuple[dict[str, str], dict[str, Any]]:
    """The account logged in once through its link, then a forced login waiting for the person again."""
    me = blinkx_person(sim, harness, person, ACCOUNT)
    harness.refresher().run()
    assert 'id="page-done"' in person.get(broker_login(sim, start(person, person.link(ACCOUNT)), me)).text
    previous = harness.token(ACCOUNT) or {}
    assert harness.refresher().refresh(ACCOUNT, force=True).state is AccountState.AWAITING_LOGIN
    return me, previous


def record(fault: str, harness: Harness, sim: BlinkXSimulator, previous: dict[str, Any], exchanges: int) -> None:
    state = harness.refresher().state.get(ACCOUNT).state
    kept = "kept" if harness.token(ACCOUNT) == previous else "replaced"
    MATRIX.append(Cell("blinkx (person pages)", fault, state.value if state else "none", exchanges, kept))


def test_a_forged_callback_changes_nothing_and_the_person_still_finishes(
    blinkx: BlinkXSimulator,  # noqa: F811 - the fixture
    harness: Harness,
    person: PersonPages,
    clock: WarpClock,
) -> None:
    me, previous = awaiting_with_a_good_token(blinkx, harness, person)
    before, exchanges = harness.refresher().state.get(ACCOUNT), blinkx.count("session_token")
    forged = person.get(
        f"/callback/{ACCOUNT}?request_token=abcdefabcdef1234&action=login&status=success&n={secrets.token_urlsafe(32)}"
    )
    assert refused(forged)
    assert harness.refresher().state.get(ACCOUNT) == before and harness.token(ACCOUNT) == previous
    record("forged callback", harness, blinkx, previous, blinkx.count("session_token") - exchanges)
    assert blinkx.count("session_token") == exchanges  # refused before the broker
    done = person.get(broker_login(blinkx, start(person, person.link(ACCOUNT)), me))
    assert 'id="page-done"' in done.text and harness.token(ACCOUNT) != previous


def test_a_callback_carrying_another_users_session_is_refused(
    blinkx: BlinkXSimulator,  # noqa: F811 - the fixture
    harness: Harness,
    person: PersonPages,
    clock: WarpClock,
) -> None:
    me, previous = awaiting_with_a_good_token(blinkx, harness, person)
    them = stranger(blinkx)
    exchanges = blinkx.count("session_token")
    wrong = person.get(broker_login(blinkx, start(person, person.link(ACCOUNT)), them))
    assert wrong.status_code == 409 and "another user" in wrong.text
    status = harness.refresher().state.get(ACCOUNT)
    assert status.state is AccountState.AWAITING_LOGIN and not status.needs_attention
    assert harness.token(ACCOUNT) == previous  # the stranger's session is never stored
    record("callback with another user's session", harness, blinkx, previous, blinkx.count("session_token") - exchanges)
    done = person.get(broker_login(blinkx, start(person, person.link(ACCOUNT)), me))
    assert 'id="page-done"' in done.text
