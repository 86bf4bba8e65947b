"""template.yaml transformed offline by samtranslator, and read as CloudFormation would deploy it."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from infra.local.template import Resolver, pseudo_parameters
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

REGION = "ap-south-1"
ACCOUNT = "123456789012"
STACK = "broker-tokens"


class _Symbols(dict[str, Any]):
    """Parameter values, pseudo parameters, and "<Id>" / "<Id.Attr>" for the template's resources."""

    def __init__(self, values: Mapping[str, Any], resources: Mapping[str, Any]) -> None:
        super().__init__(values)
        self._resources = resources

    def __missing__(self, name: str) -> str:
        if name.split(".", 1)[0] in self._resources:
            return f"<{name}>"
        raise KeyError(name)


@dataclass(frozen=True)
class Deployed:
    """The CloudFormation template after the SAM transform and the conditions of one parameter set."""

    template: dict[str, Any]
    parameters: dict[str, str]
    stack_name: str = STACK

    @property
    def resources(self) -> dict[str, Any]:
        return self.template["Resources"]

    def of_type(self, resource_type: str) -> dict[str, Any]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    def resolve(self, value: Any) -> Any:
        """Intrinsics resolved with parameters and pseudo parameters; resources stay symbolic: "<Id.Attr>"."""
        values = {**self.parameters, **pseudo_parameters(stack_name=self.stack_name, region=REGION, account=ACCOUNT)}
        return Resolver(_Symbols(values, self.resources)).resolve(value)

    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.resolve(self.resources[logical_id].get("Properties", {}))

    def statements(self, role_id: str) -> list[dict[str, Any]]:
        """Every statement of a role's inline policies, resolved."""
        policies = self.properties(role_id)["Policies"]
        return [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]


def sam_transform(template: Mapping[str, Any]) -> dict[str, Any]:
    """The SAM transform, offline: no managed-policy lookup, region from a local session."""
    sam = copy.deepcopy(dict(template))
    # The transform wants an S3 CodeUri, as after `sam package`; the local path is for `make build`.
    sam["Globals"]["Function"]["CodeUri"] = "s3://artifacts/functions.zip"
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=REGION))
    return translator.translate(sam, parameter_values={"AWS::AccountId": ACCOUNT}, get_managed_policy_map=dict)
