"""The person pages: their own small function behind a public Function URL, with least privilege."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.infra.cloudformation import ACCOUNT, REGION, Deployed
from tests.infra.test_template_functions import SHARED_ENVIRONMENT
from tests.infra.test_template_iam import CREDENTIALS, TOKEN, grants, may_write

REFRESHER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:broker-tokens-refresher"
TABLE = "<StateTable.Arn>"


def test_person_pages_run_their_own_thin_handler(default: Deployed) -> None:
    function = default.properties("PersonPagesFunction")

    assert function["Handler"] == "person_pages.app.lambda_handler"
    assert (function["Runtime"], function["Architectures"], function["Timeout"]) == ("python3.13", ["arm64"], 120)
    assert function["Role"] == "<PersonPagesRole.Arn>"
    assert function["LoggingConfig"] == {"LogGroup": "<PersonPagesLogGroup>"}
    # The refresher is found by its fixed name: its alerts carry this function's URL, so a Ref each way
    # would be a dependency circle.
    env = function["Environment"]["Variables"]
    assert env == {**SHARED_ENVIRONMENT, "REFRESHER_FUNCTION_NAME": "broker-tokens-refresher"}
    assert default.properties("RefresherFunction")["FunctionName"] == "broker-tokens-refresher"


@pytest.mark.parametrize("mode", ["iam", "api_key"])
def test_person_url_is_public_in_either_auth_mode(deploy: Callable[..., Deployed], mode: str) -> None:
    deployed = deploy(TokenApiAuthMode=mode)
    url = deployed.properties("PersonPagesFunctionUrl")
    permissions = [
        properties
        for r in deployed.of_type("AWS::Lambda::Permission").values()
        if (properties := deployed.resolve(r["Properties"]))["FunctionName"] == "<PersonPagesFunction>"
    ]

    assert (url["AuthType"], url["TargetFunctionArn"]) == ("NONE", "<PersonPagesFunction.Arn>")
    assert sorted((p["Action"], p["Principal"]) for p in permissions) == [
        ("lambda:InvokeFunction", "*"),
        ("lambda:InvokeFunctionUrl", "*"),
    ]
    invoke = next(p for p in permissions if p["Action"] == "lambda:InvokeFunction")
    assert invoke["InvokedViaFunctionUrl"] is True
    assert deployed.resolve(deployed.template["Outputs"]["PersonUrl"]["Value"]) == (
        "<PersonPagesFunctionUrl.FunctionUrl>"
    )
    refresher_env = deployed.properties("RefresherFunction")["Environment"]["Variables"]
    assert refresher_env["PERSON_URL"] == "<PersonPagesFunctionUrl.FunctionUrl>"


@pytest.mark.parametrize("profile", ["lean", "full"])
def test_person_pages_read_state_and_delegate_completions_only(default: Deployed, full: Deployed, profile: str) -> None:
    statements = (full if profile == "full" else default).statements("PersonPagesRole")

    (read,) = grants(statements, "dynamodb:GetItem", TABLE)
    # A public function: an account's state item, never a caller's or an API key's.
    assert read["Condition"]["Null"] == {"dynamodb:LeadingKeys": "false"}
    assert may_write(read, "blinkx-main")
    for key in ("caller#bot", "apikey#0123456789ab", "principal#arn:aws:iam::123456789012:role/bots"):
        assert not may_write(read, key), key
    assert grants(statements, "lambda:InvokeFunction", REFRESHER_ARN)
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Scan"):
        assert not grants(statements, action, TABLE), action
    for action in ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:PutSecretValue"):
        assert not grants(statements, action, CREDENTIALS) and not grants(statements, action, TOKEN), action
    assert not grants(statements, "sns:Publish", "<AlertTopic>")
    assert not grants(statements, "lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other")
    keys = [s for s in statements if "kms:Decrypt" in s["Action"]]
    if profile == "lean":  # the table's AWS-owned key needs no grant
        assert keys == []
        return
    (key,) = keys
    assert key["Condition"] == {"StringEquals": {"kms:ViaService": f"dynamodb.{REGION}.amazonaws.com"}}


@pytest.mark.parametrize("value", ["on", "off"])
def test_zerodha_web_login_is_a_parameter(deploy: Callable[..., Deployed], value: str) -> None:
    env = deploy(ZerodhaWebLogin=value).properties("RefresherFunction")["Environment"]["Variables"]

    assert env["ZERODHA_WEB_LOGIN"] == value
