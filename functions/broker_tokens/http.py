"""HTTP for adapters: one session each, a timeout on every call, transport failures as error kinds.

Retries are the core's business (by error kind), so nothing here retries.
"""

from __future__ import annotations

from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from broker_tokens.clock import SYSTEM_CLOCK, Clock
from broker_tokens.deadline import Deadline
from broker_tokens.errors import rate_limited, transient

if TYPE_CHECKING:
    import requests

USER_AGENT = "broker-tokens/0.1"


class HttpClient:
    """A requests.Session that always sends a timeout and turns transport failures into transients.

    With a ``deadline`` (the run's), no request starts after it and none waits past it.

    Example:
        >>> client = HttpClient("https://apiconnect.angelone.in", timeout=10)
        >>> client.url("/rest/x")
        'https://apiconnect.angelone.in/rest/x'
    """

    def __init__(self, base_url: str, *, timeout: float, connect_timeout: float = 5.0, clock: Clock = SYSTEM_CLOCK):
        self.base_url = base_url.rstrip("/")
        self.timeout = (min(connect_timeout, timeout), timeout)
        # requests is loaded by the first client (a login), not by importing an adapter (cold start).
        import requests  # noqa: PLC0415

        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.clock = clock
        # Seconds the broker's clock is ahead of ours, from the Date header of its last answer.
        self.server_offset: float | None = None
        self.deadline: Deadline | None = None
        # Called once, right before the next request goes (the login pacing's last check).
        self._before_next: Callable[[], None] | None = None

    def before_next_request(self, gate: Callable[[], None] | None) -> None:
        """Run ``gate`` right before the next request is sent, once (None: no gate).

        Example:
            >>> client = HttpClient("https://api.tradejini.com/v2", timeout=10)
            >>> client.before_next_request(lambda: None)
        """
        self._before_next = gate

    def url(self, path: str) -> str:
        """Join the API root and a path (an absolute URL passes through)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request; timeouts and connection errors become transient BrokerErrors."""
        gate, self._before_next = self._before_next, None
        if gate is not None:
            gate()
        timeout = self._timeout(f"{method} {path}")
        kwargs.setdefault("timeout", timeout)
        sent = self.clock.time()
        import requests  # noqa: PLC0415 - loaded already by __init__: a dictionary lookup

        try:
            response = self.session.request(method, self.url(path), **kwargs)
        except requests.Timeout:
            cut = " (the run's deadline)" if timeout[1] < self.timeout[1] else ""
            raise transient(f"{method} {path}: no answer within {timeout[1]:.3g} s{cut}") from None
        except requests.ConnectionError:
            raise transient(f"{method} {path}: connection failed") from None
        except requests.RequestException as exc:
            raise transient(f"{method} {path}: {type(exc).__name__}") from None
        self._note_server_time(response, (sent + self.clock.time()) / 2)
        return response

    def _timeout(self, what: str) -> tuple[float, float]:
        """The (connect, read) timeouts, cut to what is left before the deadline."""
        if self.deadline is None:
            return self.timeout
        self.deadline.check(what)
        return (self.deadline.cap(self.timeout[0]), self.deadline.cap(self.timeout[1]))

    def _note_server_time(self, response: requests.Response, local: float) -> None:
        """Remember how far the broker's clock is from ours (Date has whole seconds: take the middle)."""
        try:
            server = parsedate_to_datetime(response.headers["Date"]).timestamp() + 0.5
        except (KeyError, TypeError, ValueError, IndexError):
            return
        self.server_offset = server - local

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()


def json_body(response: requests.Response, what: str) -> Any:
    """The JSON of an answer, or a transient error when the broker sent HTML or garbage.

    An HTML page in place of JSON is what gateways and maintenance pages send; it says nothing
    about the credentials, so it is transient.

    Example:
        >>> import requests
        >>> r = requests.Response(); r.status_code = 200; r._content = b'{"a": 1}'
        >>> json_body(r, "login")
        {'a': 1}
    """
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "unknown type").split(";")[0]
        raise transient(
            f"{what}: HTTP {response.status_code} answer was not JSON ({kind})", status=response.status_code
        ) from None


def raise_for_transport_status(response: requests.Response, what: str) -> None:
    """Map the statuses every broker shares: 5xx and 429 are transient.

    Example:
        >>> from broker_tokens.errors import BrokerError
        >>> import requests
        >>> r = requests.Response(); r.status_code = 503
        >>> try: raise_for_transport_status(r, "login")
        ... except BrokerError as e: print(e.kind.value)
        transient
    """
    if response.status_code >= 500:
        raise transient(f"{what}: broker answered HTTP {response.status_code}", status=response.status_code)
    if response.status_code == 429:
        raise rate_limited(f"{what}: rate limited (HTTP 429)", status=429)
