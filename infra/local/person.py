"""What a person does in the demo: log in on a broker's page in a browser, read an e-mailed code.

The embedded stack has no person, so `make run` plays one, over plain HTTP as a browser would: it opens
the one-tap link from the alert, taps "Log in" on the person page, submits the Kite-family login form
(whose redirect brings the request token and the link's nonce back to the person pages' /callback), or
types AutoShares' e-mailed code (read from the simulator's outbox) into the person page's code form.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import requests

from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.kite import KiteSimulator
from infra.local.simulators.totp import code_at

TIMEOUT_SECONDS = 10


def browser_login(sim: KiteSimulator, login_url: str, credentials: dict[str, Any]) -> str:
    """Open the login URL, submit user id, password and TOTP; return where the broker sends the browser.

    The redirect is not followed: it is what a person pastes into `broker-tokens login ACCOUNT VALUE`.
    The whole person path through the alert's link is :func:`login_through_link`.

    Example:
        >>> browser_login(sim, login_url, demo.credentials)  # doctest: +SKIP
        'http://127.0.0.1:8766/callback/blinkx-demo?request_token=...&action=login&status=success'
    """
    with requests.Session() as browser:
        return submit_login_form(browser, sim, login_url, credentials)


def submit_login_form(
    browser: requests.Session, sim: KiteSimulator, login_url: str, credentials: dict[str, Any]
) -> str:
    """Open the broker's login page, answer its form (hidden fields kept); where the broker redirects to.

    Example:
        >>> submit_login_form(browser, sim, login_url, demo.credentials)  # doctest: +SKIP
        'http://127.0.0.1:8766/callback/blinkx-demo?request_token=...&action=login&status=success&n=...'
    """
    page = browser.get(login_url, timeout=TIMEOUT_SECONDS)
    page.raise_for_status()
    action, hidden = PageElements(page.text).form()
    answer = browser.post(
        urljoin(login_url, action),
        data={
            **hidden,
            "user_id": credentials["user_id"],
            "password": credentials["password"],
            "totp": code_at(credentials["totp_secret"], sim.clock.time()),
        },
        allow_redirects=False,
        timeout=TIMEOUT_SECONDS,
    )
    if answer.status_code != 302:
        raise RuntimeError(f"the login page refused the demo person (HTTP {answer.status_code})")
    return str(answer.headers["Location"])


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


class PageElements(HTMLParser):
    """The attributes of every ``a``, ``form`` and ``input`` element of a page (values unescaped).

    Example:
        >>> PageElements('<a id="login" href="/x?a=1&amp;b=2">go</a>').by_id("login")["href"]
        '/x?a=1&b=2'
    """

    def __init__(self, page: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("a", "form", "input"):
            self.found.append((tag, {name: value or "" for name, value in attrs}))

    def by_id(self, element_id: str) -> dict[str, str]:
        """The attributes of the element with this id."""
        for _, attrs in self.found:
            if attrs.get("id") == element_id:
                return attrs
        raise RuntimeError(f"the page has no element with id {element_id!r}")

    def form(self) -> tuple[str, dict[str, str]]:
        """The first form's action and its hidden fields."""
        action = next((attrs.get("action", "") for tag, attrs in self.found if tag == "form"), "")
        hidden = {a["name"]: a.get("value", "") for t, a in self.found if t == "input" and a.get("type") == "hidden"}
        return action, hidden


def login_through_link(sim: KiteSimulator, link: str, credentials: dict[str, Any]) -> requests.Response:
    """Open the one-tap link, tap "Log in", log in on the broker's page, land back on the person pages.

    Returns the last page (the person pages' answer to the broker's redirect).

    Example:
        >>> page = login_through_link(sim, stack.person_link("blinkx-demo"), demo.credentials)  # doctest: +SKIP
        >>> "page-done" in page.text                                                            # doctest: +SKIP
        True
    """
    with requests.Session() as browser:
        start = browser.get(link, timeout=TIMEOUT_SECONDS)
        start.raise_for_status()
        login_url = PageElements(start.text).by_id("login")["href"]
        location = submit_login_form(browser, sim, login_url, credentials)
        return browser.get(location, timeout=TIMEOUT_SECONDS * 3)


def code_through_link(link: str, code: str) -> requests.Response:
    """Open the one-tap link (the code form), type the code, send it; returns the answer page.

    Example:
        >>> "page-done" in code_through_link(stack.person_link("etna-2fa-demo"), "482913").text  # doctest: +SKIP
        True
    """
    with requests.Session() as browser:
        form = browser.get(link, timeout=TIMEOUT_SECONDS)
        form.raise_for_status()
        action, hidden = PageElements(form.text).form()
        return browser.post(urljoin(link, action), data={**hidden, "code": code}, timeout=TIMEOUT_SECONDS * 3)
