"""The person pages behind their own local front, and a person's view of them: the alerts' links, the pages.

Every page fetched through :class:`PersonPages` is kept, so a test can prove no fixture secret (a
password, a request token, another link's nonce) ever reached one.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from infra.local.front import LocalFront
from infra.local.inbox import AlertInbox
from infra.local.moto_server import MotoServer
from infra.local.template import LocalResources

from broker_tokens.backend import LocalBackend, RefreshBackend
from broker_tokens.clock import WarpClock
from broker_tokens.person.runtime import install_person
from broker_tokens.person.service import PersonService
from broker_tokens.state import DynamoStateStore
from person_pages.app import lambda_handler as person_handler
from tests.support.harness import Harness
from tests.support.logsink import leaks, remember_secret

NONCE = re.compile(r"[?&]n=([A-Za-z0-9_-]{43})")


def nonce_of(link: str) -> str:
    """The nonce a person link (or a page's href) carries.

    Example:
        >>> nonce_of("http://x/login/a?n=" + "N" * 43) == "N" * 43
        True
    """
    found = NONCE.search(link)
    assert found, "no nonce in the link"
    return found.group(1)


@dataclass
class PersonPages:
    """The person pages on a local front, the alert inbox, and every page a test fetched."""

    front: LocalFront
    inbox: AlertInbox
    harness: Harness
    service: PersonService
    pages: list[tuple[str, str]] = field(default_factory=list)  # (the nonce the request carried, the page)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.front.url

    def link(self, account: str) -> str:
        """The one-time link of the newest alert about the account (its nonce joins the leak check)."""
        found = self.inbox.link(account)
        assert found, f"no alert with a link for {account}"
        remember_secret(nonce_of(found))
        return found

    def fresh_link(self, account: str) -> str:
        """A new link to the account's open step, as `broker-tokens login ACCOUNT` makes one."""
        link = self.harness.refresher().person_link(account)
        assert link, f"{account} has no open step"
        remember_secret(nonce_of(link))
        return link

    def get(self, target: str, **kwargs: Any) -> requests.Response:
        """GET a person page (a full URL or a path), as a browser that follows no redirect."""
        return self._keep(requests.get(self._url(target), timeout=30, allow_redirects=False, **kwargs))

    def post(self, target: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
        """POST a form to a person page."""
        return self._keep(requests.post(self._url(target), data=data, timeout=30, allow_redirects=False, **kwargs))

    def leaked(self) -> list[str]:
        """Fixture secrets found in any page, a page's own link nonce excepted (it is the link itself)."""
        found: list[str] = []
        for nonce, page in self.pages:
            found += [secret for secret in leaks([page]) if secret != nonce]
        return found

    def _url(self, target: str) -> str:
        return target if target.startswith("http") else self.url + target

    def _keep(self, answer: requests.Response) -> requests.Response:
        sent = answer.request
        carried = parse_qs(urlsplit(sent.url or "").query).get("n", [""])[0]
        body = sent.body if isinstance(sent.body, str) else (sent.body or b"").decode(errors="replace")
        carried = carried or parse_qs(body).get("n", [""])[0]
        with self._lock:
            self.pages.append((carried, answer.text))
        return answer


def start_person_pages(
    harness: Harness, moto: MotoServer, cloud: LocalResources, clock: WarpClock, backend: RefreshBackend | None = None
) -> PersonPages:
    """The person pages wired like their Lambda function (completions in-process unless ``backend``)."""
    front = LocalFront(handler=person_handler, function_name="broker-tokens-person").start()
    harness.settings = replace(harness.settings, person_url=front.url + "/")
    service = PersonService(
        states=DynamoStateStore(cloud.table_name, clock=clock, client=moto.client("dynamodb")),
        backend=backend or LocalBackend(harness.refresher(http_timeout=5.0)),
        settings=harness.settings,
        clock=clock,
    )
    install_person(service)
    inbox = AlertInbox(moto.session(), cloud.topic_arn, name=f"inbox-{uuid.uuid4().hex[:8]}")
    return PersonPages(front, inbox, harness, service)


@pytest.fixture(name="person")
def person_fixture(
    harness: Harness, moto: MotoServer, cloud: LocalResources, clock: WarpClock
) -> Iterator[PersonPages]:
    """The person pages on a local front; after the test, no page may have carried a fixture secret."""
    pages = start_person_pages(harness, moto, cloud, clock)
    yield pages
    pages.front.stop()
    install_person(None)
    leaked = pages.leaked()
    assert not leaked, f"{len(leaked)} fixture secret(s) reached a person page"
