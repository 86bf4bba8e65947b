"""Telegram Bot API, simulated: ``sendMessage`` with HTML parse mode, strict like the real one.

Follows core.telegram.org/bots/api ("Making requests", "sendMessage", "Formatting options").

    >>> with TelegramSimulator() as sim:
    ...     token = sim.add_bot("demo_bot")
    ...     sim.add_chat(42)
    ...     sim.url.startswith("http://127.0.0.1:")
    True

Endpoint (name for `faults.*_next(endpoint=...)`): "sendMessage" ``POST /bot<token>/sendMessage``.
Parameters come from the query string and the body, JSON (application/json) or a form
(application/x-www-form-urlencoded). Every answer is JSON: ``{"ok": true, "result": <Message>}`` or
``{"ok": false, "error_code": N, "description": "...", "parameters": {"retry_after": S}}`` (parameters
only on a 429). Checked in this order:

  1. the token in the path names a live bot, else 401 "Unauthorized" (a path that is not
     ``/bot<token>/<method>``: 404 "Not Found");
  2. ``chat_id`` present, else 400 "Bad Request: chat_id is empty"; a known chat, else 400
     "Bad Request: chat not found"; a chat that blocked the bot: 403 "Forbidden: bot was blocked by the user";
  3. ``text`` present and not blank, else 400 "Bad Request: message text is empty";
  4. ``parse_mode`` one of HTML, MarkdownV2, Markdown (or absent), else 400 "Bad Request: unsupported
     parse_mode"; with HTML, the text must use only Telegram's tags (b strong i em u ins s strike del
     a[href] code pre span.tg-spoiler tg-spoiler blockquote tg-emoji), properly nested, and only the
     entities &lt; &gt; &amp; &quot; and numeric ones; else 400 "Bad Request: can't parse entities: ...";
  5. the text after entity parsing is at most 4096 characters, else 400 "Bad Request: message is too long".

Faults: `faults.rate_limit_next` answers 429 "Too Many Requests: retry after N" with
``parameters.retry_after`` = `retry_after`; `faults.fail_next` answers a 5xx page from the edge.

SIMULATOR CHOICES where Telegram does not document: the exact wording after "can't parse entities: ",
the Message's ``chat`` object (a private chat with a first name), no ``entities`` in the result, and
no rate limit of its own (only the armed 429 fault).
"""

from __future__ import annotations

import html
import itertools
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from infra.local.simulators.base import (
    BadRequestError,
    Clock,
    RefusedError,
    Request,
    Response,
    SimulatorServer,
    media_type,
)

MAX_TEXT = 4096
PARSE_MODES = ("HTML", "MarkdownV2", "Markdown")
TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "span", "tg-spoiler"}
TAGS |= {"blockquote", "tg-emoji"}
_TAG = re.compile(r"<(/?)([a-z-]+)((?:\s+[a-z-]+(?:=\"[^\"<>]*\"|='[^'<>]*')?)*)\s*>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_PATH = re.compile(r"/bot([^/]+)/([A-Za-z]+)")
_LINK = re.compile(r'<a href="([^"]*)">(.*?)</a>')


@dataclass(frozen=True)
class SentMessage:
    """One message the simulator accepted (its inbox line)."""

    message_id: int
    bot: str
    chat_id: int
    text: str  # as sent (HTML)
    parse_mode: str | None
    date: int

    @property
    def plain(self) -> str:
        """The text as a person reads it (tags dropped, entities decoded)."""
        return html.unescape(_TAG.sub("", self.text)) if self.parse_mode == "HTML" else self.text

    @property
    def readable(self) -> str:
        """Like :attr:`plain`, with each link's target after its text: ``Log in [https://...]``."""
        if self.parse_mode != "HTML":
            return self.text
        shown = _LINK.sub(lambda m: f"{m[2]} [{m[1]}]", self.text)
        return html.unescape(_TAG.sub("", shown))


class TelegramSimulator(SimulatorServer):
    """The Bot API on loopback, with an inbox of every accepted message."""

    def __init__(self, clock: Clock | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(clock, host=host, port=port)
        self.retry_after = 2
        self._bots: dict[str, str] = {}  # token -> username
        self._chats: dict[int, bool] = {}  # chat id -> blocked the bot
        self._inbox: list[SentMessage] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # ----- setup ------------------------------------------------------------------------------------

    def add_bot(self, username: str, token: str | None = None) -> str:
        """Register a bot (as @BotFather does); returns its token ``<id>:<35 characters>``."""
        token = token or f"{secrets.randbelow(9 * 10**9) + 10**9}:{secrets.token_urlsafe(26)[:35]}"
        with self._lock:
            self._bots[token] = username
        self.add_route("POST", f"/bot{token}/sendMessage", "sendMessage", self._send_message)
        return token

    def revoke_bot(self, token: str) -> None:
        """Revoke a token (/revoke in @BotFather): later calls with it answer 401."""
        with self._lock:
            self._bots.pop(token, None)

    def add_chat(self, chat_id: int, *, blocked: bool = False) -> None:
        """A chat the bots may write to (a person who pressed Start), or one that blocked them."""
        with self._lock:
            self._chats[chat_id] = blocked

    @property
    def inbox(self) -> list[SentMessage]:
        """Every accepted message, oldest first."""
        with self._lock:
            return list(self._inbox)

    # ----- answers ----------------------------------------------------------------------------------

    def answer_not_found(self, request: Request) -> Response:
        """401 for a token we do not know (a method of a known bot we lack: 404)."""
        match = _PATH.fullmatch(request.path)
        if match and match[1] not in self._bots:
            return _error(401, "Unauthorized")
        return _error(404, "Not Found")

    def answer_method_not_allowed(self, request: Request, allowed: Any) -> Response:
        """Our sendMessage takes POST only."""
        return _error(405, "Method Not Allowed")

    def answer_bad_request(self, request: Request, error: BadRequestError) -> Response:
        """Malformed bodies, in the Bot API's envelope."""
        return _error(400, f"Bad Request: {error.reason}")

    def answer_rate_limited(self, request: Request) -> Response:
        """Flood control."""
        wait = self.retry_after
        return _error(429, f"Too Many Requests: retry after {wait}", parameters={"retry_after": wait})

    def _send_message(self, request: Request) -> Response:
        token = _PATH.fullmatch(request.path)[1]  # type: ignore[index]  # the route guarantees the shape
        with self._lock:
            bot = self._bots.get(token)
        if bot is None:
            return _error(401, "Unauthorized")
        params = {**request.query_params(), **self._body(request)}
        chat_id = self._chat(params.get("chat_id"))
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise RefusedError(_error(400, "Bad Request: message text is empty"))
        mode = params.get("parse_mode") or None
        if mode is not None and mode not in PARSE_MODES:
            raise RefusedError(_error(400, "Bad Request: unsupported parse_mode"))
        shown = parse_html(text) if mode == "HTML" else text
        if len(shown) > MAX_TEXT:
            raise RefusedError(_error(400, "Bad Request: message is too long"))
        message = SentMessage(next(self._ids), bot, chat_id, text, mode, int(self.clock.time()))
        with self._lock:
            self._inbox.append(message)
        result = {
            "message_id": message.message_id,
            "from": {"id": int(token.split(":")[0]), "is_bot": True, "first_name": bot, "username": bot},
            "chat": {"id": chat_id, "first_name": "Trader", "type": "private"},
            "date": message.date,
            "text": shown,
        }
        return Response.json({"ok": True, "result": result})

    def _body(self, request: Request) -> dict[str, Any]:
        if not request.body:
            return {}
        if media_type(request.header("Content-Type")) == "application/json":
            return request.json_object()
        return dict(request.form())

    def _chat(self, value: Any) -> int:
        if value in (None, ""):
            raise RefusedError(_error(400, "Bad Request: chat_id is empty"))
        try:
            chat_id = int(value)
        except (TypeError, ValueError):
            raise RefusedError(_error(400, "Bad Request: chat not found")) from None
        with self._lock:
            blocked = self._chats.get(chat_id)
        if blocked is None:
            raise RefusedError(_error(400, "Bad Request: chat not found"))
        if blocked:
            raise RefusedError(_error(403, "Forbidden: bot was blocked by the user"))
        return chat_id


def parse_html(text: str) -> str:
    """The text a person sees, or a RefusedError 400 "can't parse entities" as Telegram answers.

    Example:
        >>> parse_html('<b>a &amp; b</b> <a href="https://x">go</a>')
        'a & b go'
        >>> import json
        >>> try:
        ...     parse_html("a < b")
        ... except RefusedError as refusal:
        ...     print(json.loads(refusal.response.body)["description"])
        Bad Request: can't parse entities: Unsupported start tag at byte offset 2
    """
    shown: list[str] = []
    open_tags: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        offset = len(text[:i].encode("utf-8"))
        if char == "<":
            match = _TAG.match(text, i)
            if not match or match[2] not in TAGS:
                raise _unparsable(f"Unsupported start tag at byte offset {offset}")
            closing, name, attributes = match[1], match[2], match[3]
            if closing:
                if not open_tags or open_tags[-1] != name:
                    raise _unparsable(f'Unexpected end tag "{name}" at byte offset {offset}')
                open_tags.pop()
            else:
                if name == "a" and "href=" not in attributes:
                    raise _unparsable(f"Can't find href of a link at byte offset {offset}")
                open_tags.append(name)
            i = match.end()
        elif char == "&":
            match = _ENTITY.match(text, i)
            if not match:
                raise _unparsable(f"Unsupported HTML entity at byte offset {offset}")
            shown.append(html.unescape(match[0]))
            i = match.end()
        elif char == ">":
            raise _unparsable(f'Character ">" is reserved at byte offset {offset}')
        else:
            shown.append(char)
            i += 1
    if open_tags:
        raise _unparsable(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"')
    return "".join(shown)


def _unparsable(detail: str) -> RefusedError:
    return RefusedError(_error(400, f"Bad Request: can't parse entities: {detail}"))


def _error(code: int, description: str, *, parameters: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Response.json(body, code)
