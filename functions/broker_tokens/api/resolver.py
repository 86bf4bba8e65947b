"""The token API's HTTP face: the routes of its OpenAPI document, wired to the TokenService.

Every answer is JSON with ``Cache-Control: no-store``, in the Function URL's response format (payload
2.0). Refusals (ApiError) keep their status; a refresh the backend could not hand over is a 502 (504
when it timed out); an unknown path is a 404 and a known path with another method a 405 naming the
allowed ones. Anything unexpected is a 500 that is logged without the event.

The router is this module's own, table-driven from ``openapi_document()`` (seven routes): the
Powertools event handler it replaced cost about 30 ms of every cold start (issue 15), and kept the
current event on its class, which made concurrent requests (the local front) take turns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from broker_tokens.api.errors import ApiError
from broker_tokens.api.openapi import openapi_document
from broker_tokens.api.service import Answer, TokenService
from broker_tokens.backend import BackendError
from broker_tokens.logs import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

JSON = "application/json"
NO_STORE = {"Cache-Control": "no-store"}

# A route's work: given the service (built on first use), the event and the path's account ("" if none).
Work = Callable[[Callable[[], TokenService], dict[str, Any], str], Answer]
Route = tuple[str, str, re.Pattern[str]]


def route_table(document: dict[str, Any]) -> list[Route]:
    """(METHOD, OpenAPI path, path regex capturing its parameter) for every operation of a document.

    Example:
        >>> [(m, t, p.pattern) for m, t, p in route_table({"paths": {"/a/{id}": {"get": {}}}})]
        [('GET', '/a/{id}', '/a/([^/]+)')]
    """
    table: list[Route] = []
    for path, operations in document["paths"].items():
        segments = ("([^/]+)" if part.startswith("{") else re.escape(part) for part in path.split("/"))
        pattern = re.compile("/".join(segments))
        table.extend((method.upper(), path, pattern) for method in operations)
    return table


def request_line(event: Mapping[str, Any]) -> tuple[str, str]:
    """The method and path of a Function URL event (payload 2.0).

    Example:
        >>> request_line({"rawPath": "/accounts", "requestContext": {"http": {"method": "get"}}})
        ('GET', '/accounts')
    """
    http = (event.get("requestContext") or {}).get("http") or {}
    return str(http.get("method", "")).upper(), str(event.get("rawPath") or http.get("path") or "/")


class TokenApi:
    """The routes around one TokenService (or a function that builds it on first use).

    Example:
        >>> api = TokenApi(build_service)                       # doctest: +SKIP
        >>> api.handle(function_url_event, context)["statusCode"]  # doctest: +SKIP
        200
    """

    def __init__(self, service: TokenService | Callable[[], TokenService]):
        self._service: Callable[[], TokenService] = (lambda: service) if isinstance(service, TokenService) else service
        self.document = openapi_document()
        self._routes = route_table(self.document)
        self.operations: dict[tuple[str, str], Work] = self._operations()

    def handle(self, event: dict[str, Any], context: LambdaContext | None = None) -> dict[str, Any]:
        """Answer one Function URL event."""
        method, path = request_line(event)
        try:
            answer = self._answer(method, path, event)
        except ApiError as exc:
            answer = Answer(exc.status, exc.body(), exc.headers)
        except BackendError as exc:
            answer = not_handed_over(exc)
        except Exception:
            logger.exception("token api: unexpected error", extra={"path": path[:100]})
            answer = Answer(500, {"error": "internal", "message": "internal error (see the logs)"})
        return response(answer)

    # -- routes --------------------------------------------------------------------------------------

    def _operations(self) -> dict[tuple[str, str], Work]:
        """What each (METHOD, OpenAPI path) does; the path's one parameter, if any, is the account."""
        return {
            ("GET", "/health"): lambda service, event, _: service().health(),
            ("GET", "/openapi.json"): lambda service, event, _: Answer(200, self.document),
            ("GET", "/accounts"): lambda service, event, _: service().accounts(event),
            ("GET", "/accounts/{account}/token"): lambda service, event, account: service().token(event, account),
            ("POST", "/accounts/{account}/refresh"): lambda service, event, account: service().refresh(event, account),
            ("GET", "/accounts/{account}/login"): lambda service, event, account: service().login(event, account),
            ("POST", "/accounts/{account}/verification"): lambda service, event, account: service().verification(
                event, account
            ),
        }

    def _answer(self, method: str, path: str, event: dict[str, Any]) -> Answer:
        """The route's answer; 405 (naming the allowed methods) for a known path, else 404."""
        allowed: set[str] = set()
        for route_method, template, pattern in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if route_method == method:
                account = match.group(1) if pattern.groups else ""
                return self.operations[(method, template)](self._service, event, account)
            allowed.add(route_method)
        if allowed:
            methods = ", ".join(sorted(allowed))
            body = {"error": "method-not-allowed", "message": f"{path[:100]} accepts {methods}"}
            return Answer(405, body, {"Allow": methods})
        return Answer(404, {"error": "not-found", "message": f"no route {method} {path[:100]}"})


def not_handed_over(exc: BackendError) -> Answer:
    """A refresh the backend could not hand over: 504 when it timed out, else 502."""
    if exc.timed_out:
        body = {"error": "refresh-timed-out", "message": "the login did not finish in time; see GET /accounts"}
        return Answer(504, body)
    return Answer(502, {"error": "refresh-unavailable", "message": str(exc)})


def response(answer: Answer) -> dict[str, Any]:
    """A Function URL response (payload 2.0): JSON, never stored by a cache.

    Example:
        >>> response(Answer(200, {"status": "ok"}))["body"]
        '{"status":"ok"}'
    """
    return {
        "statusCode": answer.status,
        "headers": {**answer.headers, "Content-Type": JSON, **NO_STORE},
        "body": json.dumps(answer.body, separators=(",", ":")),
        "isBase64Encoded": False,
    }
