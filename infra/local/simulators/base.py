"""The common frame of every broker simulator: an HTTP server on loopback, routes, faults, records.

A broker simulator stands for a real broker in tests and in the embedded stack, so it is as strict as
the broker: exact paths (no trailing-slash or case forgiveness), exact methods, strict bodies. It runs
in-process on a daemon thread (stdlib ThreadingHTTPServer, HTTP/1.1 with keep-alive) and stops by
itself: `stop()` ends the serving loop, cuts every open connection and wakes any injected hang.

Writing a simulator:
    >>> class EchoSimulator(SimulatorServer):
    ...     root_path = "/api"  # the path part of the broker's API root; `url` includes it
    ...     def __init__(self, clock: Clock | None = None) -> None:
    ...         super().__init__(clock)
    ...         self.add_route("POST", "/echo", "echo", self._echo)
    ...     def _echo(self, request: Request) -> Response:
    ...         return Response.json({"got": text_field(request.json_object(), "word")})
    >>> with EchoSimulator() as sim:
    ...     sim.url.startswith("http://127.0.0.1:") and sim.url.endswith("/api")
    True

What the base does for every request, in order: read the body strictly (Content-Length only, at most
1 MiB), find the route (404 / 405 otherwise), note a `RequestRecord` (before anything can eat the
request, so injected faults are counted too), apply `faults.latency`, then at most one armed transport
fault (hang, then fail / rate-limit / malformed), then call the handler. A handler raising
`BadRequestError` gets the simulator's `answer_bad_request`; one raising `RefusedError(response)` gets
that response. The application faults (reject_totp, reject_validation, transient_error) mean something
only to a broker, so each simulator takes them with `faults.take(...)`.

Each simulator overrides the `answer_*` hooks so that errors look like its broker's, and `account_of`
so that records (and `count`) know whose request it was.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from email.message import Message
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import parse_qs, urlsplit

from infra.local.loopback import LoopbackHandler, LoopbackServer

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_048_576
MAX_HANG_SECONDS = 120.0
_POLL_SECONDS = 0.02


class Clock(Protocol):
    """Anything with `.time()` in epoch seconds: the `time` module, or a `ManualClock` in tests."""

    def time(self) -> float:
        """Epoch seconds now."""
        ...


class ManualClock:
    """A clock that moves only when told to, shared by a test and a simulator (thread-safe).

    Example:
        >>> clock = ManualClock(1_700_000_010.0)
        >>> clock.advance(30)
        1700000040.0
    """

    def __init__(self, start: float = 1_700_000_010.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def time(self) -> float:
        """The current simulated epoch second."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by `seconds` and return the new time."""
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, at: float) -> None:
        """Jump to epoch second `at` (backwards too, to simulate a clock correction)."""
        with self._lock:
            self._now = float(at)


class BadRequestError(Exception):
    """A request the broker refuses as malformed; the simulator shapes it with `answer_bad_request`.

    Example:
        >>> BadRequestError("password is required").status
        400
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class RefusedError(Exception):
    """Raised anywhere in a handler to answer `response` at once (a gateway check, a rate limit).

    Example:
        >>> RefusedError(Response.text("Access denied", 403)).response.status
        403
    """

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def media_type(value: str | None) -> str:
    """The bare, lower-cased media type of a Content-Type or Accept entry ("" when absent).

    Example:
        >>> media_type("Application/JSON; charset=utf-8")
        'application/json'
    """
    if not value:
        return ""
    return value.split(";", 1)[0].strip().lower()


def text_field(payload: Mapping[str, Any], name: str) -> str:
    """A required, non-empty string field of a decoded body; anything else is a `BadRequestError`.

    Example:
        >>> text_field({"clientcode": "A1"}, "clientcode")
        'A1'
    """
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequestError(f"{name} is required and must be a non-empty string")
    return value


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadRequestError(f"duplicate JSON key {key!r}")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise BadRequestError(f"{name} is not JSON")


@dataclasses.dataclass
class Request:
    """One request as a handler sees it. `account` may be set by the handler for the record.

    Example (inside a handler):
        >>> request = Request("POST", "/login", "", Message(), b'{"a": "b"}', "login")
        >>> request.json_object(require_content_type=False)
        {'a': 'b'}
    """

    method: str
    path: str
    query: str
    headers: Message
    body: bytes
    endpoint: str | None
    account: str | None = None

    def header(self, name: str) -> str | None:
        """The header's value (case-insensitive name), None when absent."""
        value = self.headers.get(name)
        return None if value is None else str(value)

    def query_params(self) -> dict[str, str]:
        """The query string as a dict; a repeated or malformed parameter is a `BadRequestError`."""
        return _single_values(self.query, "query parameter")

    def json_object(self, *, require_content_type: bool = True) -> dict[str, Any]:
        """The body as a JSON object: UTF-8, no NaN, no duplicate keys; else `BadRequestError`.

        With `require_content_type`, a Content-Type other than application/json is a 415.
        """
        if require_content_type and media_type(self.header("Content-Type")) != "application/json":
            raise BadRequestError("Content-Type must be application/json", status=415)
        try:
            value = json.loads(
                self.body.decode("utf-8"),
                object_pairs_hook=_refuse_duplicate_keys,
                parse_constant=_refuse_constant,
            )
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise BadRequestError("the body is not valid JSON") from error
        if not isinstance(value, dict):
            raise BadRequestError("the body must be a JSON object")
        return value

    def form(self) -> dict[str, str]:
        """The body as application/x-www-form-urlencoded fields (415 for another Content-Type).

        A repeated field or a malformed pair is a `BadRequestError`; blank values are kept.
        """
        if media_type(self.header("Content-Type")) != "application/x-www-form-urlencoded":
            raise BadRequestError("Content-Type must be application/x-www-form-urlencoded", status=415)
        try:
            text = self.body.decode("ascii")
        except UnicodeDecodeError as error:
            raise BadRequestError("a form body must be ASCII (percent-encoded)") from error
        return _single_values(text, "form field")


def _single_values(text: str, what: str) -> dict[str, str]:
    if not text:
        return {}
    try:
        parsed = parse_qs(text, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequestError(f"malformed {what}s") from error
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise BadRequestError(f"repeated {what}: {', '.join(repeated)}")
    return {name: values[0] for name, values in parsed.items()}


@dataclasses.dataclass(frozen=True)
class Response:
    """An answer to send. Build it with `json`, `text` or `html`.

    Example:
        >>> Response.json({"status": True}).content_type
        'application/json'
    """

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(
        cls,
        payload: Any,
        status: int = 200,
        *,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """A JSON answer (compact, UTF-8)."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return cls(status, body, content_type, tuple((headers or {}).items()))

    @classmethod
    def text(
        cls,
        text: str,
        status: int = 200,
        *,
        content_type: str = "text/plain; charset=utf-8",
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """A plain-text answer."""
        return cls(status, text.encode("utf-8"), content_type, tuple((headers or {}).items()))

    @classmethod
    def html(cls, page: str, status: int = 200, *, headers: Mapping[str, str] | None = None) -> Response:
        """An HTML answer, as a proxy, a load balancer or a maintenance page gives."""
        return cls.text(page, status, content_type="text/html; charset=utf-8", headers=headers)


@dataclasses.dataclass
class RequestRecord:
    """What the simulator saw of one request (never its body or headers: they hold secrets).

    `status` is None when no answer was sent (the connection was cut by `stop()`); `fault` names the
    injected fault that answered or delayed the request; `at` is the simulator clock on arrival.

    Example:
        >>> [(r.endpoint, r.status, r.fault) for r in sim.requests]  # doctest: +SKIP
        [('login', 503, 'fail'), ('login', 200, None)]
    """

    method: str
    path: str
    endpoint: str | None
    account: str | None
    at: float
    status: int | None = None
    fault: str | None = None


TRANSPORT_FAULTS = ("hang", "fail", "rate_limit", "malformed")
APPLICATION_FAULTS = ("reject_totp", "reject_validation", "transient_error")


@dataclasses.dataclass
class ArmedFault:
    """One armed fault: its kind, firings left, endpoint filter, and the status or seconds it uses.

    Example:
        >>> ArmedFault("fail", 2, "login", status=502).status
        502
    """

    kind: str
    remaining: int
    endpoint: str | None
    status: int = 503
    seconds: float = 0.0


class Faults:
    """Fault switches for one simulator; each `*_next` arms a fault for the next `count` requests.

    `endpoint` limits a fault to one route's endpoint name (as the simulator declares it, e.g.
    "login", "profile"); None means any request. A fault's count is consumed when it fires. Faults of
    one kind fire in the order they were armed. All methods are thread-safe.

    Example:
        >>> faults = Faults()
        >>> faults.fail_next(2, status=503)
        >>> faults.take("fail", "login").status, faults.pending("fail")
        (503, 1)
    """

    def __init__(self, known_endpoints: Callable[[], Collection[str]] | None = None) -> None:
        self._lock = threading.Lock()
        self._armed: list[ArmedFault] = []
        self._latency = 0.0
        self._known_endpoints = known_endpoints

    @property
    def latency(self) -> float:
        """Seconds added to every request (0 to MAX_HANG_SECONDS); cut short by `stop()`."""
        with self._lock:
            return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._check_seconds(seconds)
        with self._lock:
            self._latency = float(seconds)

    def fail_next(self, count: int = 1, status: int = 503, endpoint: str | None = None) -> None:
        """The next `count` requests answer HTTP `status` (a 5xx) with an HTML error page."""
        if not 500 <= status <= 599:
            raise ValueError("fail_next takes a 5xx status")
        self._arm(ArmedFault("fail", count, endpoint, status=status))

    def hang_next(self, count: int = 1, seconds: float = 5.0, endpoint: str | None = None) -> None:
        """The next `count` requests wait `seconds` (at most MAX_HANG_SECONDS) before being served."""
        self._check_seconds(seconds)
        self._arm(ArmedFault("hang", count, endpoint, seconds=float(seconds)))

    def rate_limit_next(self, count: int = 1, endpoint: str | None = None) -> None:
        """The next `count` requests get the broker's own rate-limit answer."""
        self._arm(ArmedFault("rate_limit", count, endpoint))

    def malformed_next(self, count: int = 1, endpoint: str | None = None) -> None:
        """The next `count` requests get HTTP 200 with an HTML page where JSON was due."""
        self._arm(ArmedFault("malformed", count, endpoint))

    def reject_totp_next(self, count: int = 1) -> None:
        """The next `count` logins that carry a valid TOTP code are rejected as an invalid code."""
        self._arm(ArmedFault("reject_totp", count, None))

    def reject_validation_next(self, count: int = 1) -> None:
        """The next `count` validation (profile) calls with a live token reject it as invalid."""
        self._arm(ArmedFault("reject_validation", count, None))

    def transient_error_next(self, count: int = 1, endpoint: str | None = None) -> None:
        """The next `count` calls get the broker's "try again later" application error."""
        self._arm(ArmedFault("transient_error", count, endpoint))

    def take(self, kind: str, endpoint: str | None) -> ArmedFault | None:
        """Consume one firing of the first armed `kind` fault that applies to `endpoint`, if any."""
        with self._lock:
            for armed in self._armed:
                if armed.kind == kind and armed.endpoint in (None, endpoint):
                    armed.remaining -= 1
                    if armed.remaining == 0:
                        self._armed.remove(armed)
                    return dataclasses.replace(armed)
        return None

    def pending(self, kind: str | None = None) -> int:
        """How many firings are still armed (of one kind, or of all)."""
        with self._lock:
            return sum(armed.remaining for armed in self._armed if kind in (None, armed.kind))

    def clear(self) -> None:
        """Disarm everything and set latency back to 0."""
        with self._lock:
            self._armed.clear()
            self._latency = 0.0

    def _arm(self, fault: ArmedFault) -> None:
        if fault.remaining < 1:
            raise ValueError("a fault count must be at least 1")
        if fault.endpoint is not None and self._known_endpoints is not None:
            known = self._known_endpoints()
            if fault.endpoint not in known:
                raise ValueError(f"unknown endpoint {fault.endpoint!r}; known: {', '.join(sorted(known))}")
        with self._lock:
            self._armed.append(fault)

    @staticmethod
    def _check_seconds(seconds: float) -> None:
        if not 0 <= seconds <= MAX_HANG_SECONDS:
            raise ValueError(f"seconds must be between 0 and {MAX_HANG_SECONDS}")


class RateLimiter:
    """Sliding-window limits per key (an account, an IP) on a simulator's clock.

    Only admitted requests count, so a client that waits out the window gets through again.

    Example:
        >>> clock = ManualClock(100.0)
        >>> logins = RateLimiter(clock, (1, 1.0))
        >>> logins.admit("A1"), logins.admit("A1")
        (True, False)
        >>> _ = clock.advance(1.0)
        >>> logins.admit("A1")
        True
    """

    def __init__(self, clock: Clock, *limits: tuple[int, float]) -> None:
        if not limits or any(count < 1 or period <= 0 for count, period in limits):
            raise ValueError("limits are (count >= 1, period > 0) pairs")
        self._clock = clock
        self._limits = limits
        self._longest = max(period for _, period in limits)
        self._history_size = max(count for count, _ in limits)
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str) -> bool:
        """Count one request for `key` and say whether it is within every limit."""
        now = self._clock.time()
        with self._lock:
            seen = self._seen.setdefault(key, deque(maxlen=self._history_size))
            while seen and seen[0] <= now - self._longest:
                seen.popleft()
            for count, period in self._limits:
                if sum(1 for at in seen if at > now - period) >= count:
                    return False
            seen.append(now)
            return True


@dataclasses.dataclass(frozen=True)
class _Route:
    endpoint: str
    handler: Callable[[Request], Response]


class SimulatorServer:
    """The base of every broker simulator: routes, strict request reading, faults, records, lifecycle.

    Subclasses set `root_path` (the path of the broker's API root, "" when it has none), register
    routes with `add_route` in `__init__`, and override the `answer_*` hooks and `account_of`.

    Example:
        >>> sim = SimulatorServer().start()
        >>> sim.url.startswith("http://127.0.0.1:")
        True
        >>> sim.stop()
    """

    root_path = ""

    def __init__(self, clock: Clock | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.clock: Clock = clock if clock is not None else time
        self.faults = Faults(self.endpoints)
        self._host = host
        self._port = port
        self._routes: dict[tuple[str, str], _Route] = {}
        self._records: list[RequestRecord] = []
        self._records_lock = threading.Lock()
        self._lifecycle_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----- routes -----------------------------------------------------------------------------------

    def add_route(self, method: str, path: str, endpoint: str, handler: Callable[[Request], Response]) -> None:
        """Serve `method path` (path relative to `root_path`) with `handler`, named `endpoint`."""
        if not path.startswith("/"):
            raise ValueError("a route path starts with '/'")
        self._routes[(method.upper(), self.root_path + path)] = _Route(endpoint, handler)

    def endpoints(self) -> frozenset[str]:
        """The endpoint names this simulator declares (what `faults.*_next(endpoint=...)` accepts)."""
        return frozenset(route.endpoint for route in self._routes.values())

    # ----- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind (127.0.0.1, a free port the first time, the same port on a restart) and serve."""
        with self._lifecycle_lock:
            if self._server is not None:
                return self
            server = _Server((self._host, self._port), self)
            self._port = server.server_address[1]
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": _POLL_SECONDS},
                name=f"{type(self).__name__}:{self._port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and wake injected hangs. Idempotent."""
        with self._lifecycle_lock:
            server, thread = self._server, self._thread
            self._server, self._thread = None, None
            if server is None:
                return
            server.stop_event.set()
            server.shutdown()
            server.server_close()
            server.cut_connections()
            if thread is not None:
                thread.join(timeout=5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the simulator is serving."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port (after `start()`)."""
        if not self._port:
            raise RuntimeError("the simulator is not started")
        return self._port

    @property
    def url(self) -> str:
        """The broker's API root as BROKERS.md names it, on this host and port (path included)."""
        return f"http://{self._host}:{self.port}{self.root_path}"

    # ----- records ----------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request seen so far, oldest first."""
        with self._records_lock:
            return [dataclasses.replace(record) for record in self._records]

    def count(self, endpoint: str | None = None, account: str | None = None) -> int:
        """How many requests reached `endpoint` (any when None) for `account` (any when None)."""
        with self._records_lock:
            return sum(
                1
                for record in self._records
                if endpoint in (None, record.endpoint) and account in (None, record.account)
            )

    # ----- hooks for subclasses ---------------------------------------------------------------------

    def account_of(self, request: Request) -> str | None:
        """Whose request this is, read before any fault can eat it (for records). Must not raise."""
        return None

    def answer_not_found(self, request: Request) -> Response:
        """The broker's answer to an unknown path."""
        return Response.json({"error": "not found"}, 404)

    def answer_method_not_allowed(self, request: Request, allowed: Collection[str]) -> Response:
        """The broker's answer to a known path with another method."""
        return Response.json({"error": "method not allowed"}, 405, headers={"Allow": ", ".join(allowed)})

    def answer_bad_request(self, request: Request, error: BadRequestError) -> Response:
        """The broker's answer to a malformed request."""
        return Response.json({"error": error.reason}, error.status)

    def answer_server_error(self, request: Request, status: int) -> Response:
        """A 5xx as the broker's edge (load balancer, proxy) sends it: an HTML page."""
        title = f"{status} Service Unavailable" if status == 503 else f"{status} Server Error"
        page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
        return Response.html(page, status)

    def answer_rate_limited(self, request: Request) -> Response:
        """The broker's own rate-limit answer."""
        return Response.json({"error": "too many requests"}, 429)

    def answer_malformed(self, request: Request) -> Response:
        """HTTP 200 with an HTML page where JSON was due (a captive portal, a maintenance page)."""
        page = "<html><head><title>Maintenance</title></head><body>Back soon.</body></html>"
        return Response.html(page, 200)

    # ----- serving ----------------------------------------------------------------------------------

    def _record(self, record: RequestRecord) -> RequestRecord:
        with self._records_lock:
            self._records.append(record)
        return record

    def _update(self, record: RequestRecord, **changes: Any) -> None:
        with self._records_lock:
            for name, value in changes.items():
                setattr(record, name, value)

    def _identify(self, request: Request) -> str | None:
        try:
            return self.account_of(request)
        except Exception:  # a record without an account beats a dropped request
            logger.exception("account_of failed")
            return None

    def _serve(self, request: Request, stop_event: threading.Event, framing_error: Response | None) -> Response | None:
        """Answer one request; None means: close the connection without an answer."""
        route, allowed = self._match(request)
        request.endpoint = route.endpoint if route else None
        record = RequestRecord(request.method, request.path, request.endpoint, None, self.clock.time())
        record.account = self._identify(request)
        self._record(record)
        response = self._answer(
            request, record, route=route, allowed=allowed, stop_event=stop_event, framing_error=framing_error
        )
        self._update(
            record,
            account=request.account or record.account,
            status=response.status if response is not None else None,
        )
        logger.debug("%s %s -> %s", request.method, request.path, record.status)
        return response

    def _match(self, request: Request) -> tuple[_Route | None, list[str]]:
        route = self._routes.get((request.method, request.path))
        allowed = sorted(method for method, path in self._routes if path == request.path)
        return route, allowed

    def _answer(
        self,
        request: Request,
        record: RequestRecord,
        *,
        route: _Route | None,
        allowed: list[str],
        stop_event: threading.Event,
        framing_error: Response | None,
    ) -> Response | None:
        latency = self.faults.latency
        if latency and stop_event.wait(latency):
            return None
        hang = self.faults.take("hang", request.endpoint)
        if hang is not None:
            self._update(record, fault="hang")
            if stop_event.wait(hang.seconds):
                return None
        for kind in ("fail", "rate_limit", "malformed"):
            fault = self.faults.take(kind, request.endpoint)
            if fault is not None:
                self._update(record, fault=kind)
                if kind == "fail":
                    return self.answer_server_error(request, fault.status)
                if kind == "rate_limit":
                    return self.answer_rate_limited(request)
                return self.answer_malformed(request)
        if framing_error is not None:
            return framing_error
        if route is None:
            if allowed:
                return self.answer_method_not_allowed(request, allowed)
            return self.answer_not_found(request)
        try:
            return route.handler(request)
        except RefusedError as refusal:
            return refusal.response
        except BadRequestError as error:
            return self.answer_bad_request(request, error)
        except Exception:
            logger.exception("simulator handler failed on %s %s", request.method, request.path)
            return self.answer_server_error(request, 500)


class _Server(LoopbackServer):
    def __init__(self, address: tuple[str, int], simulator: SimulatorServer) -> None:
        self.simulator = simulator
        self.stop_event = threading.Event()
        super().__init__(address, _Handler)


class _Handler(LoopbackHandler):
    server: _Server
    server_version = "broker-simulator"

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header on the simulator's clock: a broker whose clock differs says so in every answer."""
        return super().date_time_string(self.server.simulator.clock.time() if timestamp is None else timestamp)

    def _dispatch(self) -> None:
        stop_event = self.server.stop_event
        if stop_event.is_set():
            self.close_connection = True
            return
        body, framing_error = self._read_body()
        target = urlsplit(self.path)
        request = Request(self.command, target.path, target.query, self.headers, body, None)
        response = self.server.simulator._serve(request, stop_event, framing_error)
        if response is None or stop_event.is_set():
            self.close_connection = True
            return
        self._send(response)

    def _read_body(self) -> tuple[bytes, Response | None]:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return b"", Response.text("Content-Length required", 411)
        declared = self.headers.get("Content-Length")
        if declared is None:
            return b"", None
        if not declared.isdigit():
            self.close_connection = True
            return b"", Response.text("invalid Content-Length", 400)
        length = int(declared)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return b"", Response.text("request body too large", 413)
        return self.rfile.read(length), None

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            if response.content_type:
                self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:
            self.close_connection = True  # the client went away; nothing to tell it
