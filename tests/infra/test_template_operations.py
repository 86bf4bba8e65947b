"""State table, alerts, alarms, dashboard, the optional static egress, and the outputs."""

from __future__ import annotations

import json
from collections.abc import Callable

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
    for function in ("RefresherFunction", "TokenApiFunction"):
        assert on.properties(function)["VpcConfig"] == {
            "SecurityGroupIds": ["<FunctionSecurityGroup>"],
            "SubnetIds": ["<PrivateSubnetA>", "<PrivateSubnetB>"],
        }
    for role in ("RefresherRole", "TokenApiRole"):
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
