"""Who is calling and what they may do: API keys (Bearer) or IAM principals (a SigV4-signed Function URL).

Every grant and every refusal is logged with the caller's name (never the key). A refusal never tells
whether the account exists: out of scope and nonexistent get the same 403.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from broker_tokens.api.errors import ApiError
from broker_tokens.callers import Caller, CallerStore
from broker_tokens.logs import logger

BEARER = "bearer "
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="broker-tokens"'}


class AuthMode(StrEnum):
    """How callers prove who they are (env ``AUTH_MODE``)."""

    API_KEY = "api_key"  # a public Function URL; callers send Authorization: Bearer btk_...
    IAM = "iam"  # an AWS_IAM Function URL; Lambda checked the SigV4 signature, the event names the ARN

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuthMode:
        """The mode the environment names (``api_key`` when unset).

        Example:
            >>> AuthMode.from_env({"AUTH_MODE": "iam"}).value
            'iam'
        """
        raw = (env.get("AUTH_MODE") or cls.API_KEY.value).strip().lower()
        try:
            return cls(raw)
        except ValueError:
            raise ValueError("AUTH_MODE must be 'api_key' or 'iam'") from None


def header(event: Mapping[str, Any], name: str) -> str | None:
    """A request header of a Function URL event (Lambda lower-cases their names).

    Example:
        >>> header({"headers": {"authorization": "Bearer x"}}, "Authorization")
        'Bearer x'
    """
    headers = event.get("headers") or {}
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            return str(value)
    return None


def principal_arn(event: Mapping[str, Any]) -> str | None:
    """The caller's ARN that Lambda puts in an AWS_IAM Function URL event, if any.

    Example:
        >>> principal_arn({"requestContext": {"authorizer": {"iam": {"userArn": "arn:aws:iam::1:user/a"}}}})
        'arn:aws:iam::1:user/a'
    """
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    iam = authorizer.get("iam") or {}
    arn = iam.get("userArn")
    return str(arn) if arn else None


class Gatekeeper:
    """Identifies the caller of a request and checks each (account, action) against its scopes.

    Example:
        >>> gate = Gatekeeper(CallerStore("table"), AuthMode.API_KEY)                 # doctest: +SKIP
        >>> caller = gate.identify({"headers": {"authorization": "Bearer btk_..."}})   # doctest: +SKIP
        >>> gate.authorize(caller, "angel-main", "read", exists=lambda a: True)        # doctest: +SKIP
    """

    def __init__(self, callers: CallerStore, mode: AuthMode):
        self.callers = callers
        self.mode = mode

    def identify(self, event: Mapping[str, Any]) -> Caller:
        """The registered caller of this request; ApiError 401 (who are you?) or 403 (not registered)."""
        if self.mode is AuthMode.IAM:
            return self._by_principal(event)
        return self._by_key(event)

    def _by_key(self, event: Mapping[str, Any]) -> Caller:
        value = header(event, "authorization")
        if not value:
            raise self._refuse(401, "unauthorized", "send the API key as 'Authorization: Bearer <key>'", None)
        if not value.lower().startswith(BEARER):
            raise self._refuse(401, "unauthorized", "the Authorization header must be 'Bearer <API key>'", None)
        caller = self.callers.authenticate_key(value[len(BEARER) :].strip())
        if caller is None:
            raise self._refuse(401, "unauthorized", "unknown or revoked API key", None)
        return caller

    def _by_principal(self, event: Mapping[str, Any]) -> Caller:
        arn = principal_arn(event)
        if arn is None:
            raise self._refuse(401, "unauthorized", "the request is not signed (AWS SigV4, service 'lambda')", None)
        caller = self.callers.for_principal(arn)
        if caller is None:
            logger.warning("token api: refused", extra={"principal": arn, "reason": "principal not registered"})
            raise ApiError(403, "forbidden", "this IAM principal is not a registered caller")
        return caller

    def authorize(self, caller: Caller, account: str, action: str, *, exists: Callable[[str], bool]) -> None:
        """Allow ``action`` on ``account`` or raise 403; a nonexistent account is refused exactly alike."""
        if not caller.allows(account, action) or not exists(account):
            reason = f"caller '{caller.name}' may not {action} account '{account}'"
            raise self._refuse(403, "forbidden", reason, caller, account=account, action=action)
        logger.info("token api: granted", extra={"caller": caller.name, "account": account, "action": action})

    def _refuse(self, status: int, error: str, reason: str, caller: Caller | None, **context: str) -> ApiError:
        who = caller.name if caller else None
        logger.warning("token api: refused", extra={"caller": who, "reason": reason, **context})
        challenge = status == 401 and self.mode is AuthMode.API_KEY
        return ApiError(status, error, reason, headers=CHALLENGE if challenge else None)
