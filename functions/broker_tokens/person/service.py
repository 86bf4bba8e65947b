"""The person surface: the only routes a stranger's browser can reach, each behind a one-time link.

Routes (all HTML, see :mod:`broker_tokens.person.pages`):
  GET  /login/{account}?n=NONCE      the start of an awaited login: a button to the broker's login page
                                     (its URL carries the nonce in ``redirect_params``), or the code form
  GET  /callback/{account}?request_token=...&action=login&status=success&n=NONCE
                                     the broker's redirect after the person's login
  GET  /code/{account}?n=NONCE       the e-mailed-code form
  POST /code/{account}               the form's submission (fields ``n`` and ``code``)
Anything else is a 404 page (405 for a known path with another method).

Every route first checks the link against the account's open step (read from the state item: the
nonce's hash, the step's expiry, its failures). A wrong, used, expired or missing link gets the same
page and changes nothing. A good link hands the request token or code to the refresh backend with the
nonce, and the refresher checks the link again under the account's lease before any broker call, so a
link finishes at most one login. This surface reads no credentials and no token: in AWS the refresher
function does the exchange (see :mod:`broker_tokens.backend`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from broker_tokens.api.errors import ApiError
from broker_tokens.api.inputs import VERIFICATION_CODE, query
from broker_tokens.backend import BackendError, RefreshBackend
from broker_tokens.brokers import known_broker
from broker_tokens.clock import Clock
from broker_tokens.config import Settings
from broker_tokens.logs import logger
from broker_tokens.models import AccountState, Outcome, PendingStep, Source
from broker_tokens.person import pages
from broker_tokens.person.links import NONCE_PARAM, admits, login_url_with_nonce
from broker_tokens.redaction import register
from broker_tokens.state import StateStore

# Kite-family request tokens (32 alphanumerics today); a little room, nothing that needs escaping.
REQUEST_TOKEN = re.compile(r"[A-Za-z0-9_.~-]{6,256}")
ROUTE = re.compile(r"/(?P<page>login|callback|code)/(?P<account>[a-z0-9][a-z0-9-]{0,62})")
METHODS = {"login": ("GET",), "callback": ("GET",), "code": ("GET", "POST")}
MAX_FORM_BYTES = 4096
FORM_MEDIA = "application/x-www-form-urlencoded"
STORED = (AccountState.FRESH, AccountState.EXPIRING)


class PersonService:
    """The person pages over the state store (read only) and the refresh backend.

    Example:
        >>> service = PersonService(states=store, backend=LocalBackend(refresher), settings=settings,
        ...                         clock=clock)                                    # doctest: +SKIP
        >>> service.handle({"rawPath": "/login/blinkx-main", "rawQueryString": "n=..."})["statusCode"]  # doctest: +SKIP
        200
    """

    def __init__(self, *, states: StateStore, backend: RefreshBackend, settings: Settings, clock: Clock):
        self.states = states
        self.backend = backend
        self.settings = settings
        self.clock = clock

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """One Function URL event to one HTML answer; never raises."""
        http = (event.get("requestContext") or {}).get("http") or {}
        method = str(http.get("method") or "GET").upper()
        path = str(event.get("rawPath") or http.get("path") or "/")
        match = ROUTE.fullmatch(path)
        extra: dict[str, str] = {}
        if match is None:
            page = pages.missing()
        elif method not in METHODS[match["page"]]:
            page, extra = pages.missing(), {"Allow": ", ".join(METHODS[match["page"]])}
            page = pages.Page(405, page.html)
        else:
            page = self._route(match["page"], method, event, match["account"])
        logger.info(
            "person page",
            extra={
                "page": match["page"] if match else "none",
                "account": match["account"] if match else None,
                "status": page.status,
            },
        )
        return {"statusCode": page.status, "headers": {**pages.HEADERS, **extra}, "body": page.html}

    # -- routes --------------------------------------------------------------------------------------

    def _route(self, name: str, method: str, event: Mapping[str, Any], account: str) -> pages.Page:
        try:
            if name == "login":
                return self.start(event, account)
            if name == "callback":
                return self.callback(event, account)
            return self.submit_code(event, account) if method == "POST" else self.show_code(event, account)
        except BackendError:
            return pages.failed(
                account,
                "The login service did not answer in time. Open the link again in a minute: it says "
                "whether the login finished.",
                retry_href=None,
            )
        except Exception:  # a page, never a stack trace; the log has the details (without the event)
            logger.exception("person page failed", extra={"account": account})
            return pages.failed(account, "Something failed on our side.", retry_href=None)

    def start(self, event: Mapping[str, Any], account: str) -> pages.Page:
        """The start page: a button to the broker (the nonce rides in ``redirect_params``), or the code form."""
        params = _params(event)
        nonce = params.get(NONCE_PARAM)
        step = self._step(account, nonce)
        if step is None or nonce is None:
            return pages.invalid_link(account)
        if step.state is AccountState.AWAITING_VERIFICATION:
            return pages.code_form(account, self._title(account), f"/code/{account}", nonce)
        if not step.login_url:
            return pages.invalid_link(account)
        return pages.start_login(account, self._title(account), login_url_with_nonce(step.login_url, nonce))

    def callback(self, event: Mapping[str, Any], account: str) -> pages.Page:
        """The broker's redirect: the request token goes to the refresher with the nonce it came back with."""
        params = _params(event)
        nonce, request_token = params.get(NONCE_PARAM), params.get("request_token", "")
        step = self._step(account, nonce)
        if step is None or nonce is None or step.state is not AccountState.AWAITING_LOGIN:
            return pages.invalid_link(account)
        retry = self._retry(account, nonce)
        if params.get("status", "success") != "success":
            return pages.failed(account, f"{self._title(account)} did not finish the login.", retry_href=retry)
        if not REQUEST_TOKEN.fullmatch(request_token):
            return pages.failed(account, "The broker's answer carried no usable request token.", retry_href=retry)
        # Registered for redaction only once the link is valid and the token has its shape: a stranger's
        # words must not grow the redactor (or mask the log lines that record their probing).
        register(nonce, request_token)
        outcome = self.backend.complete(account, request_token, Source.CALLBACK, nonce)
        return self._result(account, outcome, nonce)

    def show_code(self, event: Mapping[str, Any], account: str) -> pages.Page:
        """The code form, for a link to an open verification step."""
        nonce = _params(event).get(NONCE_PARAM)
        step = self._step(account, nonce)
        if step is None or nonce is None or step.state is not AccountState.AWAITING_VERIFICATION:
            return pages.invalid_link(account)
        return pages.code_form(account, self._title(account), f"/code/{account}", nonce)

    def submit_code(self, event: Mapping[str, Any], account: str) -> pages.Page:
        """The code form's submission: the code goes to the refresher with the link's nonce."""
        form = _form(event)
        nonce, code = form.get(NONCE_PARAM), form.get("code", "").strip()
        step = self._step(account, nonce)
        if step is None or nonce is None or step.state is not AccountState.AWAITING_VERIFICATION:
            return pages.invalid_link(account)
        if not VERIFICATION_CODE.fullmatch(code):
            return pages.code_form(
                account, self._title(account), f"/code/{account}", nonce, error="Type the code's digits."
            )
        register(nonce, code)  # only now: see callback
        outcome = self.backend.complete(account, code, Source.CALLBACK, nonce)
        return self._result(account, outcome, nonce)

    # -- helpers -------------------------------------------------------------------------------------

    def _step(self, account: str, nonce: str | None) -> PendingStep | None:
        """The account's open step, when ``nonce`` is one of its links (else None: the same for every reason)."""
        status = self.states.get(account)
        step = status.pending
        now = self.clock.now()
        if step is None or step.spent or (step.expires_at is not None and step.expires_at <= now):
            return None
        return step if admits(step, nonce) else None

    def _result(self, account: str, outcome: Outcome, nonce: str) -> pages.Page:
        """The page for what the refresher made of the completion."""
        if outcome.action == "refused":
            return pages.invalid_link(account)
        if outcome.state in STORED:
            return pages.done(
                account,
                outcome.expires_at,
                self.settings.market_timezone,
                self.clock.now(),
                fresh=outcome.state is AccountState.FRESH,
            )
        reason = outcome.error or f"The login ended {outcome.state.value}."
        still_open = outcome.state.awaits_person and self._step(account, nonce) is not None
        return pages.failed(account, reason, retry_href=self._retry(account, nonce) if still_open else None)

    def _retry(self, account: str, nonce: str) -> str:
        return f"/login/{account}?{NONCE_PARAM}={nonce}"

    def _title(self, account: str) -> str:
        cls = known_broker(self.states.get(account).broker)
        return cls.title if cls else "your broker"


def _params(event: Mapping[str, Any]) -> dict[str, str]:
    """The query's parameters, each at most once ({} for a query the pages cannot use)."""
    try:
        return query(event)
    except ApiError:
        return {}


def _form(event: Mapping[str, Any]) -> dict[str, str]:
    """A small url-encoded form body, each field at most once ({} for anything else)."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    if headers.get("content-type", "").split(";")[0].strip().lower() != FORM_MEDIA:
        return {}
    raw = str(event.get("body") or "")
    try:
        data = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else raw.encode()
        if len(data) > MAX_FORM_BYTES:
            return {}
        parsed = parse_qs(data.decode("utf-8"), keep_blank_values=True, max_num_fields=10, strict_parsing=False)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return {}
    if any(len(values) > 1 for values in parsed.values()):
        return {}
    return {name: values[0] for name, values in parsed.items()}
