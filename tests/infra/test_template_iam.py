"""Least privilege: what each role and the app policy may do, checked against concrete ARNs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

import pytest

from tests.infra.cloudformation import ACCOUNT, REGION, Deployed

SECRETS = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
CREDENTIALS = SECRETS + "broker-tokens/acct-1/credentials-AbC123"
TOKEN = SECRETS + "broker-tokens/acct-1/token-XyZ789"
# A secret that does not exist yet has no random suffix: IAM evaluates the request on its bare name.
NEW_CREDENTIALS = SECRETS + "broker-tokens/acct-1/credentials"
NEW_TOKEN = SECRETS + "broker-tokens/acct-1/token"
OTHER_APP_SECRET = SECRETS + "payroll/db/token-Qq1234"
DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
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


def test_a_first_token_can_be_created_and_a_missing_one_reads_as_absent(default: Deployed) -> None:
    # Both ARN shapes: the existing secret (with its 6-character suffix) and the bare name IAM sees
    # for one that does not exist yet (CreateSecret, the first PutSecretValue, a GetSecretValue).
    refresher = default.statements("RefresherRole")
    api = default.statements("TokenApiRole")
    reader = default.properties("TokenReaderPolicy")["PolicyDocument"]["Statement"]

    for token in (TOKEN, NEW_TOKEN):
        for action in ("secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue"):
            assert grants(refresher, action, token), (action, token)
        assert grants(api, "secretsmanager:GetSecretValue", token), token
        assert grants(reader, "secretsmanager:GetSecretValue", token), token
    for credentials in (CREDENTIALS, NEW_CREDENTIALS):
        assert grants(refresher, "secretsmanager:GetSecretValue", credentials), credentials
        assert grants(api, "secretsmanager:DescribeSecret", credentials), credentials
    # Still only the account's two secrets: nothing of another application, no credentials write.
    assert not grants(refresher, "secretsmanager:PutSecretValue", NEW_CREDENTIALS)
    assert not grants(reader, "secretsmanager:GetSecretValue", NEW_CREDENTIALS)
    assert not grants(refresher, "secretsmanager:GetSecretValue", SECRETS + "payroll/db/token")


def test_refresher_does_not_move_version_stages(default: Deployed) -> None:
    # PutSecretValue makes the new version AWSCURRENT by itself; secrets.py never moves a stage.
    assert not grants(default.statements("RefresherRole"), "secretsmanager:UpdateSecretVersionStage", TOKEN)


def test_token_api_is_read_only_on_the_table(default: Deployed) -> None:
    statements = default.statements("TokenApiRole")

    for action in ("GetItem", "Query", "Scan"):
        assert grants(statements, f"dynamodb:{action}", "<StateTable.Arn>"), action
    for action in DYNAMODB_WRITES:
        assert not grants(statements, f"dynamodb:{action}", "<StateTable.Arn>"), action


def test_refresher_writes_account_items_but_never_callers(default: Deployed) -> None:
    statements = default.statements("RefresherRole")

    for action in ("PutItem", "UpdateItem", "DeleteItem"):
        (write,) = grants(statements, f"dynamodb:{action}", "<StateTable.Arn>")
        assert write["Condition"]["Null"] == {"dynamodb:LeadingKeys": "false"}
        assert may_write(write, "angel-main"), action  # its state and lease items
        for key in ("caller#bot", "apikey#0123456789ab", "principal#arn:aws:iam::123456789012:role/bots"):
            assert not may_write(write, key), (action, key)
    for action in ("BatchWriteItem", "TransactWriteItems"):
        assert not grants(statements, f"dynamodb:{action}", "<StateTable.Arn>"), action


def may_write(statement: dict[str, Any], leading_key: str) -> bool:
    """The statement's ForAllValues:StringNotLike on dynamodb:LeadingKeys, for one partition key.

    A negated operator with several values holds when the key matches none of them.
    """
    patterns = statement["Condition"]["ForAllValues:StringNotLike"]["dynamodb:LeadingKeys"]
    return not any(fnmatchcase(leading_key, pattern) for pattern in patterns)


def test_token_api_may_only_decrypt(full: Deployed) -> None:
    statements = full.statements("TokenApiRole")

    assert grants(statements, "kms:Decrypt", "<SecretsKey.Arn>")
    for action in ("kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom"):
        assert not grants(statements, action, "<SecretsKey.Arn>"), action


def test_a_reader_policy_for_some_accounts_only(deploy: Callable[..., Deployed]) -> None:
    assert "TokenReaderSomeAccountsPolicy" not in deploy().resources
    deployed = deploy(TokenReaderAccounts="angel-*,kite-desk")
    statements = deployed.properties("TokenReaderSomeAccountsPolicy")["PolicyDocument"]["Statement"]
    read = "secretsmanager:GetSecretValue"

    (tokens,) = [s for s in statements if s["Sid"] == "ReadTokensOfSomeAccounts"]
    assert set(tokens["Resource"]) == {
        f"{SECRETS}broker-tokens/angel-*/token*",
        f"{SECRETS}broker-tokens/kite-desk/token*",
    }
    for allowed in ("angel-main", "angel-2", "kite-desk"):
        assert grants(statements, read, f"{SECRETS}broker-tokens/{allowed}/token-AbC123"), allowed
        assert grants(statements, read, f"{SECRETS}broker-tokens/{allowed}/token"), allowed
    for refused in ("kite-desk2", "tradejini-1", "kite"):
        assert not grants(statements, read, f"{SECRETS}broker-tokens/{refused}/token-AbC123"), refused
    assert not grants(statements, read, f"{SECRETS}broker-tokens/angel-main/credentials-AbC123")
    assert deployed.template["Outputs"]["TokenReaderSomeAccountsPolicyArn"]["Value"] == {
        "Ref": "TokenReaderSomeAccountsPolicy"
    }
    ten = [f"desk-{n}" for n in range(10)]
    widest = deploy(TokenReaderAccounts=",".join(ten)).properties("TokenReaderSomeAccountsPolicy")
    (slots,) = [s["Resource"] for s in widest["PolicyDocument"]["Statement"] if s["Sid"] == "ReadTokensOfSomeAccounts"]
    assert sorted(slots) == [f"{SECRETS}broker-tokens/{account}/token*" for account in ten]
    # The all-accounts policy stays as it was, beside it.
    assert grants(deployed.properties("TokenReaderPolicy")["PolicyDocument"]["Statement"], read, TOKEN)


def test_reader_accounts_parameter_takes_only_account_patterns(template: dict[str, Any]) -> None:
    pattern = re.compile(template["Parameters"]["TokenReaderAccounts"]["AllowedPattern"])

    for good in ("", "angel-main", "angel-*,kite-desk", "desk-?"):
        assert pattern.fullmatch(good), good
    assert pattern.fullmatch(",".join(f"a{n}" for n in range(10)))  # ten slots in the policy
    for bad in ("angel main", "a/b", "angel-*,", "*/token", "Angel", ",".join(f"a{n}" for n in range(11))):
        assert not pattern.fullmatch(bad), bad


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


@pytest.mark.parametrize("profile", ["lean", "full"])
def test_each_role_touches_only_its_stack_resources(default: Deployed, full: Deployed, profile: str) -> None:
    deployed = full if profile == "full" else default
    refresher = {r for s in deployed.statements("RefresherRole") for r in _listed(s["Resource"])}
    api = {r for s in deployed.statements("TokenApiRole") for r in _listed(s["Resource"])}
    key = {"<SecretsKey.Arn>"} if profile == "full" else set()

    assert refresher - {"*"} == {
        "<RefresherLogGroup.Arn>",
        f"{SECRETS}broker-tokens/*/credentials*",
        f"{SECRETS}broker-tokens/*/token*",
        "<StateTable.Arn>",
        "<AlertTopic>",
        *key,
    }
    assert api - {"*"} == {
        "<TokenApiLogGroup.Arn>",
        f"{SECRETS}broker-tokens/*/credentials*",
        f"{SECRETS}broker-tokens/*/token*",
        "<StateTable.Arn>",
        "<RefresherFunction.Arn>",
        *key,
    }


def test_key_is_used_only_through_aws_services(full: Deployed) -> None:
    for role, services in (
        ("RefresherRole", {"secretsmanager", "dynamodb", "sns"}),
        ("TokenApiRole", {"secretsmanager", "dynamodb"}),
    ):
        (key_use,) = grants(full.statements(role), "kms:Decrypt", "<SecretsKey.Arn>")
        via = key_use["Condition"]["StringEquals"]["kms:ViaService"]
        assert set(via) == {f"{service}.{REGION}.amazonaws.com" for service in services}, role


def test_key_encrypts_table_and_topic_and_rotates(full: Deployed) -> None:
    assert full.properties("StateTable")["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": "<SecretsKey>",
    }
    assert full.properties("AlertTopic")["KmsMasterKeyId"] == "<SecretsKey>"
    assert full.properties("SecretsKey")["EnableKeyRotation"] is True
    assert full.properties("SecretsKeyAlias")["AliasName"] == "alias/broker-tokens-broker-tokens"
    assert full.resources["SecretsKey"]["DeletionPolicy"] == "RetainExceptOnCreate"


def test_key_policy_lets_alarms_publish_to_the_encrypted_topic(full: Deployed) -> None:
    statements = full.properties("SecretsKey")["KeyPolicy"]["Statement"]
    (alarms,) = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]

    assert set(alarms["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert alarms["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_token_reader_policy_reads_tokens_not_credentials(full: Deployed) -> None:
    statements = full.properties("TokenReaderPolicy")["PolicyDocument"]["Statement"]

    assert grants(statements, "secretsmanager:GetSecretValue", TOKEN)
    assert not grants(statements, "secretsmanager:GetSecretValue", CREDENTIALS)
    (decrypt,) = grants(statements, "kms:Decrypt", "<SecretsKey.Arn>")
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}}
    (invoke,) = grants(statements, "lambda:InvokeFunction", "<TokenApiFunction.Arn>")
    assert invoke["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}
    assert grants(statements, "lambda:InvokeFunctionUrl", "<TokenApiFunction.Arn>")


def test_the_lean_profile_has_no_key_to_pay_for_and_grants_no_kms(default: Deployed) -> None:
    # aws/secretsmanager serves any principal of the account through Secrets Manager; the table
    # uses DynamoDB's AWS-owned key and the topic none, so no role or policy needs a kms action.
    assert default.of_type("AWS::KMS::Key") == default.of_type("AWS::KMS::Alias") == {}
    assert "SSESpecification" not in default.properties("StateTable")
    assert "KmsMasterKeyId" not in default.properties("AlertTopic")
    roles = ("RefresherRole", "TokenApiRole", "PersonPagesRole")
    statements = [s for role in roles for s in default.statements(role)]
    statements += default.properties("TokenReaderPolicy")["PolicyDocument"]["Statement"]
    assert not [s for s in statements if any(a.startswith("kms:") for a in _listed(s["Action"]))]
    assert "SecretsKey" not in json.dumps(default.template["Outputs"])
