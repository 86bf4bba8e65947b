"""What a Secrets Manager error says: its code, and whether it means "this secret does not exist".

IAM evaluates a request for a secret that does not exist yet on its bare name: the ARN has no
random 6-character suffix. A policy written as ``{prefix}/*/token-*`` does not match that name, so the
answer is AccessDeniedException where ResourceNotFoundException was meant. template.yaml grants
``token*`` and ``credentials*`` (no dash), but a role with an older or hand-written policy still gets
AccessDenied: such an error counts as "absent" when ListSecrets (which takes no resource and is
granted to both functions) shows no secret of that exact name. When ListSecrets is denied too, nobody
can tell, and the AccessDenied stands.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

NOT_FOUND = "ResourceNotFoundException"
ACCESS_DENIED = "AccessDeniedException"


def error_code(exc: ClientError) -> str:
    """The AWS error code of a botocore ClientError.

    Example:
        >>> error_code(ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "GetSecretValue"))
        'ResourceNotFoundException'
    """
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_absent(client: Any, exc: ClientError, name: str) -> bool:
    """True when ``exc``, from a call on the secret ``name``, means that secret does not exist.

    Example:
        >>> missing = ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "GetSecretValue")
        >>> is_absent(None, missing, "broker-tokens/a1/token")
        True
    """
    code = error_code(exc)
    if code == NOT_FOUND:
        return True
    if code != ACCESS_DENIED:
        return False
    return not _listed(client, name)


def _listed(client: Any, name: str) -> bool:
    """True when a secret of exactly this name exists, or when ListSecrets cannot say (denied too)."""
    try:
        paginator = client.get_paginator("list_secrets")
        for page in paginator.paginate(Filters=[{"Key": "name", "Values": [name]}], IncludePlannedDeletion=True):
            if any(secret.get("Name") == name for secret in page.get("SecretList", [])):
                return True
    except ClientError:
        return True  # cannot tell: the AccessDenied stands
    return False
