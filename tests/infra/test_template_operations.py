"""State table, alerts, alarms, dashboard, the optional static egress, and the outputs."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.infra.cloudformation import Deployed

EMITTED_METRICS = {
    "RefreshSucceeded",
    "RefreshFailed",
    "AccountsNotFresh",
    "LoginLatencyMs",
    "TokenAgeSeconds",
    "TokenServed",
    "RequestRefused",
}
EGRESS_TYPES = {
    "AWS::EC2::VPC",
    "AWS::EC2::InternetGateway",
    "AWS::EC2::VPCGatewayAttachment",
    "AWS::EC2::Subnet",
    "AWS::EC2::EIP",
    "AWS::EC2::NatGateway",
    "AWS::EC2::RouteTable",
    "AWS::EC2::Route",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::SecurityGroup",
}
ALWAYS_OUTPUTS = {
    "RefresherFunctionName",
    "TokenApiFunctionName",
    "TokenApiUrl",
    "StateTableName",
    "AlertTopicArn",
    "SecretsKeyArn",
    "SecretsKeyAlias",
    "RefreshDeadLetterQueueUrl",
    "TokenReaderPolicyArn",
    "DashboardName",
    "TelegramBotSecretName",
}


def test_state_table_shape(default: Deployed) -> None:
    table = default.properties("StateTable")

    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert table["AttributeDefinitions"] == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionProtectionEnabled"] is True


def test_alarms_cover_failures_deadline_dead_letters_and_crashes(default: Deployed) -> None:
    alarms = {
        (p["Namespace"], p["MetricName"], p["Dimensions"][0]["Value"]): p
        for p in map(default.resolve, (r["Properties"] for r in default.of_type("AWS::CloudWatch::Alarm").values()))
    }

    assert set(alarms) == {
        ("BrokerTokens", "RefreshFailed", "broker-tokens"),
        ("BrokerTokens", "AccountsNotFresh", "broker-tokens"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "<RefreshDeadLetterQueue.QueueName>"),
        ("AWS/Lambda", "Errors", "<RefresherFunction>"),
        ("AWS/Lambda", "Errors", "<TokenApiFunction>"),
    }
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == ["<AlertTopic>"]
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    deadline = alarms[("BrokerTokens", "AccountsNotFresh", "broker-tokens")]
    # The state is that of the latest run (ThirdRun, before the open) until the next datum arrives.
    assert (deadline["Statistic"], deadline["TreatMissingData"]) == ("Maximum", "ignore")
    assert deadline["OKActions"] == ["<AlertTopic>"]
    assert alarms[("BrokerTokens", "RefreshFailed", "broker-tokens")]["Dimensions"] == [
        {"Name": "service", "Value": "broker-tokens"}
    ]


def test_dashboard_shows_every_emitted_metric(default: Deployed) -> None:
    body = json.loads(default.properties("Dashboard")["DashboardBody"])
    text = json.dumps(body)

    assert all(metric in text for metric in EMITTED_METRICS)
    assert "<RefresherFunction>" in text
    assert "<TokenApiFunction>" in text
    assert {widget["type"] for widget in body["widgets"]} == {"metric", "alarm"}


def test_alert_email_subscribes_only_when_given(deploy: Callable[..., Deployed]) -> None:
    assert deploy().of_type("AWS::SNS::Subscription") == {}
    with_email = deploy(AlertEmail="ops@example.com")
    (subscription,) = with_email.of_type("AWS::SNS::Subscription")

    assert with_email.properties(subscription) == {
        "TopicArn": "<AlertTopic>",
        "Protocol": "email",
        "Endpoint": "ops@example.com",
    }


def test_without_static_egress_there_is_no_network_to_pay_for(default: Deployed) -> None:
    types = {resource["Type"] for resource in default.resources.values()}

    assert not types & EGRESS_TYPES
    for function in ("RefresherFunction", "TokenApiFunction"):
        assert "VpcConfig" not in default.resources[function]["Properties"]
    for role in ("RefresherRole", "TokenApiRole"):
        assert "ManagedPolicyArns" not in default.resources[role]["Properties"]
    assert set(default.template["Outputs"]) == ALWAYS_OUTPUTS


def test_static_egress_puts_both_functions_behind_one_nat_with_an_elastic_ip(deploy: Callable[..., Deployed]) -> None:
    on = deploy(StaticEgress="true")
    resources = on.resources
    count = {kind: sum(r["Type"] == kind for r in resources.values()) for kind in EGRESS_TYPES}

    assert count["AWS::EC2::VPC"] == count["AWS::EC2::NatGateway"] == count["AWS::EC2::EIP"] == 1
    assert count["AWS::EC2::Subnet"] == 3
    assert resources["NatGateway"]["Properties"]["AllocationId"] == {"Fn::GetAtt": ["EgressIp", "AllocationId"]}
    assert resources["NatGateway"]["Properties"]["SubnetId"] == {"Ref": "PublicSubnet"}
    assert on.properties("PrivateDefaultRoute")["NatGatewayId"] == "<NatGateway>"
    assert on.properties("PublicDefaultRoute")["GatewayId"] == "<EgressInternetGateway>"
    for function in ("RefresherFunction", "TokenApiFunction"):
        assert on.properties(function)["VpcConfig"] == {
            "SecurityGroupIds": ["<FunctionSecurityGroup>"],
            "SubnetIds": ["<PrivateSubnetA>", "<PrivateSubnetB>"],
        }
    for role in ("RefresherRole", "TokenApiRole"):
        assert on.properties(role)["ManagedPolicyArns"] == [
            "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
        ]
    assert set(on.template["Outputs"]) == ALWAYS_OUTPUTS | {"EgressIp"}
    assert on.template["Outputs"]["EgressIp"]["Value"] == {"Ref": "EgressIp"}
    assert "register this ip" in on.template["Outputs"]["EgressIp"]["Description"].lower()


def test_outputs_point_at_the_stack_resources(default: Deployed) -> None:
    outputs = {name: default.resolve(output["Value"]) for name, output in default.template["Outputs"].items()}

    assert outputs["TokenApiUrl"] == "<TokenApiFunctionUrl.FunctionUrl>"
    assert outputs["StateTableName"] == "<StateTable>"
    assert outputs["AlertTopicArn"] == "<AlertTopic>"
    assert outputs["TokenReaderPolicyArn"] == "<TokenReaderPolicy>"
    assert (outputs["RefresherFunctionName"], outputs["TokenApiFunctionName"]) == (
        "<RefresherFunction>",
        "<TokenApiFunction>",
    )
