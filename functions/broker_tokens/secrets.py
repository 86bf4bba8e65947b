"""Secrets Manager access: account discovery, credentials, and the token record (validate, then promote).

Names are the public contract: ``{prefix}/{account}/credentials`` and ``{prefix}/{account}/token``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from broker_tokens.errors import AccountNotFoundError
from broker_tokens.logs import logger
from broker_tokens.models import TokenRecord, is_account_id

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

CREDENTIALS = "credentials"
TOKEN = "token"


def error_code(exc: ClientError) -> str:
    """The AWS error code of a botocore ClientError."""
    return str(exc.response.get("Error", {}).get("Code", ""))


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
        return sorted(self.account_brokers())

    def account_brokers(self) -> dict[str, str | None]:
        """Every account with a credentials secret, and the secret's ``broker`` tag (None when untagged).

        The tag comes with the listing at no extra call; it is a hint (the secret's value decides).
        """
        accounts: dict[str, str | None] = {}
        paginator = self.client.get_paginator("list_secrets")
        for page in paginator.paginate(Filters=[{"Key": "name", "Values": [f"{self.prefix}/"]}]):
            for entry in page.get("SecretList", []):
                match = self._credentials_name.fullmatch(entry.get("Name", ""))
                if match and is_account_id(match.group(1)):
                    tags = {tag.get("Key"): tag.get("Value") for tag in entry.get("Tags", [])}
                    accounts[match.group(1)] = tags.get("broker")
        return accounts

    def read_credentials(self, account: str) -> tuple[str | None, str]:
        """The credentials secret's text and version id; AccountNotFoundError when it does not exist."""
        try:
            answer = self.client.get_secret_value(SecretId=self.name(account, CREDENTIALS))
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise AccountNotFoundError(account) from None
            raise
        return answer.get("SecretString"), answer["VersionId"]

    def credentials_metadata(self, account: str) -> tuple[str | None, dict[str, str]]:
        """The credentials secret's AWSCURRENT version id and tags, without reading its value.

        The token API may not read credentials (IAM), yet must tell which version a rejection was for.
        """
        try:
            answer = self.client.describe_secret(SecretId=self.name(account, CREDENTIALS))
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
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
        try:
            answer = self.client.get_secret_value(SecretId=self.name(account, TOKEN))
        except ClientError as exc:
            if error_code(exc) in ("ResourceNotFoundException", "InvalidRequestException"):
                return None
            raise
        try:
            return TokenRecord.from_json(answer.get("SecretString") or ""), answer["VersionId"]
        except (ValueError, KeyError, TypeError):
            logger.warning("token secret is not a schema-1 record; treating as absent", extra={"account": account})
            return None

    def current_token_version(self, account: str) -> str | None:
        """The version id staged AWSCURRENT, from metadata only (no secret value is read)."""
        try:
            answer = self.client.describe_secret(SecretId=self.name(account, TOKEN))
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        for version, stages in answer.get("VersionIdsToStages", {}).items():
            if "AWSCURRENT" in stages:
                return version
        return None

    def write_token(self, record: TokenRecord) -> str:
        """Store a validated record as the new AWSCURRENT in one call; the old one becomes AWSPREVIOUS."""
        name = self.name(record.account, TOKEN)
        try:
            return self.client.put_secret_value(SecretId=name, SecretString=record.to_json())["VersionId"]
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
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
