"""State table, alerts, alarms, dashboard, the optional static egress, and the outputs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

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
    "AWS::EC2::Instance",
    "AWS::EC2::LaunchTemplate",
    "AWS::EC2::EIPAssociation",
}
ALWAYS_OUTPUTS = {
    "RefresherFunctionName",
    "TokenApiFunctionName",
    "TokenApiUrl",
    "PersonUrl",
    "StateTableName",
    "AlertTopicArn",
    "RefreshDeadLetterQueueUrl",
    "TokenReaderPolicyArn",
    "TelegramBotSecretName",
}
# Only in the full profile: the stack's KMS key and the dashboard.
FULL_OUTPUTS = {"SecretsKeyArn", "SecretsKeyAlias", "DashboardName"}


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
        deployed = deploy(stack=stack, DashboardMode="basic")
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


def test_a_failed_first_deploy_leaves_no_key_or_table_behind(full: Deployed) -> None:
    # Retain keeps them when the stack is deleted, but also when its very first create rolls back:
    # a key at 1 USD a month and a deletion-protected table nobody asked for.
    for resource in ("SecretsKey", "StateTable"):
        assert full.resources[resource]["DeletionPolicy"] == "RetainExceptOnCreate", resource
        assert full.resources[resource]["UpdateReplacePolicy"] == "Retain", resource


def test_dashboard_shows_every_emitted_metric(full: Deployed) -> None:
    body = json.loads(full.properties("Dashboard")["DashboardBody"])
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


def counts(deployed: Deployed) -> dict[str, int]:
    return {kind: sum(r["Type"] == kind for r in deployed.resources.values()) for kind in EGRESS_TYPES}


@pytest.mark.parametrize("mode", ["nat-instance", "nat-gateway"])
def test_static_egress_puts_both_functions_behind_one_nat_with_an_elastic_ip(
    deploy: Callable[..., Deployed], mode: str
) -> None:
    on = deploy(EgressMode=mode)
    count = counts(on)

    assert count["AWS::EC2::VPC"] == count["AWS::EC2::EIP"] == 1
    assert count["AWS::EC2::Subnet"] == 3
    assert on.properties("PublicDefaultRoute")["GatewayId"] == "<EgressInternetGateway>"
    assert on.properties("PublicSubnetRoutes") == {"SubnetId": "<PublicSubnet>", "RouteTableId": "<PublicRouteTable>"}
    for subnet in ("PrivateSubnetA", "PrivateSubnetB"):
        assert on.properties(f"{subnet}Routes") == {"SubnetId": f"<{subnet}>", "RouteTableId": "<PrivateRouteTable>"}
    for function in ("RefresherFunction", "TokenApiFunction", "PersonPagesFunction"):
        assert on.properties(function)["VpcConfig"] == {
            "SecurityGroupIds": ["<FunctionSecurityGroup>"],
            "SubnetIds": ["<PrivateSubnetA>", "<PrivateSubnetB>"],
        }
    for role in ("RefresherRole", "TokenApiRole", "PersonPagesRole"):
        assert on.properties(role)["ManagedPolicyArns"] == [
            "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
        ]
    # The Elastic IP is an output in either mode: the address to register with the brokers.
    assert set(on.template["Outputs"]) == ALWAYS_OUTPUTS | {"EgressIp"}
    assert on.template["Outputs"]["EgressIp"]["Value"] == {"Ref": "EgressIp"}
    assert "register this ip" in on.template["Outputs"]["EgressIp"]["Description"].lower()


def test_nat_gateway_mode_routes_the_private_subnets_through_the_gateway(deploy: Callable[..., Deployed]) -> None:
    on = deploy(EgressMode="nat-gateway")
    count = counts(on)

    assert count["AWS::EC2::NatGateway"] == 1
    assert count["AWS::EC2::Instance"] == count["AWS::EC2::LaunchTemplate"] == count["AWS::EC2::EIPAssociation"] == 0
    assert on.properties("NatGateway") == {"AllocationId": "<EgressIp.AllocationId>", "SubnetId": "<PublicSubnet>"}
    assert on.properties("PrivateDefaultRoute") == {
        "RouteTableId": "<PrivateRouteTable>",
        "DestinationCidrBlock": "0.0.0.0/0",
        "NatGatewayId": "<NatGateway>",
    }
    assert on.resources["PublicSubnet"]["Properties"]["MapPublicIpOnLaunch"] is False


def test_nat_instance_mode_is_one_small_arm_instance_keeping_the_elastic_ip(deploy: Callable[..., Deployed]) -> None:
    on = deploy(EgressMode="nat-instance")
    count = counts(on)

    assert count["AWS::EC2::NatGateway"] == 0
    assert count["AWS::EC2::Instance"] == count["AWS::EC2::LaunchTemplate"] == count["AWS::EC2::EIPAssociation"] == 1
    # The default route leads to the instance, the Elastic IP is associated with whichever instance
    # CloudFormation runs: a replaced instance gets the same address back.
    assert on.properties("PrivateDefaultRoute") == {
        "RouteTableId": "<PrivateRouteTable>",
        "DestinationCidrBlock": "0.0.0.0/0",
        "InstanceId": "<NatInstance>",
    }
    assert on.properties("NatInstanceIp") == {"AllocationId": "<EgressIp.AllocationId>", "InstanceId": "<NatInstance>"}
    instance = on.properties("NatInstance")
    assert instance["SourceDestCheck"] is False and instance["SubnetId"] == "<PublicSubnet>"
    assert instance["LaunchTemplate"]["LaunchTemplateId"] == "<NatInstanceTemplate>"
    data = on.resources["NatInstanceTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["InstanceType"] == "t4g.nano"
    assert on.resolve(data["ImageId"]) == "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
    assert on.template["Parameters"]["NatInstanceImage"]["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert data["MetadataOptions"]["HttpTokens"] == "required"  # IMDSv2 only
    assert "IamInstanceProfile" not in data  # no AWS credentials on the box
    script = on.resolve(data["UserData"]["Fn::Base64"])
    assert "net.ipv4.ip_forward = 1" in script
    assert "-t nat -A POSTROUTING" in script and "-s 10.42.0.0/16 -j MASQUERADE" in script
    assert "iptables -P FORWARD DROP" in script and "--dport 443" in script
    assert on.resources["PublicSubnet"]["Properties"]["MapPublicIpOnLaunch"] is True
    group = on.properties("NatInstanceSecurityGroup")
    assert [(r["FromPort"], r["CidrIp"]) for r in group["SecurityGroupIngress"]] == [(443, "10.42.0.0/16")]
    assert [(r["FromPort"], r["CidrIp"]) for r in group["SecurityGroupEgress"]] == [(443, "0.0.0.0/0")]
    # Automatic recovery: a failed host recovers the same instance, a hung one reboots.
    actions = {
        on.properties(alarm)["MetricName"]: on.properties(alarm)["AlarmActions"]
        for alarm in ("NatInstanceRecovery", "NatInstanceReboot")
    }
    assert actions == {
        "StatusCheckFailed_System": ["arn:aws:automate:ap-south-1:ec2:recover"],
        "StatusCheckFailed_Instance": ["arn:aws:automate:ap-south-1:ec2:reboot"],
    }


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


def test_both_profiles_keep_every_alarm_and_only_the_full_one_has_a_dashboard(
    default: Deployed, full: Deployed
) -> None:
    assert default.of_type("AWS::CloudWatch::Dashboard") == {}
    assert list(full.of_type("AWS::CloudWatch::Dashboard")) == ["Dashboard"]
    assert default.of_type("AWS::CloudWatch::Alarm").keys() == full.of_type("AWS::CloudWatch::Alarm").keys()
    assert len(default.of_type("AWS::CloudWatch::Alarm")) >= 5
    assert set(full.template["Outputs"]) == ALWAYS_OUTPUTS | FULL_OUTPUTS
