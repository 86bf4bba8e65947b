"""Least privilege: what each role and the app policy may do, checked against concrete ARNs."""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

from tests.infra.cloudformation import ACCOUNT, REGION, Deployed

SECRETS = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
CREDENTIALS = SECRETS + "broker-tokens/acct-1/credentials-AbC123"
TOKEN = SECRETS + "broker-tokens/acct-1/token-XyZ789"
OTHER_APP_SECRET = SECRETS + "payroll/db/token-Qq1234"
SECRET_WRITES = (
    "secretsmanager:CreateSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:DeleteSecret",
)


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def grants(statements: list[dict[str, Any]], action: str, resource: str) -> list[dict[str, Any]]:
    """The Allow statements whose actions and resources (IAM wildcards) cover action on resource."""
    return [
        statement
        for statement in statements
        if statement["Effect"] == "Allow"
        and any(fnmatchcase(action.lower(), pattern.lower()) for pattern in _listed(statement["Action"]))
        and any(fnmatchcase(resource, pattern) for pattern in _listed(statement["Resource"]))
    ]


def test_refresher_reads_credentials_and_writes_tokens_inside_the_prefix(default: Deployed) -> None:
    statements = default.statements("RefresherRole")

    assert grants(statements, "secretsmanager:GetSecretValue", CREDENTIALS)
    for action in (
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:TagResource",
    ):
        assert grants(statements, action, TOKEN), action
    assert not grants(statements, "secretsmanager:PutSecretValue", CREDENTIALS)
    assert not grants(statements, "secretsmanager:DeleteSecret", TOKEN)
    assert not grants(statements, "secretsmanager:GetSecretValue", OTHER_APP_SECRET)


def test_token_api_reads_credentials_only_to_sign_pitrade_jwts(default: Deployed) -> None:
    statements = default.statements("TokenApiRole")

    (credential_read,) = grants(statements, "secretsmanager:GetSecretValue", CREDENTIALS)
    assert credential_read["Condition"] == {"StringEquals": {"secretsmanager:ResourceTag/broker": "pitrade"}}
    # Metadata (version ids, tags) but no value: DescribeSecret never returns the secret string.
    assert grants(statements, "secretsmanager:DescribeSecret", CREDENTIALS)
    assert grants(statements, "secretsmanager:GetSecretValue", TOKEN)
    assert not grants(statements, "secretsmanager:GetSecretValue", OTHER_APP_SECRET)


def test_token_api_writes_no_secret_and_logs_in_through_the_refresher(default: Deployed) -> None:
    statements = default.statements("TokenApiRole")

    for action in SECRET_WRITES:
        assert not grants(statements, action, TOKEN), action
        assert not grants(statements, action, CREDENTIALS), action
    invokes = [s for s in statements if "lambda:InvokeFunction" in _listed(s["Action"])]
    assert [s["Resource"] for s in invokes] == ["<RefresherFunction.Arn>"]


def test_secret_resources_follow_the_prefix_parameter(deploy: Callable[..., Deployed]) -> None:
    statements = deploy(SecretPrefix="desk").statements("RefresherRole")

    assert grants(statements, "secretsmanager:GetSecretValue", SECRETS + "desk/a/credentials-AbC123")
    assert not grants(statements, "secretsmanager:GetSecretValue", CREDENTIALS)


def test_wildcard_resource_only_where_no_arn_exists(default: Deployed) -> None:
    # secretsmanager:ListSecrets takes no resource ARN: "*" is the only value IAM accepts for it.
    for role in ("RefresherRole", "TokenApiRole"):
        wildcard_actions = {
            action for s in default.statements(role) if s["Resource"] == "*" for action in _listed(s["Action"])
        }
        assert wildcard_actions == {"secretsmanager:ListSecrets"}, role


def test_each_role_touches_only_its_stack_resources(default: Deployed) -> None:
    refresher = {r for s in default.statements("RefresherRole") for r in _listed(s["Resource"])}
    api = {r for s in default.statements("TokenApiRole") for r in _listed(s["Resource"])}

    assert refresher - {"*"} == {
        "<RefresherLogGroup.Arn>",
        f"{SECRETS}broker-tokens/*/credentials-*",
        f"{SECRETS}broker-tokens/*/token-*",
        "<StateTable.Arn>",
        "<AlertTopic>",
        "<SecretsKey.Arn>",
    }
    assert api - {"*"} == {
        "<TokenApiLogGroup.Arn>",
        f"{SECRETS}broker-tokens/*/credentials-*",
        f"{SECRETS}broker-tokens/*/token-*",
        "<StateTable.Arn>",
        "<RefresherFunction.Arn>",
        "<SecretsKey.Arn>",
    }


def test_key_is_used_only_through_aws_services(default: Deployed) -> None:
    for role, services in (
        ("RefresherRole", {"secretsmanager", "dynamodb", "sns"}),
        ("TokenApiRole", {"secretsmanager", "dynamodb"}),
    ):
        (key_use,) = grants(default.statements(role), "kms:Decrypt", "<SecretsKey.Arn>")
        via = key_use["Condition"]["StringEquals"]["kms:ViaService"]
        assert set(via) == {f"{service}.{REGION}.amazonaws.com" for service in services}, role


def test_key_encrypts_table_and_topic_and_rotates(default: Deployed) -> None:
    assert default.properties("StateTable")["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": "<SecretsKey>",
    }
    assert default.properties("AlertTopic")["KmsMasterKeyId"] == "<SecretsKey>"
    assert default.properties("SecretsKey")["EnableKeyRotation"] is True
    assert default.properties("SecretsKeyAlias")["AliasName"] == "alias/broker-tokens-broker-tokens"
    assert default.resources["SecretsKey"]["DeletionPolicy"] == "Retain"


def test_key_policy_lets_alarms_publish_to_the_encrypted_topic(default: Deployed) -> None:
    statements = default.properties("SecretsKey")["KeyPolicy"]["Statement"]
    (alarms,) = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]

    assert set(alarms["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert alarms["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_token_reader_policy_reads_tokens_not_credentials(default: Deployed) -> None:
    statements = default.properties("TokenReaderPolicy")["PolicyDocument"]["Statement"]

    assert grants(statements, "secretsmanager:GetSecretValue", TOKEN)
    assert not grants(statements, "secretsmanager:GetSecretValue", CREDENTIALS)
    (decrypt,) = grants(statements, "kms:Decrypt", "<SecretsKey.Arn>")
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}}
    (invoke,) = grants(statements, "lambda:InvokeFunction", "<TokenApiFunction.Arn>")
    assert invoke["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}
    assert grants(statements, "lambda:InvokeFunctionUrl", "<TokenApiFunction.Arn>")
