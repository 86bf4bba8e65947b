"""What a person does on a page in the browser: the steps a flow test chains.

Example:
    >>> browser.open(demo.describe("blinkx-demo").login_url)                # doctest: +SKIP
    >>> log_in_at_the_broker(browser, demo.credentials("blinkx-demo"))     # doctest: +SKIP
    >>> browser.wait_for_url(done_page_url)                                # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any

from infra.local.simulators.totp import code_at

from tests.support.browser import Browser


def log_in_at_the_broker(browser: Browser, credentials: dict[str, Any], *, shot: str | None = None) -> None:
    """On a Kite-family login page (BlinkX, Zerodha): type user id, password and the TOTP now, and submit.

    ``shot`` names a screenshot of the empty form, taken before anything is typed (so it shows no secret).
    """
    browser.find("input[name=user_id]")
    if shot:
        browser.screenshot(shot)
    browser.fill("input[name=user_id]", credentials["user_id"])
    browser.fill("input[name=password]", credentials["password"])
    browser.fill("input[name=totp]", code_at(credentials["totp_secret"], time.time()))
    browser.click("button[type=submit]")
