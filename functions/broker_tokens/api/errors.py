"""The token API's refusals: an HTTP status, a short error code and a reason a person can act on."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A refusal the API answers as ``{"error": code, "message": reason, ...}`` with ``status``.

    Example:
        >>> err = ApiError(400, "bad-request", "account ids match [a-z0-9][a-z0-9-]{0,62}")
        >>> err.status, err.body()["error"]
        (400, 'bad-request')
    """

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        self.status = status
        self.error = error
        self.message = message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(f"{status} {error}: {message}")

    def body(self) -> dict[str, Any]:
        """The JSON answer."""
        return {"error": self.error, "message": self.message, **self.extra}


def bad_request(message: str) -> ApiError:
    """A 400 naming what is wrong with the input.

    Example:
        >>> bad_request("body is not valid JSON").status
        400
    """
    return ApiError(400, "bad-request", message)
