"""The embedded stack's Lambda Invoke endpoint: its functions, run in the stack's process.

Lambda's Invoke API (``POST /2015-03-31/functions/{FunctionName}/invocations``, the request body is
the event) for the functions the stack registers: a boto3 client whose ``AWS_ENDPOINT_URL_LAMBDA``
points here (the stack's state file sets it) reaches the real handler, as `broker-tokens refresh`
does in AWS. Protocol facts: a handler's result is the 200 body; a handler that raised answers 200
too, with the header ``X-Amz-Function-Error: Unhandled`` and ``{"errorMessage", "errorType"}`` as the
body (boto3 reports it as ``FunctionError``); an unknown function is a 404 with
``x-amzn-ErrorType: ResourceNotFoundException``. Only ``RequestResponse`` invocations are served.

One invocation of a function runs at a time, as in one Lambda container. Loopback only; the SigV4
signature is not checked (moto, beside it, does not check either).

Example:
    >>> functions = LocalFunctions({"local-Echo": lambda event, context: event}).start()
    >>> import boto3, json
    >>> client = boto3.client("lambda", endpoint_url=functions.url, region_name="ap-south-1",
    ...                       aws_access_key_id="x", aws_secret_access_key="x")
    >>> json.load(client.invoke(FunctionName="local-Echo", Payload=b'{"a": 1}')["Payload"])
    {'a': 1}
    >>> functions.stop()
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Self
from urllib.parse import unquote

from broker_tokens.logs import logger
from infra.local.lambda_context import LocalLambdaContext
from infra.local.loopback import LoopbackHandler, LoopbackServer

Handler = Callable[[Any, Any], Any]

INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/?]+)/invocations(?:\?.*)?")
# A function ARN (arn:aws:lambda:region:account:function:name[:qualifier]) names the function too.
FUNCTION_ARN = re.compile(r"arn:[^:]+:lambda:[^:]*:[^:]*:function:([^:]+)(?::[^:]+)?")
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
FUNCTION_TIMEOUT_SECONDS = 600.0


class LocalFunctions:
    """Lambda's Invoke API on 127.0.0.1 for a few named handlers.

    Example:
        >>> LocalFunctions({"local-RefresherFunction": lambda_handler}).start().url  # doctest: +SKIP
        'http://127.0.0.1:40123'
    """

    def __init__(self, handlers: Mapping[str, Handler], *, host: str = "127.0.0.1", port: int = 0):
        self.handlers = dict(handlers)
        self._locks = {name: threading.Lock() for name in self.handlers}
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Listen, serving each request on its own thread."""
        self._server = _Server(self._address, self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-lambda", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut open connections."""
        if self._server is not None:
            self._server.shutdown()
            self._server.cut_connections()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        """The endpoint, for ``AWS_ENDPOINT_URL_LAMBDA``."""
        if self._server is None:
            raise RuntimeError("not started")
        return f"http://{self._server.server_name}:{self._server.server_port}"

    def invoke(self, function: str, invocation_type: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one Invoke call."""
        name = _function_name(function)
        if name not in self.handlers:
            return _error(404, "ResourceNotFoundException", f"Function not found: {name}")
        if invocation_type != "RequestResponse":
            return _error(400, "InvalidParameterValueException", "only RequestResponse is served locally")
        try:
            event = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "InvalidRequestContentException", "Could not parse request body into json")
        with self._locks[name]:
            try:
                result = self.handlers[name](event, LocalLambdaContext(name, timeout_seconds=FUNCTION_TIMEOUT_SECONDS))
            except Exception as exc:  # what Lambda reports for a function that raised
                logger.info("local function raised", extra={"function": name, "error_type": type(exc).__name__})
                failure = {"errorMessage": str(exc), "errorType": type(exc).__name__}
                return 200, {"X-Amz-Function-Error": "Unhandled"}, json.dumps(failure).encode()
        return 200, {}, json.dumps(result).encode()


def _function_name(raw: str) -> str:
    """The function's name from the path segment (a name or an ARN).

    Example:
        >>> _function_name("arn%3Aaws%3Alambda%3Aap-south-1%3A1%3Afunction%3Alocal-RefresherFunction")
        'local-RefresherFunction'
    """
    value = unquote(raw)
    match = FUNCTION_ARN.fullmatch(value)
    return match.group(1) if match else value


def _error(status: int, kind: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"x-amzn-ErrorType": kind}, json.dumps({"Type": "User", "message": message}).encode()


class _Server(LoopbackServer):
    def __init__(self, address: tuple[str, int], functions: LocalFunctions) -> None:
        self.functions = functions
        super().__init__(address, _Handler)


class _Handler(LoopbackHandler):
    server: _Server
    server_version = "broker-tokens-local-lambda"

    def _dispatch(self) -> None:
        match = INVOKE_PATH.fullmatch(self.path)
        declared = self.headers.get("Content-Length", "0")
        if self.command != "POST" or match is None:
            self._send(*_error(404, "UnknownOperationException", "only Invoke is served locally"))
            return
        if not declared.isdigit() or int(declared) > MAX_PAYLOAD_BYTES:
            self.close_connection = True
            self._send(*_error(413, "RequestTooLargeException", "Request must be smaller than 6291456 bytes"))
            return
        body = self.rfile.read(int(declared))
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        self._send(*self.server.functions.invoke(match.group(1), invocation_type, body))

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
