"""IAM's resource check for Secrets Manager, in front of moto (whose own IAM emulation sees every secret as "*").

A role's statements decide, as IAM does: a secret that exists is named by its full ARN (with the
6-character suffix), one that does not exist yet by its bare name. Anything not allowed answers
AccessDeniedException, exactly as Secrets Manager does; everything allowed goes to moto unchanged.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from botocore.exceptions import ClientError

# Operation name -> IAM action, for the calls broker-tokens makes on one secret.
ACTIONS = {
    "get_secret_value": "secretsmanager:GetSecretValue",
    "describe_secret": "secretsmanager:DescribeSecret",
    "put_secret_value": "secretsmanager:PutSecretValue",
    "create_secret": "secretsmanager:CreateSecret",
}


class PolicyBoundSecrets:
    """A Secrets Manager client that only does what ``statements`` (resolved IAM Allow statements) grant.

    Example:
        >>> bound = PolicyBoundSecrets(moto_client, role_statements)            # doctest: +SKIP
        >>> bound.get_secret_value(SecretId="broker-tokens/a1/token")           # doctest: +SKIP
    """

    def __init__(self, client: Any, statements: list[dict[str, Any]], *, list_secrets: bool = True):
        self._client = client
        self._statements = statements
        self._list_secrets = list_secrets
        self.exceptions = client.exceptions

    def __getattr__(self, operation: str) -> Any:
        if operation in ACTIONS:
            return lambda **request: self._checked(operation, request)
        return getattr(self._client, operation)

    def get_paginator(self, operation: str) -> Any:
        if operation == "list_secrets" and not self._list_secrets:
            raise self._denied("ListSecrets")
        return self._client.get_paginator(operation)

    def _checked(self, operation: str, request: dict[str, Any]) -> Any:
        name = request.get("SecretId") or request["Name"]
        arn = self._arn(name)
        if not self._allows(ACTIONS[operation], arn):
            raise self._denied(ACTIONS[operation].split(":")[1])
        return getattr(self._client, operation)(**request)

    def _arn(self, name: str) -> str:
        """The ARN IAM evaluates: the secret's own, or the bare name of one that does not exist."""
        try:
            return str(self._client.describe_secret(SecretId=name)["ARN"])
        except self._client.exceptions.ResourceNotFoundException:
            return f"arn:aws:secretsmanager:-:-:secret:{name}"

    def _allows(self, action: str, arn: str) -> bool:
        for statement in self._statements:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if statement["Effect"] != "Allow" or "Condition" in statement:
                continue
            if action in actions and any(fnmatchcase(_account_free(arn), _account_free(r)) for r in resources):
                return True
        return False

    @staticmethod
    def _denied(operation: str) -> ClientError:
        message = f"User is not authorized to perform: secretsmanager:{operation}"
        return ClientError({"Error": {"Code": "AccessDeniedException", "Message": message}}, operation)


def _account_free(arn: str) -> str:
    """The ARN without region and account: moto's and the translated template's differ, names do not."""
    parts = arn.split(":", 5)
    return ":".join([*parts[:3], "*", "*", *parts[5:]]) if len(parts) == 6 else arn
