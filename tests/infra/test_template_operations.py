"""State table, alerts, alarms, dashboard, the optional static egress, and the outputs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

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


def alarms_of(deployed: Deployed) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(namespace, metric, first dimension's value) -> the alarm's resolved properties."""
    return {
        (p["Namespace"], p["MetricName"], p["Dimensions"][0]["Value"]): p
        for p in map(deployed.resolve, (r["Properties"] for r in deployed.of_type("AWS::CloudWatch::Alarm").values()))
    }


def test_alarms_cover_failures_deadline_dead_letters_and_crashes(default: Deployed) -> None:
    alarms = alarms_of(default)

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
    # The state is that of the latest scheduled run (ThirdRun, before the open) until the next one.
    assert (deadline["Statistic"], deadline["TreatMissingData"]) == ("Maximum", "ignore")
    assert deadline["OKActions"] == ["<AlertTopic>"]
    assert "scheduled" in deadline["AlarmDescription"]
    assert alarms[("BrokerTokens", "RefreshFailed", "broker-tokens")]["Dimensions"] == [
        {"Name": "service", "Value": "broker-tokens"}
    ]


def test_two_stacks_in_one_account_never_share_a_metric(deploy: Callable[..., Deployed]) -> None:
    # The service dimension comes from one value (the stack's name): the functions emit it
    # (POWERTOOLS_SERVICE_NAME), the alarms filter on it and the dashboard plots it.
    seen = {}
    for stack in ("desk-a", "desk-b"):
        deployed = deploy(stack=stack)
        services = {
            deployed.properties(function)["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
            for function in ("RefresherFunction", "TokenApiFunction")
        }
        ours = {key: alarm for key, alarm in alarms_of(deployed).items() if key[0] == "BrokerTokens"}
        assert services == {stack}
        assert {key[2] for key in ours} == {stack}
        assert all(alarm["Dimensions"] == [{"Name": "service", "Value": stack}] for alarm in ours.values())
        body = json.loads(deployed.properties("Dashboard")["DashboardBody"])
        assert dashboard_services(body) == {stack}
        seen[stack] = services
    assert seen["desk-a"].isdisjoint(seen["desk-b"])


def dashboard_services(body: dict[str, Any]) -> set[str]:
    """Every service value the dashboard's own metrics (namespace BrokerTokens) filter on."""
    found = set()
    for widget in body["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            if isinstance(metric[0], dict):
                found.update(re.findall(r'service="([^"]+)"', metric[0]["expression"]))
            elif metric[0] == "BrokerTokens":
                found.add(metric[metric.index("service") + 1])
    return found


def test_a_failed_first_deploy_leaves_no_key_or_table_behind(default: Deployed) -> None:
    # Retain keeps them when the stack is deleted, but also when its very first create rolls back:
    # a key at 1 USD a month and a deletion-protected table nobody asked for.
    for resource in ("SecretsKey", "StateTable"):
        assert default.resources[resource]["DeletionPolicy"] == "RetainExceptOnCreate", resource
        assert default.resources[resource]["UpdateReplacePolicy"] == "Retain", resource


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
