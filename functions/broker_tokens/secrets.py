"""Secrets Manager access: account discovery, credentials, and the token record (validate, then promote).

Names are the public contract: ``{prefix}/{account}/credentials`` and ``{prefix}/{account}/token``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from broker_tokens.brokers import known_broker
from broker_tokens.brokers.base import Broker
from broker_tokens.errors import AccountNotFoundError
from broker_tokens.logs import logger
from broker_tokens.models import TokenRecord, is_account_id
from broker_tokens.secret_errors import error_code, is_absent

__all__ = ["CREDENTIALS", "TOKEN", "AccountEntry", "SecretStore", "error_code"]

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

CREDENTIALS = "credentials"


@dataclass(frozen=True)
class AccountEntry:
    """One account, from its credentials secret's metadata (no secret value read).

    Example:
        >>> AccountEntry("pt-1", "pitrade", "v1").broker_class.stores_token
        False
    """

    account: str
    broker: str | None
    credentials_version: str | None

    @property
    def broker_class(self) -> type[Broker] | None:
        """The adapter class the ``broker`` tag names, or None when untagged or unknown."""
        return known_broker(self.broker)


TOKEN = "token"


class SecretStore:
    """The account secrets under one prefix.

    Example:
        >>> store = SecretStore(client=None, prefix="broker-tokens")  # doctest: +SKIP
        >>> store.name("desk-1", "token")                              # doctest: +SKIP
        'broker-tokens/desk-1/token'
    """

    def __init__(self, client: SecretsManagerClient | None = None, *, prefix: str, kms_key_arn: str | None = None):
        self.client: SecretsManagerClient = client or boto3.client("secretsmanager")
        self.prefix = prefix.rstrip("/")
        self.kms_key_arn = kms_key_arn
        self._credentials_name = re.compile(rf"{re.escape(self.prefix)}/([^/]+)/{CREDENTIALS}")

    def name(self, account: str, kind: str) -> str:
        """The secret name of an account's credentials or token."""
        return f"{self.prefix}/{account}/{kind}"

    def list_accounts(self) -> list[str]:
        """Every account with a credentials secret under the prefix, sorted (no redeploy to add one)."""
        return [entry.account for entry in self.listing()]

    def listing(self) -> list[AccountEntry]:
        """Every account with a credentials secret, sorted, with what ListSecrets tells at no extra call:
        the secret's ``broker`` tag (a hint: the value decides) and its AWSCURRENT version id.
        """
        entries = []
        paginator = self.client.get_paginator("list_secrets")
        for page in paginator.paginate(Filters=[{"Key": "name", "Values": [f"{self.prefix}/"]}]):
            for secret in page.get("SecretList", []):
                match = self._credentials_name.fullmatch(secret.get("Name", ""))
                if not match or not is_account_id(match.group(1)):
                    continue
                tags = {tag.get("Key"): tag.get("Value") for tag in secret.get("Tags", [])}
                stages = secret.get("SecretVersionsToStages", {})
                version = next((v for v, labels in stages.items() if "AWSCURRENT" in labels), None)
                cls = known_broker(tags.get("broker"))
                entries.append(AccountEntry(match.group(1), cls.name if cls else tags.get("broker"), version))
        return sorted(entries, key=lambda entry: entry.account)

    def read_credentials(self, account: str) -> tuple[str | None, str]:
        """The credentials secret's text and version id; AccountNotFoundError when it does not exist."""
        name = self.name(account, CREDENTIALS)
        try:
            answer = self.client.get_secret_value(SecretId=name)
        except ClientError as exc:
            if is_absent(self.client, exc, name):
                raise AccountNotFoundError(account) from None
            raise
        return answer.get("SecretString"), answer["VersionId"]

    def credentials_metadata(self, account: str) -> tuple[str | None, dict[str, str]]:
        """The credentials secret's AWSCURRENT version id and tags, without reading its value.

        The token API may not read credentials (IAM), yet must tell which version a rejection was for.
        """
        name = self.name(account, CREDENTIALS)
        try:
            answer = self.client.describe_secret(SecretId=name)
        except ClientError as exc:
            if is_absent(self.client, exc, name):
                raise AccountNotFoundError(account) from None
            raise
        version = next(
            (v for v, stages in answer.get("VersionIdsToStages", {}).items() if "AWSCURRENT" in stages), None
        )
        tags = {tag["Key"]: tag["Value"] for tag in answer.get("Tags", []) if "Key" in tag and "Value" in tag}
        return version, tags

    def read_token(self, account: str) -> TokenRecord | None:
        """The AWSCURRENT token record, or None when there is none (or it is not a schema-1 record)."""
        found = self.read_token_version(account)
        return found[0] if found else None

    def read_token_version(self, account: str) -> tuple[TokenRecord, str] | None:
        """The AWSCURRENT token record with its version id."""
        name = self.name(account, TOKEN)
        try:
            answer = self.client.get_secret_value(SecretId=name)
        except ClientError as exc:
            # InvalidRequest: scheduled for deletion. AccessDenied on a missing name: see secret_errors.
            if error_code(exc) == "InvalidRequestException" or is_absent(self.client, exc, name):
                return None
            raise
        try:
            return TokenRecord.from_json(answer.get("SecretString") or ""), answer["VersionId"]
        except (ValueError, KeyError, TypeError):
            logger.warning("token secret is not a schema-1 record; treating as absent", extra={"account": account})
            return None

    def write_token(self, record: TokenRecord) -> str:
        """Store a validated record as the new AWSCURRENT in one call; the old one becomes AWSPREVIOUS."""
        name = self.name(record.account, TOKEN)
        try:
            return self.client.put_secret_value(SecretId=name, SecretString=record.to_json())["VersionId"]
        except ClientError as exc:
            if not is_absent(self.client, exc, name):
                raise
        create: dict[str, Any] = {
            "Name": name,
            "SecretString": record.to_json(),
            "Description": f"broker-tokens session token of account {record.account} (written by broker-tokens)",
            "Tags": [
                {"Key": "broker-tokens:account", "Value": record.account},
                {"Key": "broker", "Value": record.broker},
            ],
        }
        if self.kms_key_arn:
            create["KmsKeyId"] = self.kms_key_arn
        try:
            return self.client.create_secret(**create)["VersionId"]
        except ClientError as exc:
            if error_code(exc) != "ResourceExistsException":
                raise
            # Another writer created it between our two calls: ours is newer, so put it on top.
            return self.client.put_secret_value(SecretId=name, SecretString=record.to_json())["VersionId"]
