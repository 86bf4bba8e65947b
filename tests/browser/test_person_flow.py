"""A person finishes the morning's logins from a phone: headless Chromium at phone size on the embedded stack.

The 07:30 run left blinkx-demo awaiting a browser login and etna-2fa-demo awaiting the code AutoShares
e-mailed. The person taps the one-time link of each alert: for BlinkX, the start page, "Log in at BlinkX",
the broker's form (user id, password, the TOTP of their authenticator app), and the broker's redirect back
to the person pages' /callback, which ends on the done page; for AutoShares, the code form. Each account
must then be fresh as the CLI reports it, the used link must change nothing, and no page may show a
credential, the request token or the token. The whole flow runs in both token API auth modes: the person
pages are their own public endpoint, so `iam` must not get in the way. The CLI shows the link as a QR code.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import segno
from infra.local.person import emailed_code

from broker_tokens.cli.qr import QUIET_ZONE
from tests.e2e.test_make_run import kite_state_now
from tests.support.browser import Browser
from tests.support.logsink import leaks, remember_secret
from tests.support.pages import log_in_at_the_broker
from tests.support.stack import DemoStack
from tests.unit.test_cli_qr import modules

BLINKX = "blinkx-demo"
ETNA = "etna-2fa-demo"

# Each module-scoped stack (one per auth mode) runs the whole flow in order.
pytestmark = pytest.mark.parametrize("demo", ["api_key", "iam"], indirect=True, scope="module")


def shot(browser: Browser, demo: DemoStack, name: str) -> None:
    """One screenshot per page, named for the auth mode only where it differs (api_key keeps the docs' names)."""
    mode = demo.stack.front.auth_mode
    browser.screenshot(name if mode == "api_key" else f"{mode}-{name}")


def test_a_person_logs_in_to_blinkx_from_the_alerts_link(browser: Browser, demo: DemoStack) -> None:
    assert demo.describe(BLINKX).state.value == "awaiting-login"
    link = demo.stack.person_link(BLINKX)  # the link the alert carried
    assert link and link.startswith(f"{demo.stack.person_url}/login/{BLINKX}?")

    browser.open(link)
    browser.find("#page-start")
    assert f"{BLINKX} is waiting for your login" in browser.text
    shot(browser, demo, "person-1-start")
    browser.click("#login")
    log_in_at_the_broker(browser, demo.credentials(BLINKX), shot="person-2-broker")

    landed = browser.wait_for_url(f"{demo.stack.person_url}/callback/{BLINKX}?")
    remember_secret(parse_qs(urlsplit(landed).query)["request_token"][0])  # scanned for in logs and pages
    browser.find("#page-done")
    shot(browser, demo, "person-3-done")
    assert browser.text.startswith(f"Done: {BLINKX} is")

    line = demo.status(BLINKX)  # what `broker-tokens status` says, not what the page says
    assert line["state"] == kite_state_now(), line
    token = demo.token(BLINKX)
    assert token["source"] == "callback", token
    remember_secret(token["access_token"])
    assert not leaks([browser.html, browser.text]), "a credential, the request_token or the token reached the page"

    # The link was single use: opened again, it shows a clear page and changes nothing.
    browser.open(link)
    browser.find("#page-invalid")
    shot(browser, demo, "person-4-used-link")
    assert demo.token(BLINKX)["access_token"] == token["access_token"]


def test_a_person_types_the_emailed_code_into_the_alerts_link(browser: Browser, demo: DemoStack) -> None:
    assert demo.describe(ETNA).state.value == "awaiting-verification"
    link = demo.stack.person_link(ETNA)
    assert link

    browser.open(link)
    field = browser.find("#code")
    assert field.get_attribute("inputmode") == "numeric" and field.get_attribute("autocomplete") == "one-time-code"
    shot(browser, demo, "person-5-code")
    code = emailed_code(demo.stack.simulators["autoshares"], demo.credentials(ETNA)["username"])
    remember_secret(code)
    browser.fill("#code", code)
    browser.click("#submit")
    browser.find("#page-done")
    shot(browser, demo, "person-6-code-done")

    assert demo.status(ETNA)["state"] == "fresh"
    assert not leaks([browser.html, browser.text])


def test_the_cli_shows_the_link_as_a_qr_code_a_phone_opens(browser: Browser, demo: DemoStack) -> None:
    shown = demo.cli("login", BLINKX, "--qr", "--force")
    assert shown.returncode == 0, shown.stderr
    link, *code = shown.stdout.splitlines()
    assert link.startswith(f"{demo.stack.person_url}/login/{BLINKX}?")  # the link itself, as text
    drawn = modules(code)
    assert drawn[:-1] == [list(row) for row in segno.make_qr(link).matrix_iter(border=QUIET_ZONE)]
    assert "scan it with a phone" in shown.stderr

    browser.open(link)  # what the phone's camera opens
    browser.find("#page-start")
    assert browser.url == link
