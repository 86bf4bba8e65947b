"""The token API's HTTP face: a Powertools LambdaFunctionUrlResolver wired to the TokenService.

Every answer is JSON with ``Cache-Control: no-store``. Refusals (ApiError) keep their status; a
refresh the backend could not hand over is a 502 (504 when it timed out); an unknown path is a 404
and a known path with another method a 405 naming the allowed ones. Anything unexpected is a 500
that is logged without the event.

Powertools keeps the current event on the router class, so one process resolves one request at a
time. Lambda never runs two requests in a container at once; the local front does, so each route
steps out of that lock while it works (logins can take seconds) and restores the request context
when it comes back.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.utilities.typing import LambdaContext

from broker_tokens.api.errors import ApiError
from broker_tokens.api.openapi import openapi_document
from broker_tokens.api.service import Answer, TokenService
from broker_tokens.backend import BackendError
from broker_tokens.logs import logger

JSON = "application/json"
NO_STORE = {"Cache-Control": "no-store"}

Work = Callable[[TokenService, dict[str, Any]], Answer]


def route_table(document: dict[str, Any]) -> list[tuple[str, re.Pattern[str]]]:
    """(METHOD, path regex) for every operation of an OpenAPI document.

    Example:
        >>> [(m, p.pattern) for m, p in route_table({"paths": {"/a/{id}": {"get": {}}}})]
        [('GET', '/a/[^/]+')]
    """
    table: list[tuple[str, re.Pattern[str]]] = []
    for path, operations in document["paths"].items():
        segments = ("[^/]+" if part.startswith("{") else re.escape(part) for part in path.split("/"))
        pattern = re.compile("/".join(segments))
        table.extend((method.upper(), pattern) for method in operations)
    return table


class TokenApi:
    """The resolver and its routes around one TokenService (or a function that builds it on first use).

    Example:
        >>> api = TokenApi(build_service)                       # doctest: +SKIP
        >>> api.handle(function_url_event, context)["statusCode"]  # doctest: +SKIP
        200
    """

    def __init__(self, service: TokenService | Callable[[], TokenService]):
        self._service: Callable[[], TokenService] = (lambda: service) if isinstance(service, TokenService) else service
        self.document = openapi_document()
        self.app = LambdaFunctionUrlResolver()
        self._lock = threading.Lock()
        self._routes = route_table(self.document)
        self._register_routes()
        self._register_refusals()

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Answer one Function URL event."""
        with self._lock:
            answer = self.app.resolve(event, context)
        answer.setdefault("headers", {}).update(NO_STORE)
        return answer

    # -- routes --------------------------------------------------------------------------------------

    def _register_routes(self) -> None:
        app, run = self.app, self._run

        @app.get("/health")
        def health() -> Response[str]:
            return run(lambda service, event: service.health())

        @app.get("/openapi.json")
        def openapi() -> Response[str]:
            return self._response(Answer(200, self.document))

        @app.get("/accounts")
        def accounts() -> Response[str]:
            return run(lambda service, event: service.accounts(event))

        @app.get("/accounts/<account>/token")
        def token(account: str) -> Response[str]:
            return run(lambda service, event: service.token(event, account))

        @app.post("/accounts/<account>/refresh")
        def refresh(account: str) -> Response[str]:
            return run(lambda service, event: service.refresh(event, account))

        @app.get("/accounts/<account>/login")
        def login(account: str) -> Response[str]:
            return run(lambda service, event: service.login(event, account))

        @app.post("/accounts/<account>/verification")
        def verification(account: str) -> Response[str]:
            return run(lambda service, event: service.verification(event, account))

    def _register_refusals(self) -> None:
        app = self.app

        @app.exception_handler(ApiError)
        def refused(exc: ApiError) -> Response[str]:
            return self._response(Answer(exc.status, exc.body(), exc.headers))

        @app.exception_handler(BackendError)
        def not_handed_over(exc: BackendError) -> Response[str]:
            if exc.timed_out:
                body = {"error": "refresh-timed-out", "message": "the login did not finish in time; see GET /accounts"}
                return self._response(Answer(504, body))
            return self._response(Answer(502, {"error": "refresh-unavailable", "message": str(exc)}))

        @app.not_found
        def not_found(exc: NotFoundError) -> Response[str]:
            method = app.current_event.http_method.upper()
            path = app.current_event.path
            allowed = sorted({m for m, pattern in self._routes if pattern.fullmatch(path)})
            if allowed:
                body = {"error": "method-not-allowed", "message": f"{path[:100]} accepts {', '.join(allowed)}"}
                return self._response(Answer(405, body, {"Allow": ", ".join(allowed)}))
            return self._response(Answer(404, {"error": "not-found", "message": f"no route {method} {path[:100]}"}))

        @app.exception_handler(Exception)
        def unexpected(exc: Exception) -> Response[str]:
            logger.exception("token api: unexpected error", extra={"path": app.current_event.path[:100]})
            return self._response(Answer(500, {"error": "internal", "message": "internal error (see the logs)"}))

    # -- plumbing ------------------------------------------------------------------------------------

    def _run(self, work: Work) -> Response[str]:
        """Run a route's work outside the resolver lock, on the event it was resolved with."""
        event = dict(self.app.current_event.raw_event)
        with self._stepped_out():
            answer = work(self._service(), event)
        return self._response(answer)

    @contextmanager
    def _stepped_out(self) -> Iterator[None]:
        saved = (BaseRouter.current_event, BaseRouter.lambda_context, dict(self.app.context))
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()
            BaseRouter.current_event, BaseRouter.lambda_context = saved[0], saved[1]
            self.app.context.clear()
            self.app.context.update(saved[2])

    @staticmethod
    def _response(answer: Answer) -> Response[str]:
        return Response(
            status_code=answer.status,
            content_type=JSON,
            body=json.dumps(answer.body, separators=(",", ":")),
            headers={**answer.headers, **NO_STORE},
        )
