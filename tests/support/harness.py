"""A small harness over the embedded stack's parts: seed accounts, build the core, read what it wrote."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from infra.local.moto_server import MotoServer
from infra.local.template import LocalResources

from broker_tokens.alerts import Alerts
from broker_tokens.brokers.base import Field
from broker_tokens.clock import Clock
from broker_tokens.config import Settings
from broker_tokens.refresh import Refresher
from broker_tokens.retry import RetryPolicy
from broker_tokens.secrets import SecretStore
from broker_tokens.state import DynamoStateStore
from tests.support.logsink import remember_secret

PREFIX = "broker-tokens"


def secret_values(credentials: dict[str, Any]) -> list[str]:
    """The values of a credentials dict that are secret by the broker's field declarations."""
    from broker_tokens.brokers import broker_class

    specs: dict[str, Field] = {spec.name: spec for spec in broker_class(credentials["broker"]).fields}
    return [str(v) for k, v in credentials.items() if k in specs and specs[k].is_secret]


@dataclass
class Harness:
    """Seeds secrets into moto and builds a Refresher wired like the Lambda function."""

    moto: MotoServer
    resources: LocalResources
    clock: Clock
    prefix: str = PREFIX
    settings: Settings = field(init=False)

    def __post_init__(self) -> None:
        env = {**self.resources.environment("RefresherFunction"), "BROKER_HTTP_TIMEOUT_SECONDS": "1"}
        self.settings = replace(Settings.from_env(env), secret_prefix=self.prefix)

    @cached_property
    def secrets_client(self) -> Any:
        return self.moto.client("secretsmanager")

    @cached_property
    def dynamodb_client(self) -> Any:
        return self.moto.client("dynamodb")

    @cached_property
    def sns_client(self) -> Any:
        return self.moto.client("sns")

    def add_account(self, account: str, credentials: dict[str, Any] | str) -> None:
        """Create (or update) the credentials secret, remembering its secret values for the leak check."""
        text = credentials if isinstance(credentials, str) else json.dumps(credentials)
        if isinstance(credentials, dict) and "broker" in credentials:
            with contextlib.suppress(KeyError):
                remember_secret(*secret_values(credentials))
        name = f"{self.prefix}/{account}/credentials"
        try:
            self.secrets_client.create_secret(Name=name, SecretString=text)
        except self.secrets_client.exceptions.ResourceExistsException:
            self.secrets_client.put_secret_value(SecretId=name, SecretString=text)

    def refresher(self, **overrides: Any) -> Refresher:
        """A Refresher on moto's Secrets Manager and DynamoDB, with fast retries."""
        settings = replace(self.settings, **overrides)
        return Refresher(
            secrets=SecretStore(self.secrets_client, prefix=self.prefix, kms_key_arn=settings.kms_key_arn),
            state=DynamoStateStore(self.resources.table_name, clock=self.clock, client=self.dynamodb_client),
            settings=settings,
            clock=self.clock,
            alerts=Alerts(settings.alert_topic_arn, client=self.sns_client),
            policy=RetryPolicy(base_delay=0.05, max_delay=0.2, budget_seconds=settings.retry_budget.total_seconds()),
        )

    def token(self, account: str, stage: str = "AWSCURRENT") -> dict[str, Any] | None:
        """The stored token record at a stage, or None."""
        client = self.secrets_client
        try:
            answer = client.get_secret_value(SecretId=f"{self.prefix}/{account}/token", VersionStage=stage)
        except (client.exceptions.ResourceNotFoundException, client.exceptions.InvalidRequestException):
            return None
        return dict(json.loads(answer["SecretString"]))

    def token_version(self, account: str) -> str | None:
        """The version id staged AWSCURRENT."""
        try:
            stages = self.secrets_client.describe_secret(SecretId=f"{self.prefix}/{account}/token")
        except self.secrets_client.exceptions.ResourceNotFoundException:
            return None
        return next((v for v, s in stages["VersionIdsToStages"].items() if "AWSCURRENT" in s), None)
