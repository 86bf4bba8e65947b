"""A person's BlinkX login in a real browser: headless Chromium at phone size on the embedded stack.

The refresher left blinkx-demo awaiting a login; the person opens its login URL, fills in the broker's
form (user id, password, the TOTP of their authenticator app), and the broker redirects the browser to
the token API's /callback, which finishes the login. The account must then be fresh as the CLI reports
it, and no page may show a credential or the token. The CLI shows the same link as a QR code for a phone.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import segno

from broker_tokens.cli.qr import QUIET_ZONE
from tests.e2e.test_make_run import kite_state_now
from tests.support.browser import Browser
from tests.support.logsink import leaks, remember_secret
from tests.support.pages import log_in_at_the_broker
from tests.support.stack import DemoStack
from tests.unit.test_cli_qr import modules

ACCOUNT = "blinkx-demo"


def test_a_person_logs_in_to_blinkx_from_a_phone(browser: Browser, demo: DemoStack) -> None:
    waiting = demo.describe(ACCOUNT)
    assert waiting.state.value == "awaiting-login" and waiting.login_url, waiting
    person = demo.credentials(ACCOUNT)

    browser.open(waiting.login_url)
    log_in_at_the_broker(browser, person, shot="blinkx-1-login")

    landed = browser.wait_for_url(f"{demo.stack.front.url}/callback/{ACCOUNT}?")
    browser.screenshot("blinkx-2-callback")
    request_token = parse_qs(urlsplit(landed).query)["request_token"][0]
    remember_secret(request_token)  # the log scan after the test looks for it too

    line = demo.status(ACCOUNT)  # what `broker-tokens status` says, not what the page says
    assert line["state"] == kite_state_now(), line
    token = demo.token(ACCOUNT)
    assert token["source"] == "callback", token
    remember_secret(token["access_token"])
    assert not leaks([browser.html, browser.text]), "a credential, the request_token or the token reached the page"


def test_the_cli_shows_the_link_as_a_qr_code_a_phone_opens(browser: Browser, demo: DemoStack) -> None:
    shown = demo.cli("login", ACCOUNT, "--qr", "--force")
    assert shown.returncode == 0, shown.stderr
    link, *code = shown.stdout.splitlines()
    assert link == demo.describe(ACCOUNT).login_url  # the link itself is still printed, as text
    drawn = modules(code)
    assert drawn[:-1] == [list(row) for row in segno.make_qr(link).matrix_iter(border=QUIET_ZONE)]
    assert "scan it with a phone" in shown.stderr

    browser.open(link)  # what the phone's camera opens
    browser.find("input[name=totp]")
    assert browser.url == link and "BlinkX login" in browser.text
