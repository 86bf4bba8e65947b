"""A scripted person with a browser: opens a printed login URL, fills the page's form as they read it.

Nothing comes from code: the form's fields and hidden inputs are read from the page's HTML, and the
values are what the person was shown (a user id, a password, a TOTP code).
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin

import requests

TIMEOUT_SECONDS = 10
MAX_REDIRECTS = 5


class FormReader(HTMLParser):
    """The first form of a page: its action and its inputs (name -> value as the page sets it)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.inputs: dict[str, str] = {}
        self.button: str | None = None  # a link-button to tap first (the person pages' "Log in at ...")
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form" and self.action is None:
            self.action, self._in_form = found.get("action", ""), True
        elif tag == "a" and found.get("id") == "login" and self.button is None:
            self.button = found.get("href")
        elif tag == "input" and self._in_form and found.get("name"):
            self.inputs[found["name"]] = found.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def log_in(login_url: str, typed: dict[str, str]) -> list[str]:
    """Open ``login_url`` (tapping its "Log in" button first, on a person page), fill the form's visible
    fields from ``typed`` (by name), submit, follow redirects.

    Returns every address the browser went through after submitting (the last one is where it landed).
    Raises AssertionError when the page has no form or a field the person was not given.
    """
    with requests.Session() as browser:
        page = browser.get(login_url, timeout=TIMEOUT_SECONDS)
        page.raise_for_status()
        form = FormReader()
        form.feed(page.text)
        if form.action is None and form.button:  # the start page: tap through to the broker's form
            page = browser.get(urljoin(page.url, form.button), timeout=TIMEOUT_SECONDS)
            page.raise_for_status()
            form = FormReader()
            form.feed(page.text)
        assert form.action is not None, "the login page has no form"
        missing = [name for name, value in form.inputs.items() if not value and name not in typed]
        assert not missing, f"the person was not told what to type in {missing}"
        data = {**form.inputs, **{name: value for name, value in typed.items() if name in form.inputs}}
        answer = browser.post(urljoin(page.url, form.action), data=data, allow_redirects=False, timeout=TIMEOUT_SECONDS)
        visited = []
        for _ in range(MAX_REDIRECTS):
            if answer.status_code not in (301, 302, 303, 307, 308):
                break
            target = urljoin(answer.url, answer.headers["Location"])
            visited.append(target)
            answer = browser.get(target, allow_redirects=False, timeout=TIMEOUT_SECONDS * 3)
        assert answer.ok, f"the browser ended on HTTP {answer.status_code} at {answer.url}"
        return visited
