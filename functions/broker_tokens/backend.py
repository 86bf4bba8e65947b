"""Where the token API's logins run: in this process, or in the refresher function.

The token API's IAM role cannot read credentials (except PiTrade's), so in AWS a refresh or a
completed login is handed to the refresher function, synchronously, with the refresher's own event
(``{"accounts": [...], "force": true, "source": "api"}`` or ``{"complete": {...}, "source": "callback"}``).
The embedded stack and the tests run the same core Refresher in-process instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from broker_tokens.errors import ErrorKind
from broker_tokens.logs import logger
from broker_tokens.models import AccountState, Outcome, Source
from broker_tokens.redaction import register, scrub

if TYPE_CHECKING:
    from broker_tokens.clock import Clock
    from broker_tokens.config import Settings

    # The core (and with it the adapters) loads only where logins run in this process (cold start).
    from broker_tokens.refresh import Refresher

# Below the token API's own timeout (template.yaml: 120 s), so the API can still answer.
INVOKE_TIMEOUT_SECONDS = 110.0


class BackendError(Exception):
    """The refresh could not be handed over (the refresher could not be invoked, or did not answer in time)."""

    def __init__(self, message: str, *, timed_out: bool = False):
        self.timed_out = timed_out
        super().__init__(message)


class RefreshBackend(Protocol):
    """Runs a forced single-flight refresh, or finishes a person-completed login, for one account."""

    def refresh(self, account: str, force: bool) -> Outcome:
        """Log the account in (``force``: even when its token is fresh); the outcome, never raises for a broker."""

    def complete(self, account: str, value: str, source: Source, nonce: str | None = None) -> Outcome:
        """Finish a pending login with the request token or code the person supplied (and their link's nonce)."""

    def person_link(self, account: str) -> str | None:
        """A new one-time link to the account's open person login, or None."""


class LocalBackend:
    """The core Refresher in this process (the embedded stack, tests).

    Example:
        >>> backend = LocalBackend(harness.refresher())        # doctest: +SKIP
        >>> backend.refresh("angel-main", force=True).state     # doctest: +SKIP
        <AccountState.FRESH: 'fresh'>
    """

    def __init__(self, refresher: Refresher):
        self.refresher = refresher

    def refresh(self, account: str, force: bool) -> Outcome:
        """The Refresher's single-flight refresh, as the API's source."""
        return self.refresher.refresh(account, force=force, source=Source.API)

    def complete(self, account: str, value: str, source: Source, nonce: str | None = None) -> Outcome:
        """The Refresher's completion of a pending login."""
        return self.refresher.complete(account, value, source=source, nonce=nonce)

    def person_link(self, account: str) -> str | None:
        """The Refresher's new link to the open person login."""
        return self.refresher.person_link(account)


class LambdaBackend:
    """The refresher function, invoked synchronously (RequestResponse) with its documented event.

    Example:
        >>> LambdaBackend("broker-tokens-RefresherFunction-abc").refresh("angel-main", True)  # doctest: +SKIP
    """

    def __init__(
        self,
        function_name: str,
        *,
        client: Any = None,
        timeout: float = INVOKE_TIMEOUT_SECONDS,
        session: boto3.Session | None = None,
    ):
        self.function_name = function_name
        # One attempt only: a retried invoke would be a second login.
        config = Config(read_timeout=timeout, connect_timeout=5, retries={"max_attempts": 1, "mode": "standard"})
        self.client = client or (session or boto3.Session()).client("lambda", config=config)

    def refresh(self, account: str, force: bool) -> Outcome:
        """Invoke the refresher for this one account."""
        return self._invoke(account, {"accounts": [account], "force": force, "source": Source.API.value})

    def complete(self, account: str, value: str, source: Source, nonce: str | None = None) -> Outcome:
        """Invoke the refresher to finish the pending login (it holds the credentials the exchange needs)."""
        register(value, nonce)
        complete = {"account": account, "value": value, **({"nonce": nonce} if nonce else {})}
        return self._invoke(account, {"complete": complete, "source": source.value})

    def person_link(self, account: str) -> str | None:
        """Invoke the refresher to add a link to the open step (the API may not write the state table)."""
        payload, raised = self.invoke({"link": {"account": account}})
        link = payload.get("link") if isinstance(payload, dict) and not raised else None
        return str(link) if link else None

    def invoke(self, event: Mapping[str, Any]) -> tuple[Any, bool]:
        """Run the refresher with ``event`` and wait: its answer, and whether it raised.

        When it raised, the answer is Lambda's error object (``errorType``, ``errorMessage``); a run
        that ends with accounts not fresh raises on purpose (NotFreshError). BackendError when the
        function could not be invoked or did not answer in time.
        """
        try:
            answer = self.client.invoke(
                FunctionName=self.function_name, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
            )
            payload = json.loads(answer["Payload"].read() or b"null")
        except (ClientError, BotoCoreError, ValueError) as exc:
            timed_out = "timeout" in type(exc).__name__.lower()
            logger.error("refresher invoke failed", extra={"function": self.function_name, "error": scrub(str(exc))})
            raise BackendError("the refresher could not be invoked", timed_out=timed_out) from None
        return payload, bool(answer.get("FunctionError"))

    def _invoke(self, account: str, event: Mapping[str, Any]) -> Outcome:
        payload, raised = self.invoke(event)
        if raised:
            # A run that ends not fresh raises (NotFreshError) on purpose; the state table has the details.
            kind = payload.get("errorType", "error") if isinstance(payload, dict) else "error"
            message = payload.get("errorMessage", "") if isinstance(payload, dict) else ""
            return Outcome(
                account, None, AccountState.FAILED, error_kind=ErrorKind.TRANSIENT, error=scrub(f"{kind}: {message}")
            )
        return outcome_of(account, payload)


def outcome_of(account: str, report: Any) -> Outcome:
    """The account's line of a refresher report (``Report.to_dict()``).

    Example:
        >>> outcome_of("a1", {"accounts": [{"account": "a1", "broker": "angelone", "state": "fresh"}]}).state.value
        'fresh'
    """
    lines = report.get("accounts", []) if isinstance(report, dict) else []
    for line in lines:
        if isinstance(line, dict) and line.get("account") == account:
            return Outcome.from_dict(line)
    return Outcome(account, None, AccountState.FAILED, error_kind=ErrorKind.TRANSIENT, error="no report line")


def in_process(settings: Settings, clock: Clock) -> Refresher:
    """The core Refresher for logins run in this process, imported (adapters and all) only now (cold start).

    Example:
        >>> in_process(Settings(secret_prefix="desk"), SYSTEM_CLOCK).secrets.prefix  # doctest: +SKIP
        'desk'
    """
    from broker_tokens.runtime import build_refresher  # noqa: PLC0415 - the API's import stays light

    return build_refresher(settings, clock)


def build_backend(env: Mapping[str, str], refresher: Callable[[], Refresher]) -> RefreshBackend:
    """LambdaBackend when ``REFRESHER_FUNCTION_NAME`` is set (AWS), else the in-process Refresher.

    Example:
        >>> type(build_backend({"REFRESHER_FUNCTION_NAME": "f"}, refresher=lambda: None)).__name__  # doctest: +SKIP
        'LambdaBackend'
    """
    name = env.get("REFRESHER_FUNCTION_NAME")
    if name:
        return LambdaBackend(name)
    return LocalBackend(refresher())
