"""Broker answers built in memory for the adapters' unit tests, and the error an adapter raises on one."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import pytest
import requests

from broker_tokens.clock import SystemClock
from broker_tokens.errors import BrokerError


def answer(status: int, body: object, content_type: str = "application/json") -> requests.Response:
    """A response as if the broker had sent it: a str body goes out as it is, anything else as JSON.

    Example:
        >>> answer(429, {"message": "slow down"}).json()
        {'message': 'slow down'}
        >>> answer(502, "<html>Bad gateway</html>", "text/html").headers["Content-Type"]
        'text/html'
    """
    response = requests.Response()
    response.status_code = status
    response._content = (body if isinstance(body, str) else json.dumps(body)).encode()
    response.headers["Content-Type"] = content_type
    return response


def raised(call: Callable[[], object]) -> BrokerError:
    """The BrokerError that ``call`` raises; the test fails when it raises none.

    Example:
        >>> raised(lambda: adapter._data(answer(502, "down", "text/plain"), "login")).kind  # doctest: +SKIP
        <ErrorKind.TRANSIENT: 'transient'>
    """
    with pytest.raises(BrokerError) as caught:
        call()
    return caught.value


class FrozenClock(SystemClock):
    """A clock stopped at one instant.

    Example:
        >>> from datetime import UTC
        >>> FrozenClock(datetime(2026, 11, 24, 2, 0, tzinfo=UTC)).time()
        1795485600.0
    """

    def __init__(self, at: datetime) -> None:
        self.at = at

    def time(self) -> float:
        """The frozen instant, in epoch seconds."""
        return self.at.timestamp()
