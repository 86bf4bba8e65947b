"""What a person does in the demo: log in on a broker's page in a browser, read an e-mailed code.

The embedded stack has no person, so `make run` plays one: it submits the Kite-family login form the way a
browser would (following the redirect to the token API's /callback), and reads AutoShares' e-mailed code
from the simulator's outbox.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.kite import CONNECT_LOGIN_PATH, KiteSimulator
from infra.local.simulators.totp import code_at

TIMEOUT_SECONDS = 10


def browser_login(sim: KiteSimulator, login_url: str, credentials: dict[str, Any], *, follow: bool) -> str:
    """Open the login URL, submit user id, password and TOTP; return where the broker sends the browser.

    With ``follow`` the browser goes on to the app's redirect URL (the token API's /callback), which
    finishes the login; without it, the redirect URL is returned for a person to paste into the CLI.

    Example:
        >>> browser_login(sim, login_url, demo.credentials, follow=True)  # doctest: +SKIP
        'http://127.0.0.1:8765/callback/blinkx-demo?request_token=...&action=login&status=success'
    """
    with requests.Session() as browser:
        page = browser.get(login_url, timeout=TIMEOUT_SECONDS)
        page.raise_for_status()
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(login_url))
        answer = browser.post(
            origin + CONNECT_LOGIN_PATH,
            data={
                "v": "3",
                "api_key": credentials["api_key"],
                "user_id": credentials["user_id"],
                "password": credentials["password"],
                "totp": code_at(credentials["totp_secret"], sim.clock.time()),
            },
            allow_redirects=False,
            timeout=TIMEOUT_SECONDS,
        )
        if answer.status_code != 302:
            raise RuntimeError(f"the login page refused the demo person (HTTP {answer.status_code})")
        location = str(answer.headers["Location"])
        if follow:
            browser.get(location, timeout=TIMEOUT_SECONDS * 3).raise_for_status()
        return location


def emailed_code(sim: AutoSharesSimulator, username: str) -> str:
    """The latest code the AutoShares simulator 'e-mailed' to a user.

    Example:
        >>> emailed_code(sim, "demo.2fa")  # doctest: +SKIP
        '482913'
    """
    codes = sim.outbox(username)
    if not codes:
        raise RuntimeError(f"no code was e-mailed to {username}")
    return codes[-1]
