"""The token API's local front: HTTP on 127.0.0.1, turned into Lambda Function URL events.

Each request becomes a payload-format-2.0 event (rawPath, rawQueryString, lower-cased headers,
cookies, body with isBase64Encoded, requestContext.http) handed to ``token_api.app.lambda_handler``,
whose answer goes back as the HTTP response, as a Function URL does. The front serves the TokenApi
it is given by installing it as the container's API.

``auth_mode="iam"`` behaves like an AWS_IAM Function URL: a request must carry a valid SigV4
signature (service ``lambda``) by one of the identities added with :meth:`LocalFront.add_identity`,
whose ARN then appears as ``requestContext.authorizer.iam.userArn``; anything else is refused with
403 before the function runs. That is the test-only way to be an IAM caller.

Example:
    >>> with LocalFront(api) as front:                                              # doctest: +SKIP
    ...     requests.get(f"{front.url}/health", timeout=5).json()
    {'status': 'ok'}
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from broker_tokens.api.resolver import TokenApi
from broker_tokens.api.runtime import build_service, install
from broker_tokens.backend import LocalBackend
from broker_tokens.callers import CallerStore
from broker_tokens.clock import SYSTEM_CLOCK, Clock
from broker_tokens.config import Settings
from broker_tokens.logs import logger
from broker_tokens.runtime import build_refresher
from infra.local.lambda_context import LocalLambdaContext
from infra.local.loopback import LoopbackHandler, LoopbackServer
from infra.local.template import LocalResources
from token_api.app import lambda_handler

# The token API's usual port, and the person pages' (where the demo's Kite-family apps redirect);
# each falls back to any free port when taken.
DEFAULT_PORT = 8765
PERSON_PORT = 8766
# Lambda's synchronous invocation payload limit: a Function URL refuses larger requests itself.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
LOCAL_ACCOUNT_ID = "000000000000"
SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)"
    r"/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?Signature=(?P<signature>[0-9a-f]{64})"
)
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class Identity:
    """An IAM identity the front accepts SigV4 signatures from (iam mode).

    Example:
        >>> Identity("AKIDLOCAL", "local-secret", "arn:aws:iam::000000000000:user/bot").arn
        'arn:aws:iam::000000000000:user/bot'
    """

    access_key: str
    secret_key: str
    arn: str


def is_text(content_type: str | None) -> bool:
    """True for the media types a Function URL passes as text (others arrive base64-encoded).

    Example:
        >>> is_text("application/json; charset=utf-8"), is_text("application/octet-stream"), is_text(None)
        (True, False, False)
    """
    media = (content_type or "").split(";")[0].strip().lower()
    return bool(media) and (media.startswith(TEXT_TYPES) or media.endswith("+json"))


def function_url_event(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str = "127.0.0.1",
    host: str = "127.0.0.1",
    principal_arn: str | None = None,
    access_key: str | None = None,
) -> dict[str, Any]:
    """The Function URL event (payload format 2.0) of one HTTP request.

    Example:
        >>> event = function_url_event("GET", "/accounts?x=1", [("Accept", "*/*")], b"")
        >>> event["rawPath"], event["rawQueryString"], event["headers"], event["requestContext"]["http"]["method"]
        ('/accounts', 'x=1', {'accept': '*/*'}, 'GET')
    """
    parts = urlsplit(target)
    lowered: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    cookies = [c.strip() for c in lowered.pop("cookie", "").split(";") if c.strip()]
    params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    now = time.time()
    http = {
        "method": method.upper(),
        "path": parts.path,
        "protocol": "HTTP/1.1",
        "sourceIp": source_ip,
        "userAgent": lowered.get("user-agent", ""),
    }
    context: dict[str, Any] = {
        "accountId": "anonymous",
        "apiId": "local",
        "domainName": host,
        "domainPrefix": "local",
        "http": http,
        "requestId": str(uuid.uuid4()),
        "routeKey": "$default",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if principal_arn:
        context["accountId"] = LOCAL_ACCOUNT_ID
        context["authorizer"] = {
            "iam": {
                "accessKey": access_key,
                "accountId": LOCAL_ACCOUNT_ID,
                "callerId": access_key,
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": principal_arn,
                "userId": access_key,
            }
        }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": context,
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if params:
        event["queryStringParameters"] = params
    if body:
        try:
            text = body.decode("utf-8") if is_text(lowered.get("content-type")) else None
        except UnicodeDecodeError:
            text = None
        event["body"] = text if text is not None else base64.b64encode(body).decode()
        event["isBase64Encoded"] = text is None
    return event


def local_token_api(
    refresher_environment: Mapping[str, str],
    resources: LocalResources,
    *,
    clock: Clock = SYSTEM_CLOCK,
    auth_mode: str = "api_key",
) -> TokenApi:
    """The TokenApi as the embedded stack runs it: the function's environment, logins in-process.

    There is no refresher function locally, so REFRESHER_FUNCTION_NAME is dropped and a Refresher with
    the refresher function's own environment does the logins (LocalBackend).
    """
    environment = {
        **refresher_environment,
        **resources.environment("TokenApiFunction"),
        "AUTH_MODE": auth_mode,
    }
    environment.pop("REFRESHER_FUNCTION_NAME", None)
    refresher = build_refresher(Settings.from_env(refresher_environment), clock)
    return TokenApi(build_service(environment, clock=clock, backend=LocalBackend(refresher)))


@dataclass(frozen=True)
class DemoAccess:
    """The demo caller's API key and a curl line that reads a token with it."""

    key: str
    curl: str


def demo_access(table: str, url: str, account: str, *, client: Any = None) -> DemoAccess:
    """Create the demo caller (every account; read and refresh) and the curl line `make run` prints.

    Example:
        >>> demo_access(stack.resources.table_name, stack.front.url, "angel-demo").curl  # doctest: +SKIP
        'curl -s -H "Authorization: Bearer btk_..." http://127.0.0.1:8765/accounts/angel-demo/token'
    """
    key = CallerStore(table, client=client).add("demo", ["*"], ["read", "refresh"])
    if key is None:  # an API-key caller always gets a key; this keeps the type honest
        raise RuntimeError("no API key was made for the demo caller")
    return DemoAccess(key, f'curl -s -H "Authorization: Bearer {key}" {url}/accounts/{account}/token')


class LocalFront:
    """The token API on http://127.0.0.1:PORT, one Function URL event per request.

    Example:
        >>> front = LocalFront(api, auth_mode="iam").start()                                # doctest: +SKIP
        >>> front.add_identity("AKIDLOCAL", "local-secret", "arn:aws:iam::000000000000:user/bot")  # doctest: +SKIP
        >>> front.stop()                                                                    # doctest: +SKIP
    """

    def __init__(
        self,
        api: TokenApi | None = None,
        *,
        handler: Handler = lambda_handler,
        auth_mode: str = "api_key",
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "ap-south-1",
        function_name: str = "broker-tokens-token-api",
    ):
        if auth_mode not in ("api_key", "iam"):
            raise ValueError("auth_mode must be 'api_key' or 'iam'")
        self.api = api
        self.handler = handler
        self.auth_mode = auth_mode
        self.region = region
        self.function_name = function_name
        self._address = (host, port)
        self._identities: dict[str, Identity] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def add_identity(self, access_key: str, secret_key: str, arn: str) -> Identity:
        """Accept SigV4 signatures made with this key pair, as the IAM principal ``arn`` (iam mode)."""
        identity = Identity(access_key, secret_key, arn)
        self._identities[access_key] = identity
        return identity

    def start(self) -> Self:
        """Install the API (when given) and serve on a daemon thread; a busy fixed port falls back to any."""
        if self._server is not None:
            return self
        if self.api is not None:
            install(self.api)
        try:
            self._server = _Server(self._address, self)
        except OSError:
            if self._address[1] == 0:
                raise
            self._server = _Server((self._address[0], 0), self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="token-api-front", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections, forget the installed API."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.cut_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.api is not None:
            install(None)

    @property
    def url(self) -> str:
        """The base URL (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("the front is not running")
        return f"http://{self._server.server_name}:{self._server.server_port}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- one request ---------------------------------------------------------------------------------

    def answer(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """(status, headers, body) for one request, as the Function URL and the function would answer."""
        identity = None
        if self.auth_mode == "iam":
            identity = self._signer(method, target, {k.lower(): v for k, v in headers}, body)
            if identity is None:
                return _plain(403, {"Message": "Forbidden"})
        event = function_url_event(
            method,
            target,
            headers,
            body,
            principal_arn=identity.arn if identity else None,
            access_key=identity.access_key if identity else None,
        )
        try:
            result = self.handler(event, LocalLambdaContext(self.function_name, timeout_seconds=120))
        except Exception:  # a function error: the Function URL answers 502, the details stay in the log
            logger.exception("token api front: the function raised")
            return _plain(502, {"Message": "Internal Server Error"})
        return _response(result)

    def _signer(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Identity | None:
        """The identity whose valid SigV4 signature this request carries, or None."""
        match = SIGV4.fullmatch(headers.get("authorization", ""))
        if not match or match["service"] != "lambda" or match["region"] != self.region:
            return None
        identity = self._identities.get(match["key"])
        stamp = headers.get("x-amz-date", "")
        signed = match["signed"].split(";")
        if identity is None or stamp[:8] != match["date"] or "host" not in signed:
            return None
        if any(name not in headers for name in signed):
            return None
        declared = headers.get("x-amz-content-sha256")
        if (body or declared) and declared != hashlib.sha256(body).hexdigest():
            return None  # a Function URL wants the payload hash, and it must be this body's
        request = AWSRequest(
            method=method, url=f"http://{headers['host']}{target}", data=body, headers={n: headers[n] for n in signed}
        )
        request.context["timestamp"] = stamp
        signer = SigV4Auth(Credentials(identity.access_key, identity.secret_key), "lambda", self.region)
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        return identity if hmac.compare_digest(expected, match["signature"]) else None


def _plain(status: int, body: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps(body).encode()


def _response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """A function's answer as a Function URL sends it (a bare value is a 200 JSON body)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return _plain(200, result)
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
    headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
    return int(result["statusCode"]), headers, body


class _Server(LoopbackServer):
    def __init__(self, address: tuple[str, int], front: LocalFront) -> None:
        self.front = front
        super().__init__(address, _Handler)


class _Handler(LoopbackHandler):
    server: _Server
    server_version = "broker-tokens-local-front"

    # A Function URL hands every method to the function: HEAD and OPTIONS too (the simulators refuse them).
    def do_HEAD(self) -> None:  # noqa: N802 - http.server's dispatch name
        self._dispatch()

    def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's dispatch name
        self._dispatch()

    def _dispatch(self) -> None:
        declared = self.headers.get("Content-Length", "0")
        if self.headers.get("Transfer-Encoding") or not declared.isdigit():
            self.close_connection = True
            self._send(*_plain(411, {"Message": "Length Required"}))
            return
        if int(declared) > MAX_PAYLOAD_BYTES:
            self.close_connection = True
            self._send(*_plain(413, {"Message": "Request must be smaller than 6291456 bytes"}))
            return
        body = self.rfile.read(int(declared))
        status, headers, payload = self.server.front.answer(self.command, self.path, list(self.headers.items()), body)
        self._send(status, headers, payload)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
