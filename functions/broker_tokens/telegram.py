"""Telegram's Bot API, the one method we use: ``sendMessage``.

Protocol facts (core.telegram.org/bots/api):

- ``POST https://api.telegram.org/bot<token>/sendMessage`` with a JSON body ``{"chat_id", "text",
  "parse_mode": "HTML", "link_preview_options": {"is_disabled": true}}``. ``<token>`` is the bot token
  @BotFather gives (``123456789:AA...``): it is IN THE URL PATH, so no URL is ever logged or put in an
  exception message here, and the token is registered with the redactor as soon as it is read.
- Every answer is ``{"ok": true, "result": <Message>}`` or ``{"ok": false, "error_code": N,
  "description": "...", "parameters": {"retry_after": S}}``. 401 "Unauthorized" is a dead or wrong
  token; 403 "Forbidden: bot was blocked by the user" or not a member; 400 "Bad Request: chat not
  found", "... can't parse entities: ...", "... message is too long" (over 4096 characters).
- 429 "Too Many Requests: retry after S" carries ``parameters.retry_after``: the bot may send again
  after S seconds (about one message a second per chat, 20 a minute per group).

The bot token secret (``{prefix}-telegram/bot-token``, see :func:`broker_tokens.config.telegram_secret_name`)
is a JSON object ``{"bot_token": "123456789:AA..."}``.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

import requests

from broker_tokens.clock import SYSTEM_CLOCK, Clock
from broker_tokens.logs import logger
from broker_tokens.redaction import register

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

# urllib3 logs each request line ("POST /bot<token>/sendMessage") at DEBUG, outside our redacting
# formatter: that logger never goes below INFO once a bot exists.
_TRANSPORT_LOGGER = logging.getLogger("urllib3.connectionpool")
BOT_TOKEN = re.compile(r"[0-9]{3,20}:[A-Za-z0-9_-]{20,100}")
SECRET_KEY = "bot_token"
# Transport failures and 5xx are retried this often within one call; a 429 waits as Telegram says.
ATTEMPTS = 3
BACKOFF_SECONDS = 1.0


class TelegramError(Exception):
    """A message Telegram did not take; the text names the channel and Telegram's reason, never the token.

    Example:
        >>> str(TelegramError(401, "Unauthorized"))
        'Telegram refused the message (401 Unauthorized): the bot token is wrong or revoked'
    """

    HINTS = {
        401: "the bot token is wrong or revoked",
        403: "the bot cannot write to the chat (blocked, or not a member)",
        400: "check the chat id",
    }

    def __init__(self, status: int | None, description: str):
        self.status = status
        self.description = description
        code = f"{status} " if status else ""
        hint = self.HINTS.get(status or 0, "")
        if status == 400 and "chat" not in description.lower():
            hint = ""
        super().__init__(f"Telegram refused the message ({code}{description})" + (f": {hint}" if hint else ""))


class TelegramConfigError(Exception):
    """The bot token secret is missing or malformed (the text names the secret and the key)."""


def read_bot_token(client: SecretsManagerClient, name: str) -> str:
    """The bot token from its secret (registered with the redactor at once).

    Example:
        >>> read_bot_token(boto3.client("secretsmanager"), "broker-tokens-telegram/bot-token")  # doctest: +SKIP
        '123456789:AA...'
    """
    try:
        text = client.get_secret_value(SecretId=name)["SecretString"]
    except client.exceptions.ResourceNotFoundException:
        raise TelegramConfigError(
            f"no Telegram bot token secret {name} (create it: broker-tokens alerts telegram set)"
        ) from None
    try:
        token = json.loads(text).get(SECRET_KEY)
    except (ValueError, AttributeError):
        token = None
    if isinstance(token, str):
        register(token)
    if not isinstance(token, str) or not BOT_TOKEN.fullmatch(token):
        raise TelegramConfigError(
            f'secret {name}: key "{SECRET_KEY}" must hold the token @BotFather gave (digits:letters)'
        )
    return token


class TelegramBot:
    """Sends HTML messages through one bot.

    Example:
        >>> bot = TelegramBot("123456789:" + "A" * 35, api_url="http://127.0.0.1:1")
        >>> bot.send("42", "<b>hi</b>", deadline=0)  # doctest: +SKIP
    """

    def __init__(
        self,
        token: str,
        *,
        api_url: str = "https://api.telegram.org",
        timeout: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
        session: requests.Session | None = None,
    ):
        register(token)
        if _TRANSPORT_LOGGER.getEffectiveLevel() < logging.INFO:
            _TRANSPORT_LOGGER.setLevel(logging.INFO)
        self._token = token
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.clock = clock
        self.session = session or requests.Session()

    def send(self, chat_id: str, html: str, *, deadline: float) -> dict[str, Any]:
        """Post one message; returns Telegram's Message. Waits out a 429 and retries a 5xx or a dropped
        connection while ``deadline`` (clock seconds) allows; raises :class:`TelegramError` otherwise.

        Example:
            >>> bot.send("123456789", "<b>angel-main</b> needs attention", deadline=time.time() + 30)  # doctest: +SKIP
            {'message_id': 17, 'chat': {'id': 123456789, ...}, 'text': 'angel-main needs attention', ...}
        """
        body = {
            "chat_id": chat_id,
            "text": html,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        failures = 0
        while True:
            status, answer = self._post("sendMessage", body, deadline)
            if answer.get("ok") is True and isinstance(answer.get("result"), dict):
                return dict(answer["result"])
            description = str(answer.get("description") or "no description")
            if status == 429:
                wait = _retry_after(answer)
                if self.clock.time() + wait >= deadline:
                    raise TelegramError(429, f"{description}; no time left to wait {wait:g} s")
                logger.warning("telegram asked us to wait", extra={"retry_after": wait})
                self.clock.sleep(wait)
                continue
            if status is not None and status < 500:
                raise TelegramError(status, description)
            failures += 1
            if failures >= ATTEMPTS or self.clock.time() + BACKOFF_SECONDS * failures >= deadline:
                raise TelegramError(status, description)
            self.clock.sleep(BACKOFF_SECONDS * failures)

    def _post(self, method: str, body: dict[str, Any], deadline: float) -> tuple[int | None, dict[str, Any]]:
        """One call: (HTTP status or None, the answer's JSON or a stand-in). Never a URL in an error."""
        timeout = max(0.5, min(self.timeout, deadline - self.clock.time()))
        try:
            response = self.session.post(
                f"{self.api_url}/bot{self._token}/{method}", json=body, timeout=(min(5.0, timeout), timeout)
            )
        except requests.Timeout:
            return None, {"description": f"no answer within {timeout:g} s"}
        except requests.RequestException as exc:
            return None, {"description": f"connection failed ({type(exc).__name__})"}
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            return response.status_code, {"description": f"HTTP {response.status_code}, not the Bot API's JSON"}
        return response.status_code, {key: value for key, value in answer.items()}


def _retry_after(answer: dict[str, Any]) -> float:
    """``parameters.retry_after`` (seconds), 1 when absent or odd.

    Example:
        >>> _retry_after({"parameters": {"retry_after": 3}}), _retry_after({})
        (3.0, 1.0)
    """
    parameters = answer.get("parameters")
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    return float(value) if isinstance(value, int | float) and 0 < value <= 3600 else 1.0
