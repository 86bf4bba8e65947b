"""infra/deployer-policy.json lets `make deploy` create, update and delete every resource of the
template (after the SAM transform), and nothing the template does not need."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from tests.infra.cloudformation import Deployed

POLICY = Path(__file__).resolve().parents[2] / "infra" / "deployer-policy.json"

# What CloudFormation calls to create and delete each resource type of the template (and to update
# what a redeploy changes). A type missing here fails the test: add it, and its actions to the policy.
NEEDS: dict[str, tuple[str, ...]] = {
    "AWS::CloudWatch::Alarm": ("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"),
    "AWS::CloudWatch::Dashboard": ("cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards"),
    "AWS::DynamoDB::Table": ("dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:DescribeTable",
                             "dynamodb:UpdateTable", "dynamodb:UpdateTimeToLive"),
    "AWS::EC2::EIP": ("ec2:AllocateAddress", "ec2:ReleaseAddress", "ec2:DescribeAddresses"),
    "AWS::EC2::EIPAssociation": ("ec2:AssociateAddress", "ec2:DisassociateAddress"),
    "AWS::EC2::Instance": ("ec2:RunInstances", "ec2:TerminateInstances", "ec2:DescribeInstances",
                           "ec2:ModifyInstanceAttribute"),
    "AWS::EC2::LaunchTemplate": ("ec2:CreateLaunchTemplate", "ec2:DeleteLaunchTemplate",
                                 "ec2:CreateLaunchTemplateVersion"),
    "AWS::EC2::InternetGateway": ("ec2:CreateInternetGateway", "ec2:DeleteInternetGateway"),
    "AWS::EC2::NatGateway": ("ec2:CreateNatGateway", "ec2:DeleteNatGateway", "ec2:DescribeNatGateways"),
    "AWS::EC2::Route": ("ec2:CreateRoute", "ec2:DeleteRoute"),
    "AWS::EC2::RouteTable": ("ec2:CreateRouteTable", "ec2:DeleteRouteTable"),
    "AWS::EC2::SecurityGroup": ("ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup",
                                "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupEgress"),
    "AWS::EC2::Subnet": ("ec2:CreateSubnet", "ec2:DeleteSubnet", "ec2:DescribeSubnets"),
    "AWS::EC2::SubnetRouteTableAssociation": ("ec2:AssociateRouteTable", "ec2:DisassociateRouteTable"),
    "AWS::EC2::VPC": ("ec2:CreateVpc", "ec2:DeleteVpc", "ec2:ModifyVpcAttribute", "ec2:DescribeVpcs"),
    "AWS::EC2::VPCEndpoint": ("ec2:CreateVpcEndpoint", "ec2:DeleteVpcEndpoints"),
    "AWS::EC2::VPCGatewayAttachment": ("ec2:AttachInternetGateway", "ec2:DetachInternetGateway"),
    "AWS::IAM::ManagedPolicy": ("iam:CreatePolicy", "iam:DeletePolicy", "iam:CreatePolicyVersion",
                                "iam:DeletePolicyVersion"),
    "AWS::IAM::Role": ("iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:PutRolePolicy",
                       "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:PassRole"),
    "AWS::KMS::Alias": ("kms:CreateAlias", "kms:DeleteAlias"),
    "AWS::KMS::Key": ("kms:CreateKey", "kms:PutKeyPolicy", "kms:DescribeKey", "kms:ScheduleKeyDeletion",
                      "kms:EnableKeyRotation"),
    "AWS::Lambda::EventInvokeConfig": ("lambda:PutFunctionEventInvokeConfig",
                                       "lambda:DeleteFunctionEventInvokeConfig"),
    "AWS::Lambda::Function": ("lambda:CreateFunction", "lambda:DeleteFunction", "lambda:GetFunction",
                              "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration"),
    "AWS::Lambda::Permission": ("lambda:AddPermission", "lambda:RemovePermission"),
    "AWS::Lambda::Url": ("lambda:CreateFunctionUrlConfig", "lambda:DeleteFunctionUrlConfig"),
    "AWS::Logs::LogGroup": ("logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy"),
    "AWS::SNS::Subscription": ("sns:Subscribe", "sns:Unsubscribe"),
    "AWS::SNS::Topic": ("sns:CreateTopic", "sns:DeleteTopic", "sns:SetTopicAttributes"),
    "AWS::SQS::Queue": ("sqs:CreateQueue", "sqs:DeleteQueue", "sqs:GetQueueAttributes"),
    "AWS::Scheduler::Schedule": ("scheduler:CreateSchedule", "scheduler:DeleteSchedule", "scheduler:UpdateSchedule"),
}  # fmt: skip
# What `sam deploy` itself needs beside the resources: the stack, the transform, the artifacts bucket.
DEPLOY = ("cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet", "cloudformation:DescribeStacks",
          "cloudformation:DescribeChangeSet", "s3:PutObject", "s3:GetObject")  # fmt: skip


def allowed_actions() -> list[str]:
    """Every action pattern the policy allows."""
    policy: dict[str, Any] = json.loads(POLICY.read_text(encoding="utf-8"))
    patterns: list[str] = []
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
        actions = statement["Action"]
        patterns.extend([actions] if isinstance(actions, str) else actions)
    return patterns


def allows(action: str) -> bool:
    return any(fnmatchcase(action.lower(), pattern.lower()) for pattern in allowed_actions())


def test_every_resource_type_of_the_template_can_be_deployed(transformed: dict[str, Any]) -> None:
    types = {resource["Type"] for resource in transformed["Resources"].values()}
    unknown = sorted(types - set(NEEDS))
    assert not unknown, f"new resource types: add them to NEEDS and their actions to {POLICY.name}: {unknown}"
    missing = sorted({action for kind in types for action in NEEDS[kind] if not allows(action)})
    assert not missing, f"{POLICY.name} does not allow {missing}"
    assert all(allows(action) for action in DEPLOY)


def test_the_policy_is_least_privilege(transformed: dict[str, Any]) -> None:
    patterns = allowed_actions()
    assert not [p for p in patterns if "*" in p], "no wildcard actions: list each one"
    services = {kind.split("::")[1].lower() for kind in {r["Type"] for r in transformed["Resources"].values()}}
    services |= {"cloudformation", "s3", "ssm"}  # sam deploy's own, and the latest-AMI parameter type
    assert {p.split(":")[0] for p in patterns} <= services
    policy = json.loads(POLICY.read_text(encoding="utf-8"))
    scoped = {s["Sid"] for s in policy["Statement"] if s["Resource"] != "*"}
    assert {"Roles", "PassRolesToTheFunctionsAndSchedules", "Functions", "StateTable", "AlertTopic"} <= scoped
    pass_role = next(s for s in policy["Statement"] if "iam:PassRole" in s["Action"])
    assert set(pass_role["Condition"]["StringEquals"]["iam:PassedToService"]) == {
        "lambda.amazonaws.com",
        "scheduler.amazonaws.com",
    }


@pytest.mark.parametrize("action", ["iam:CreateUser", "secretsmanager:GetSecretValue", "lambda:InvokeFunction"])
def test_what_a_deployer_never_needs_is_refused(action: str) -> None:
    assert not allows(action)


def test_the_deployer_may_attach_aws_powertools_layer_and_no_other(default: Deployed) -> None:
    # A function that names a layer of another account needs lambda:GetLayerVersion on that layer.
    policy = json.loads(POLICY.read_text(encoding="utf-8"))
    (layer,) = [s for s in policy["Statement"] if "lambda:GetLayerVersion" in s["Action"]]
    assert layer["Action"] == ["lambda:GetLayerVersion"]
    assert fnmatchcase(default.parameters["PowertoolsLayerArn"], layer["Resource"])
    assert not fnmatchcase(
        "arn:aws:lambda:ap-south-1:999999999999:layer:AWSLambdaPowertoolsPythonV3-x:1", layer["Resource"]
    )
