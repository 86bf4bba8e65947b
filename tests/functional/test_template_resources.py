"""infra.local.template against moto: the resources and environments come from template.yaml itself."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from infra.local.template import Resolver, TemplateError, load_template, provision
from moto import mock_aws

from broker_tokens.config import Settings
from broker_tokens.models import Session, Source, TokenRecord
from broker_tokens.secrets import SecretStore

REGION = "ap-south-1"
FULL = {"SecretsKeyMode": "customer-managed", "DashboardMode": "basic"}


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    """A session on moto's in-process mock (never an endpoint another fixture configured)."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name)
    with mock_aws():
        yield boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def test_state_table_is_built_from_the_template_properties(session: boto3.Session) -> None:
    resources = provision(session, stack_name="t1", parameters=FULL)
    dynamodb = session.client("dynamodb")

    table = dynamodb.describe_table(TableName=resources.table_name)["Table"]
    declared = load_template()["Resources"]["StateTable"]["Properties"]
    assert resources.table_name == "t1-StateTable"
    assert table["KeySchema"] == declared["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(declared["AttributeDefinitions"], key=str)
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["SSEType"] == "KMS"
    ttl = dynamodb.describe_time_to_live(TableName=resources.table_name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl")
    backups = dynamodb.describe_continuous_backups(TableName=resources.table_name)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_key_topic_and_queue_exist_with_the_template_settings(session: boto3.Session) -> None:
    resources = provision(session, stack_name="t1", parameters=FULL)

    kms = session.client("kms")
    key = kms.describe_key(KeyId="alias/broker-tokens-t1")["KeyMetadata"]
    assert key["Arn"] == resources.kms_key_arn
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    topic = session.client("sns").get_topic_attributes(TopicArn=resources.topic_arn)["Attributes"]
    assert topic["DisplayName"] == "broker-tokens alerts"
    assert topic["KmsMasterKeyId"] == key["KeyId"]
    queue = session.client("sqs").get_queue_attributes(QueueUrl=resources.dlq_url, AttributeNames=["All"])
    assert queue["Attributes"]["MessageRetentionPeriod"] == "1209600"
    assert queue["Attributes"]["SqsManagedSseEnabled"] == "true"


def test_environments_resolve_to_the_local_resources(session: boto3.Session) -> None:
    resources = provision(
        session, stack_name="t1", parameters={"SecretPrefix": "desk", "TokenApiAuthMode": "api_key", **FULL}
    )

    refresher = resources.environment("RefresherFunction")
    api = resources.environment("TokenApiFunction")

    assert refresher == {
        "SECRET_PREFIX": "desk",
        "STATE_TABLE_NAME": resources.table_name,
        "ALERT_TOPIC_ARN": resources.topic_arn,
        "SECRETS_KMS_KEY_ARN": resources.kms_key_arn,
        "LEASE_TTL_SECONDS": "660",
        "POWERTOOLS_SERVICE_NAME": "t1",  # the stack's name: its metrics and alarms are its own
        "POWERTOOLS_METRICS_NAMESPACE": "BrokerTokens",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "MARKET_TIMEZONE": "Asia/Kolkata",
        # The person pages' URL is served by a local front: a placeholder until the stack starts it.
        "PERSON_URL": "http://personpagesfunctionurl.invalid/",
        "ZERODHA_WEB_LOGIN": "on",
        "HISTORY_DAYS": "90",
        "REFRESH_SCHEDULE": "cron(30 7 ? * MON-FRI *);cron(0 8 ? * MON-FRI *);cron(30 8 ? * MON-FRI *)",
    }
    refresher_only = ("PERSON_URL", "ZERODHA_WEB_LOGIN", "HISTORY_DAYS", "REFRESH_SCHEDULE")
    shared = {key: value for key, value in refresher.items() if key not in refresher_only}
    assert api == {**shared, "AUTH_MODE": "api_key", "REFRESHER_FUNCTION_NAME": "t1-RefresherFunction"}
    person = resources.environment("PersonPagesFunction")
    assert person == {**shared, "REFRESHER_FUNCTION_NAME": "t1-refresher"}


def test_the_code_can_use_what_was_provisioned(session: boto3.Session) -> None:
    resources = provision(session)
    env = resources.environment("RefresherFunction")

    session.client("dynamodb").put_item(
        TableName=env["STATE_TABLE_NAME"], Item={"pk": {"S": "account#a"}, "sk": {"S": "state"}}
    )
    session.client("secretsmanager").create_secret(
        Name=f"{env['SECRET_PREFIX']}/a/token", SecretString="{}", KmsKeyId=env["SECRETS_KMS_KEY_ARN"]
    )
    message = session.client("sns").publish(TopicArn=env["ALERT_TOPIC_ARN"], Message="test")
    assert message["MessageId"]


def test_provisioning_twice_reuses_the_resources(session: boto3.Session) -> None:
    first = provision(session, parameters=FULL)
    second = provision(session, parameters=FULL)

    assert second == first
    assert len(session.client("kms").list_keys()["Keys"]) == 1


def test_unknown_names_are_errors(session: boto3.Session) -> None:
    resources = provision(session)

    with pytest.raises(TemplateError, match="not a function"):
        resources.environment("StateTable")
    with pytest.raises(TemplateError, match="unknown parameters: Nope"):
        provision(session, parameters={"Nope": "1"})
    with pytest.raises(TemplateError, match="no local value for Ref Elsewhere"):
        Resolver(resources.names).resolve({"Fn::Sub": ["${Table}", {"Table": {"Ref": "Elsewhere"}}]})


def test_the_lean_default_creates_no_key_and_secrets_use_secrets_managers_own(session: boto3.Session) -> None:

    resources = provision(session, stack_name="lean")
    env = resources.environment("RefresherFunction")

    assert resources.kms_key_arn == env["SECRETS_KMS_KEY_ARN"] == ""
    assert session.client("kms").list_keys()["Keys"] == []
    topic = session.client("sns").get_topic_attributes(TopicArn=resources.topic_arn)["Attributes"]
    assert "KmsMasterKeyId" not in topic
    table = session.client("dynamodb").describe_table(TableName=resources.table_name)["Table"]
    assert table.get("SSEDescription", {}).get("SSEType") != "KMS"
    # The code reads the empty variable as "no key": CreateSecret gets no KmsKeyId (an empty one is refused).
    settings = Settings.from_env(env)
    assert settings.kms_key_arn is None
    client = session.client("secretsmanager")
    store = SecretStore(client, prefix=settings.secret_prefix, kms_key_arn=settings.kms_key_arn)
    expires = datetime(2026, 11, 25, tzinfo=UTC)
    session_ = Session("t", "Bearer t", expires)
    record = TokenRecord.from_session(
        "a1", "angelone", session_, issued_at=expires - timedelta(days=1), source=Source.CLI
    )
    store.write_token(record)
    described = client.describe_secret(SecretId=store.name("a1", "token"))
    assert "KmsKeyId" not in described
