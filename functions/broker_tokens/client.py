"""For apps: read an account's token straight from Secrets Manager, or through the token API.

Two ways, one record (the token secret of docs/contract.md): an app on AWS with the reader policy calls
:func:`get_token`; any other app calls the token API with :class:`TokenApiClient` (API key or SigV4).

Reads are cached per process (:class:`TokenCache`, shared with the token API itself): a token is
served from memory; 30 s after it was last checked, a DescribeSecret (metadata only) asks whether
AWSCURRENT moved, and only a new version is read again. So a refresh elsewhere is seen within 30 s, and
each token version costs one GetSecretValue per process.

Example:
    >>> from broker_tokens.client import get_token                       # doctest: +SKIP
    >>> token = get_token("angel-main")                                  # doctest: +SKIP
    >>> headers = {"Authorization": token["authorization"], **token["headers"]}  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from broker_tokens.clock import SYSTEM_CLOCK, Clock
from broker_tokens.config import DEFAULT_PREFIX
from broker_tokens.models import is_account_id, parse_iso
from broker_tokens.secret_errors import error_code, is_absent

if TYPE_CHECKING:
    import requests
    from botocore.credentials import Credentials
    from mypy_boto3_secretsmanager import SecretsManagerClient

CACHE_SECONDS = 30.0
FUNCTION_URL_HOST = re.compile(r"[a-z0-9]+\.lambda-url\.([a-z0-9-]+)\.on\.aws")


class TokenUnavailableError(LookupError):
    """No usable token: the account has none yet, or the stored one has expired.

    Example:
        >>> str(TokenUnavailableError("angel-main", "expired"))
        "account 'angel-main' has no usable token (expired)"
    """

    def __init__(self, account: str, reason: str):
        self.account = account
        self.reason = reason
        super().__init__(f"account '{account}' has no usable token ({reason})")


@dataclass
class _Entry:
    record: dict[str, Any] | None  # None: no token secret (yet)
    version: str | None
    checked_at: float


class TokenCache:
    """Token records of one prefix, cached in process memory and revalidated by version.

    Example:
        >>> cache = TokenCache(client, prefix="broker-tokens")         # doctest: +SKIP
        >>> cache.get("angel-main")["authorization"]                    # doctest: +SKIP
        'Bearer eyJ...'
    """

    def __init__(
        self,
        client: SecretsManagerClient | None = None,
        *,
        prefix: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        ttl: float = CACHE_SECONDS,
    ):
        self.client: SecretsManagerClient = client or boto3.client("secretsmanager")
        self.prefix = (prefix or os.environ.get("SECRET_PREFIX") or DEFAULT_PREFIX).rstrip("/")
        self.clock = clock
        self.ttl = ttl
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def name(self, account: str) -> str:
        """The token secret's name."""
        return f"{self.prefix}/{account}/token"

    def get(self, account: str) -> dict[str, Any] | None:
        """The AWSCURRENT record (a copy), or None when the account has no token secret."""
        return self._lookup(account, force_check=False)

    def revalidate(self, account: str) -> dict[str, Any] | None:
        """Like :meth:`get`, but checks the version now: for a reader that just refreshed the account."""
        return self._lookup(account, force_check=True)

    def _lookup(self, account: str, *, force_check: bool) -> dict[str, Any] | None:
        with self._lock(account):
            entry = self._entries.get(account)
            now = self.clock.time()
            if entry is not None and not force_check and now - entry.checked_at < self.ttl:
                return copy.deepcopy(entry.record)
            if entry is not None and self._current_version(account) == entry.version:
                entry.checked_at = now
                return copy.deepcopy(entry.record)
            record, version = self._read(account)
            self._entries[account] = _Entry(record, version, now)
            return copy.deepcopy(record)

    def _lock(self, account: str) -> threading.Lock:
        """One lock per account, so concurrent readers of a cold entry make one read, not many."""
        with self._guard:
            return self._locks.setdefault(account, threading.Lock())

    def _current_version(self, account: str) -> str | None:
        name = self.name(account)
        try:
            answer = self.client.describe_secret(SecretId=name)
        except ClientError as exc:
            if is_absent(self.client, exc, name):
                return None
            raise
        stages = answer.get("VersionIdsToStages", {})
        return next((version for version, labels in stages.items() if "AWSCURRENT" in labels), None)

    def _read(self, account: str) -> tuple[dict[str, Any] | None, str | None]:
        name = self.name(account)
        try:
            answer = self.client.get_secret_value(SecretId=name)
        except ClientError as exc:
            # InvalidRequest: scheduled for deletion. AccessDenied on a missing name: see secret_errors.
            if error_code(exc) == "InvalidRequestException" or is_absent(self.client, exc, name):
                return None, None
            raise
        try:
            record = json.loads(answer.get("SecretString") or "")
        except ValueError:
            raise ValueError(f"the token secret of account '{account}' is not JSON") from None
        if not isinstance(record, dict):
            raise ValueError(f"the token secret of account '{account}' is not a JSON object")
        return record, answer["VersionId"]


_CACHES: dict[tuple[int, str], tuple[Any, TokenCache]] = {}
_CACHES_GUARD = threading.Lock()


def _cache_for(client: SecretsManagerClient | None, prefix: str | None) -> TokenCache:
    """One cache per (client, prefix) for the life of the process; the default client is made once."""
    resolved = (prefix or os.environ.get("SECRET_PREFIX") or DEFAULT_PREFIX).rstrip("/")
    with _CACHES_GUARD:
        key = (id(client), resolved)
        held = _CACHES.get(key)
        if held is None:
            # Holding the client keeps its id from being reused by another object.
            held = (client, TokenCache(client, prefix=resolved))
            _CACHES[key] = held
        return held[1]


def get_token(
    account: str, *, prefix: str | None = None, client: SecretsManagerClient | None = None, clock: Clock = SYSTEM_CLOCK
) -> dict[str, Any]:
    """The account's token record, from Secrets Manager through the process-wide cache.

    ``prefix`` defaults to ``$SECRET_PREFIX`` or ``broker-tokens``. Raises TokenUnavailableError when
    the account has no token or its token has expired (a dead token is never handed out as good).

    Example:
        >>> token = get_token("angel-main")                                          # doctest: +SKIP
        >>> requests.get(url, headers={"Authorization": token["authorization"], **token["headers"]})  # doctest: +SKIP
    """
    if not is_account_id(account):
        raise ValueError("account ids match [a-z0-9][a-z0-9-]{0,62}")
    record = _cache_for(client, prefix).get(account)
    if record is None:
        raise TokenUnavailableError(account, "no token yet")
    if parse_iso(str(record["expires_at"])) <= clock.now():
        raise TokenUnavailableError(account, f"expired at {record['expires_at']}")
    return record


class TokenApiError(Exception):
    """A token API answer other than 2xx: its status, error code and reason.

    Example:
        >>> str(TokenApiError(403, "forbidden", "caller 'bot' may not read account 'x'"))
        "403 forbidden: caller 'bot' may not read account 'x'"
    """

    def __init__(self, status: int, error: str, message: str):
        self.status = status
        self.error = error
        self.message = message
        super().__init__(f"{status} {error}: {message}")


class TokenApiClient:
    """The token API over HTTPS, with an API key (Bearer) or AWS SigV4 (an AWS_IAM Function URL).

    With ``api_key`` the key is sent as ``Authorization: Bearer``. Without it, requests are signed
    with ``credentials`` (botocore credentials; by default the standard AWS credential chain) for the
    ``lambda`` service in the URL's region.

    Example:
        >>> api = TokenApiClient("https://abc.lambda-url.ap-south-1.on.aws", api_key="btk_...")  # doctest: +SKIP
        >>> api.token("angel-main")["authorization"]                                            # doctest: +SKIP
        'Bearer eyJ...'
        >>> TokenApiClient("https://abc.lambda-url.ap-south-1.on.aws").accounts()              # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        credentials: Credentials | None = None,
        region: str | None = None,
        timeout: float = 15.0,
        refresh_timeout: float = 130.0,
        session: requests.Session | None = None,
    ):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.refresh_timeout = refresh_timeout
        import requests  # noqa: PLC0415 - the bots' client loads it; the token API's TokenCache does not

        self.session = session or requests.Session()
        self._credentials = credentials
        self._region = region
        if api_key is None:
            self._region = region or self._region_of(self.url)
            if self._credentials is None:
                self._credentials = boto3.Session().get_credentials()
            if self._credentials is None:
                raise ValueError("no api_key and no AWS credentials to sign requests with")

    def accounts(self) -> list[dict[str, Any]]:
        """The caller's accounts and where each stands (never a token)."""
        return list(self._call("GET", "/accounts")["accounts"])

    def token(self, account: str) -> dict[str, Any]:
        """The account's token record (PiTrade: a freshly signed JWT)."""
        return dict(self._call("GET", f"/accounts/{self._account(account)}/token"))

    def refresh(self, account: str) -> dict[str, Any]:
        """Log the account in now (single flight) and return the new token record."""
        answer = self._call("POST", f"/accounts/{self._account(account)}/refresh", timeout=self.refresh_timeout)
        return dict(answer)

    @staticmethod
    def _account(account: str) -> str:
        if not is_account_id(account):
            raise ValueError("account ids match [a-z0-9][a-z0-9-]{0,62}")
        return quote(account)

    @staticmethod
    def _region_of(url: str) -> str | None:
        match = FUNCTION_URL_HOST.fullmatch(urlsplit(url).hostname or "")
        return match.group(1) if match else boto3.Session().region_name

    def _call(self, method: str, path: str, *, timeout: float | None = None) -> Any:
        url = self.url + path
        headers = {"Accept": "application/json"}
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key}"
        else:
            headers.update(self._signature(method, url, b""))
        answer = self.session.request(method, url, headers=headers, timeout=timeout or self.timeout)
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if not answer.ok:
            error = body.get("error", "error") if isinstance(body, dict) else "error"
            message = body.get("message", answer.reason) if isinstance(body, dict) else answer.reason
            raise TokenApiError(answer.status_code, str(error), str(message))
        return body

    def _signature(self, method: str, url: str, body: bytes) -> dict[str, str]:
        """SigV4 headers for a Function URL (service ``lambda``); the payload hash is sent, as it requires."""
        if not self._region or self._credentials is None:
            raise ValueError("cannot sign: pass region= (and credentials=) for this URL")
        request = AWSRequest(
            method=method, url=url, data=body, headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest()}
        )
        SigV4Auth(self._credentials.get_frozen_credentials(), "lambda", self._region).add_auth(request)
        return dict(request.headers.items())
