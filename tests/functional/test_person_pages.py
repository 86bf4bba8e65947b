"""The person pages, attacker first: forged, replayed, expired, other-account and missing links, another
user's session, a forged request token; then the person's own path from the alert's link to the done page.

Each refusal must get a clear page and change nothing (the state item, the token, the broker's counters);
the real person must still be able to finish afterwards. No page may carry a fixture secret.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests
from infra.local.person import PageElements, submit_login_form
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.kite import BlinkXSimulator, ZerodhaSimulator

from broker_tokens.clock import WarpClock
from broker_tokens.models import MAX_FAILED_COMPLETIONS, AccountState
from broker_tokens.person.pages import CONTENT_SECURITY_POLICY
from tests.support.accounts import etna_credentials
from tests.support.harness import Harness
from tests.support.logsink import remember_secret
from tests.support.person import PersonPages, nonce_of, person_fixture  # noqa: F401 - `person` is a fixture

APP_KEY = "bx-app-key"


def blinkx_person(
    sim: BlinkXSimulator, harness: Harness, person: PersonPages, account: str = "blinkx-1", *, user_id: str = "BX1234"
) -> dict[str, str]:
    """A BlinkX app redirecting to the person pages, its user, and the account's credentials secret."""
    api_key = f"{account}-key"
    login = {"user_id": user_id, "password": secrets.token_urlsafe(12), "totp_secret": pyotp.random_base32()}
    remember_secret(login["password"], login["totp_secret"])
    api_secret = secrets.token_urlsafe(24)
    sim.add_app(api_key, api_secret, f"{person.url}/callback/{account}")
    sim.add_user(user_id, login["password"], login["totp_secret"])
    credentials = {"broker": "blinkx", "api_key": api_key, "api_secret": api_secret, "user_id": user_id}
    harness.add_account(account, {**credentials, "base_url": sim.url, "login_url": sim.login_url})
    return {**login, "api_key": api_key}


def stranger(sim: BlinkXSimulator) -> dict[str, str]:
    """Someone else with a BlinkX login of their own."""
    login = {"user_id": "BX9999", "password": secrets.token_urlsafe(12), "totp_secret": pyotp.random_base32()}
    remember_secret(login["password"], login["totp_secret"])
    sim.add_user(login["user_id"], login["password"], login["totp_secret"])
    return login


def broker_login(sim: BlinkXSimulator | ZerodhaSimulator, login_url: str, who: dict[str, str]) -> str:
    """Log in on the broker's page reached from ``login_url``; where the broker redirects the browser."""
    with requests.Session() as browser:
        location = submit_login_form(browser, sim, login_url, who)
    remember_secret(parse_qs(urlsplit(location).query).get("request_token", [""])[0])
    return location


def start(person: PersonPages, link: str) -> str:
    """Open the link; the broker login URL behind its "Log in" button."""
    page = person.get(link)
    assert page.status_code == 200 and 'id="page-start"' in page.text, page.text[:300]
    return PageElements(page.text).by_id("login")["href"]


def awaiting(harness: Harness, account: str) -> Any:
    """The state item, to compare before and after a refusal."""
    return harness.refresher().state.get(account)


def refused(page: requests.Response) -> bool:
    return page.status_code == 403 and 'id="page-invalid"' in page.text and "Nothing was changed" in page.text


# -- attacker first ------------------------------------------------------------------------------------


def test_a_strangers_login_without_the_nonce_is_refused_and_changes_nothing(
    blinkx: BlinkXSimulator, harness: Harness, person: PersonPages, clock: WarpClock
) -> None:
    """Login CSRF: a stranger logs in with the app's public api_key; the broker redirects to our callback."""
    me = blinkx_person(blinkx, harness, person)
    them = stranger(blinkx)
    harness.refresher().run()
    before = awaiting(harness, "blinkx-1")
    raw_login = f"{blinkx.login_url}?v=3&api_key={me['api_key']}"  # no redirect_params: the stranger has no link
    forged = person.get(broker_login(blinkx, raw_login, them))
    assert refused(forged)
    assert blinkx.exchanges("BX9999") == 0 and harness.token("blinkx-1") is None
    assert awaiting(harness, "blinkx-1") == before  # state unchanged, the login still open
    # The real person still finishes, through the alert's link.
    done = person.get(broker_login(blinkx, start(person, person.link("blinkx-1")), me))
    assert done.status_code == 200 and 'id="page-done"' in done.text
    assert (harness.token("blinkx-1") or {}).get("source") == "callback"


def test_a_forged_request_token_or_nonce_is_refused_before_the_broker(
    blinkx: BlinkXSimulator, harness: Harness, person: PersonPages, clock: WarpClock
) -> None:
    me = blinkx_person(blinkx, harness, person)
    harness.refresher().run()
    before = awaiting(harness, "blinkx-1")
    made_up = secrets.token_urlsafe(32)
    for query in (
        f"request_token=abcdefabcdef1234&action=login&status=success&n={made_up}",
        "request_token=abcdefabcdef1234&action=login&status=success",
        "request_token=abcdefabcdef1234&n=",
        f"request_token=abcdefabcdef1234&n={made_up}&n={made_up}",
        "n=" + "A" * 500,
    ):
        assert refused(person.get(f"/callback/blinkx-1?{query}")), query
    assert blinkx.count("session_token") == 0 and awaiting(harness, "blinkx-1") == before
    done = person.get(broker_login(blinkx, start(person, person.link("blinkx-1")), me))
    assert 'id="page-done"' in done.text


def test_a_reused_link_and_a_replayed_callback_change_nothing(
    blinkx: BlinkXSimulator, harness: Harness, person: PersonPages, clock: WarpClock
) -> None:
    me = blinkx_person(blinkx, harness, person)
    harness.refresher().run()
    link = person.link("blinkx-1")
    redirect = broker_login(blinkx, start(person, link), me)
    assert 'id="page-done"' in person.get(redirect).text
    token, state = harness.token("blinkx-1"), awaiting(harness, "blinkx-1")
    assert refused(person.get(link))  # single use: the login it was for is over
    assert refused(person.get(redirect))  # the same redirect, replayed
    assert harness.token("blinkx-1") == token and awaiting(harness, "blinkx-1") == state
    assert blinkx.count("session_token") == 1


def test_a_link_works_for_its_own_account_only(
    blinkx: BlinkXSimulator, harness: Harness, person: PersonPages, clock: WarpClock
) -> None:
    blinkx_person(blinkx, harness, person, "blinkx-1")
    other = blinkx_person(blinkx, harness, person, "blinkx-2", user_id="BX2222")
    harness.refresher().run()
    mine, theirs = person.link("blinkx-1"), person.link("blinkx-2")
    before = awaiting(harness, "blinkx-2")
    assert refused(person.get(f"/login/blinkx-2?n={nonce_of(mine)}"))
    # blinkx-2's person logs in, but the redirect is made to carry blinkx-1's nonce instead of theirs.
    redirect = broker_login(blinkx, start(person, theirs), other).replace(nonce_of(theirs), nonce_of(mine))
    assert refused(person.get(redirect))
    assert awaiting(harness, "blinkx-2") == before and harness.token("blinkx-2") is None
    assert blinkx.count("session_token") == 0


def test_an_expired_link_is_refused(
    blinkx: BlinkXSimulator, harness: Harness, person: PersonPages, clock: WarpClock
) -> None:
    blinkx_person(blinkx, harness, person)
    harness.refresher().run()
    link = person.link("blinkx-1")
    before = awaiting(harness, "blinkx-1")
    clock.advance(2 * 3600 + 1)  # the step (and its links) lives two hours
    assert refused(person.get(link))
    assert awaiting(harness, "blinkx-1") == before
    [again] = harness.refresher().run().outcomes  # the next run starts a new login, with a new link
    assert again.state is AccountState.AWAITING_LOGIN and person.link("blinkx-1") != link


def test_missing_links_and_other_paths(blinkx: BlinkXSimulator, harness: Harness, person: PersonPages) -> None:
    blinkx_person(blinkx, harness, person)
    harness.refresher().run()
    before = awaiting(harness, "blinkx-1")
    for path in ("/login/blinkx-1", "/login/blinkx-1?n=", "/code/blinkx-1", "/login/nobody?n=" + "A" * 43):
        assert refused(person.get(path)), path
    assert refused(person.post("/code/blinkx-1", {"code": "123456"}))
    for path in ("/", "/accounts", "/accounts/blinkx-1/token", "/health", "/login/Not_An_Id?n=x", "/login/a/b"):
        missing = person.get(path)
        assert missing.status_code == 404 and 'id="page-missing"' in missing.text, path
    wrong_method = person.post("/login/blinkx-1", {})
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "GET"
    assert awaiting(harness, "blinkx-1") == before


def test_another_users_session_is_refused_and_the_login_stays_open(
    blinkx: BlinkXSimulator, harness: Harness, person: PersonPages, clock: WarpClock
) -> None:
    me = blinkx_person(blinkx, harness, person)
    them = stranger(blinkx)
    harness.refresher().run()
    login_url = start(person, person.link("blinkx-1"))
    wrong = person.get(broker_login(blinkx, login_url, them))  # right link, wrong user at the broker
    assert wrong.status_code == 409 and 'id="page-failed"' in wrong.text and "another user" in wrong.text
    assert "BX9999" not in wrong.text and harness.token("blinkx-1") is None
    status = awaiting(harness, "blinkx-1")
    assert status.state is AccountState.AWAITING_LOGIN and not status.needs_attention
    retry = PageElements(wrong.text).by_id("login")["href"]  # "Try again": the same link, still open
    done = person.get(broker_login(blinkx, start(person, retry), me))
    assert 'id="page-done"' in done.text


def test_failed_completions_are_throttled_per_login(
    blinkx: BlinkXSimulator, harness: Harness, person: PersonPages
) -> None:
    blinkx_person(blinkx, harness, person)
    harness.refresher().run()
    nonce = nonce_of(person.link("blinkx-1"))
    for attempt in range(MAX_FAILED_COMPLETIONS):
        forged = f"request_token=deadbeef{attempt:08d}&action=login&status=success&n={nonce}"
        page = person.get(f"/callback/blinkx-1?{forged}")
        assert page.status_code == 409 and 'id="page-failed"' in page.text
    assert refused(person.get(f"/callback/blinkx-1?request_token=deadbeef99999999&status=success&n={nonce}"))
    assert blinkx.count("session_token") == MAX_FAILED_COMPLETIONS
    status = awaiting(harness, "blinkx-1")
    assert status.state is AccountState.FAILED and not status.needs_attention  # the breaker never trips
    [again] = harness.refresher().run().outcomes
    assert again.state is AccountState.AWAITING_LOGIN  # a new login, a new link


# -- the person's path ---------------------------------------------------------------------------------


def test_the_alerts_link_logs_the_person_in(
    blinkx: BlinkXSimulator, harness: Harness, person: PersonPages, clock: WarpClock
) -> None:
    me = blinkx_person(blinkx, harness, person)
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.AWAITING_LOGIN
    [alert] = [a for a in person.inbox.alerts() if "blinkx-1" in a.subject]
    assert alert.subject == "broker-tokens: blinkx-1 waits for you" and f"Log in: {person.url}/login/" in alert.text
    assert "works once, for this login only, until" in alert.text
    link = person.link("blinkx-1")
    page = person.get(link)
    assert "blinkx-1 is waiting for your login" in page.text and "Log in at BlinkX" in page.text
    for name, value in {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    }.items():
        assert page.headers[name] == value, name
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    login_url = PageElements(page.text).by_id("login")["href"]
    assert parse_qs(urlsplit(login_url).query)["redirect_params"] == [f"n={nonce_of(link)}"]
    redirect = broker_login(blinkx, login_url, me)
    assert parse_qs(urlsplit(redirect).query)["n"] == [nonce_of(link)]  # the broker brought the nonce back
    done = person.get(redirect)
    assert done.status_code == 200 and "Done: blinkx-1 is" in done.text
    stored = harness.token("blinkx-1") or {}
    assert stored["source"] == "callback" and stored["access_token"] not in done.text
    assert harness.refresher().state.get("blinkx-1").pending is None  # the step and its links are gone


def test_zerodha_in_person_mode_logs_in_through_the_link(
    zerodha: ZerodhaSimulator, harness: Harness, person: PersonPages, clock: WarpClock
) -> None:
    login = {"user_id": "ZP1234", "password": secrets.token_urlsafe(12), "totp_secret": pyotp.random_base32()}
    remember_secret(login["password"], login["totp_secret"])
    api_secret = secrets.token_urlsafe(24)
    zerodha.add_app("zp-key", api_secret, f"{person.url}/callback/zerodha-p")
    zerodha.add_user(login["user_id"], login["password"], login["totp_secret"])
    # No password, no totp_secret: a person logs in, as Zerodha's staff advise.
    credentials = {"broker": "zerodha", "api_key": "zp-key", "api_secret": api_secret, "user_id": "ZP1234"}
    harness.add_account("zerodha-p", {**credentials, "base_url": zerodha.url, "login_url": zerodha.login_url})
    [outcome] = harness.refresher().run().outcomes
    assert outcome.state is AccountState.AWAITING_LOGIN and zerodha.logins("ZP1234") == 0
    done = person.get(broker_login(zerodha, start(person, person.link("zerodha-p")), login))
    assert 'id="page-done"' in done.text and (harness.token("zerodha-p") or {})["broker"] == "zerodha"


def etna_two_factor(sim: AutoSharesSimulator, harness: Harness) -> str:
    password = secrets.token_urlsafe(12)
    harness.add_account("etna-2", etna_credentials(sim, "trader2", password, app_key="etna-app-key", two_factor=True))
    return "trader2"


def test_the_code_form_finishes_an_emailed_code_login(
    autoshares: AutoSharesSimulator, harness: Harness, person: PersonPages
) -> None:
    username = etna_two_factor(autoshares, harness)
    harness.refresher().run()
    link = person.link("etna-2")
    form = person.get(link)
    assert form.status_code == 200 and "Enter the code AutoShares (ETNA Trader) sent you" in form.text
    code_field = PageElements(form.text).by_id("code")
    assert code_field["inputmode"] == "numeric" and code_field["autocomplete"] == "one-time-code"
    assert PageElements(form.text).form()[0] == "/code/etna-2"
    assert person.get(f"/code/etna-2?n={nonce_of(link)}").status_code == 200  # the form has its own address
    before, logins = awaiting(harness, "etna-2"), autoshares.logins(username)
    assert refused(person.post("/code/etna-2", {"n": secrets.token_urlsafe(32), "code": "123456"}))
    assert awaiting(harness, "etna-2") == before and autoshares.logins(username) == logins
    code = autoshares.outbox(username)[-1]
    remember_secret(code)
    done = person.post("/code/etna-2", {"n": nonce_of(link), "code": code})
    assert done.status_code == 200 and "Done: etna-2 is fresh until" in done.text
    assert (harness.token("etna-2") or {})["source"] == "callback"
    assert refused(person.post("/code/etna-2", {"n": nonce_of(link), "code": code}))  # single use


def test_a_wrong_code_never_trips_the_breaker(
    autoshares: AutoSharesSimulator, harness: Harness, person: PersonPages
) -> None:
    username = etna_two_factor(autoshares, harness)
    harness.refresher().run()
    link = person.link("etna-2")
    code = autoshares.outbox(username)[-1]
    wrong = "000000" if code != "000000" else "111111"
    page = person.post("/code/etna-2", {"n": nonce_of(link), "code": wrong})
    # The login stays open: the page offers another try through the same link.
    assert 'id="page-failed"' in page.text and 'id="login"' in page.text and wrong not in page.text
    assert not awaiting(harness, "etna-2").needs_attention
    assert awaiting(harness, "etna-2").pending is not None
    # This simulator's ETNA spent the ticket on the wrong code: the right one now closes the step...
    closed = person.post("/code/etna-2", {"n": nonce_of(link), "code": code})
    assert "new code" in closed.text and 'id="login"' not in closed.text
    assert not awaiting(harness, "etna-2").needs_attention
    [again] = harness.refresher().run().outcomes  # ...and the next run asks for a new code
    assert again.state is AccountState.AWAITING_VERIFICATION and person.link("etna-2") != link
    new_code = autoshares.outbox(username)[-1]
    remember_secret(new_code)
    done = person.post("/code/etna-2", {"n": nonce_of(person.link("etna-2")), "code": new_code})
    assert 'id="page-done"' in done.text


@pytest.mark.parametrize("fresh", [False, True])
def test_the_cli_link_is_another_link_to_the_same_login(
    blinkx: BlinkXSimulator, harness: Harness, person: PersonPages, clock: WarpClock, fresh: bool
) -> None:
    me = blinkx_person(blinkx, harness, person)
    harness.refresher().run()
    alert_link, cli_link = person.link("blinkx-1"), person.fresh_link("blinkx-1")
    assert alert_link != cli_link
    used, other = (cli_link, alert_link) if fresh else (alert_link, cli_link)
    assert 'id="page-done"' in person.get(broker_login(blinkx, start(person, used), me)).text
    assert refused(person.get(other))  # the login is over: every link to it is dead


# -- what the attacker review found ------------------------------------------------------------------------


def test_a_strangers_words_never_join_the_redactor(
    blinkx: BlinkXSimulator, harness: Harness, person: PersonPages, clock: WarpClock
) -> None:
    """Without a valid link nothing is registered: a stranger cannot mask our log lines (the evidence of
    their probing) or grow the redactor with every request."""
    from broker_tokens.redaction import REDACTOR

    blinkx_person(blinkx, harness, person)
    harness.refresher().run()
    words = ["stranger-word-" + secrets.token_hex(4) for _ in range(3)]
    assert refused(person.get(f"/callback/blinkx-1?n={words[0]}&request_token={words[1]}"))
    assert person.post("/code/blinkx-1", data={"n": words[2], "code": words[2]}).status_code == 403
    assert not [word for word in words if word in REDACTOR]


def test_showing_the_link_again_never_kills_the_alerts_link(
    blinkx: BlinkXSimulator, harness: Harness, person: PersonPages, clock: WarpClock
) -> None:
    """A dashboard polling GET /accounts/{a}/login (or `broker-tokens login`, run a few times) makes new
    links; the one in the alert, which the person is about to tap, must keep working."""
    me = blinkx_person(blinkx, harness, person)
    harness.refresher().run()
    alert_link = person.link("blinkx-1")
    for _ in range(6):
        person.fresh_link("blinkx-1")
    done = person.get(broker_login(blinkx, start(person, alert_link), me))
    assert 'id="page-done"' in done.text


def test_a_link_is_not_issued_while_a_completion_holds_the_account(
    blinkx: BlinkXSimulator, harness: Harness, person: PersonPages, clock: WarpClock
) -> None:
    """Issuing a link rewrites the state item: under the account's lease, so it cannot write back, open, a
    step that a login finishing at that moment has just closed."""
    blinkx_person(blinkx, harness, person)
    refresher = harness.refresher()
    refresher.run()
    state = refresher.state
    assert state.try_lease("blinkx-1", "a-completion-in-flight", timedelta(seconds=60)) is not None
    before = state.get("blinkx-1")
    assert refresher.person_link("blinkx-1") is None  # busy: ask again in a moment
    assert state.get("blinkx-1") == before
