"""template.yaml as data, and the same resources provisioned in moto from the template's own properties.

The embedded stack and the functional tests build their table, topic, key and queue here, from
the very properties the cloud deployment uses, so the local stack and AWS cannot drift apart.

Example:
    >>> import boto3
    >>> resources = provision(boto3.Session(region_name="ap-south-1"))  # doctest: +SKIP
    >>> resources.environment("RefresherFunction")["STATE_TABLE_NAME"]  # doctest: +SKIP
    'local-StateTable'
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import boto3
import yaml

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"

# Short-form tags whose long form is "Fn::<Name>" with the node's value as the argument.
_FN_TAGS = (
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
    "Transform",
)
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_NO_VALUE = object()


class TemplateError(Exception):
    """The template cannot be read or resolved here: an unknown reference, intrinsic or resource.

    Example:
        >>> str(TemplateError("no value for Ref Missing"))
        'no value for Ref Missing'
    """


class _CloudFormationLoader(yaml.SafeLoader):
    """A safe YAML loader that turns CloudFormation's short-form tags into their long form."""


def _node_value(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(cast(yaml.MappingNode, node), deep=True)


def _short_form(long_name: str) -> Callable[[yaml.SafeLoader, yaml.Node], Any]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        value = _node_value(loader, node)
        if long_name == "Fn::GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {long_name: value}

    return construct


for _tag in _FN_TAGS:
    _CloudFormationLoader.add_constructor(f"!{_tag}", _short_form(f"Fn::{_tag}"))
_CloudFormationLoader.add_constructor("!GetAtt", _short_form("Fn::GetAtt"))
_CloudFormationLoader.add_constructor("!Ref", _short_form("Ref"))
_CloudFormationLoader.add_constructor("!Condition", _short_form("Condition"))


def load_template(path: Path | None = None) -> dict[str, Any]:
    """Read a CloudFormation/SAM template; short-form tags become long-form dicts.

    Example:
        >>> load_template()["Resources"]["StateTable"]["Properties"]["BillingMode"]
        'PAY_PER_REQUEST'
    """
    text = (path or TEMPLATE_PATH).read_text(encoding="utf-8")
    return cast(dict[str, Any], yaml.load(text, Loader=_CloudFormationLoader))  # noqa: S506 - a SafeLoader subclass


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every parameter's value: its default, unless overridden; an unknown or missing one is an error.

    Example:
        >>> parameter_values(load_template(), {"EgressMode": "nat-instance"})["EgressMode"]
        'nat-instance'
    """
    declared: Mapping[str, Any] = template.get("Parameters", {})
    unknown = sorted(set(overrides or {}) - set(declared))
    if unknown:
        raise TemplateError(f"unknown parameters: {', '.join(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if overrides and name in overrides:
            values[name] = str(overrides[name])
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} has no default and no value")
    return values


def pseudo_parameters(*, stack_name: str, region: str, account: str, partition: str = "aws") -> dict[str, str]:
    """The AWS:: pseudo parameters a template may reference, for one stack.

    Example:
        >>> pseudo_parameters(stack_name="local", region="ap-south-1", account="123456789012")["AWS::StackName"]
        'local'
    """
    return {
        "AWS::StackName": stack_name,
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": partition,
        "AWS::URLSuffix": "amazonaws.com",
    }


class Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select and Fn::Split from a table of names.

    Names are parameter and pseudo-parameter names, logical ids (what Ref gives) and
    "LogicalId.Attribute" (what Fn::GetAtt gives). A name not in the table is an error.

    Example:
        >>> Resolver({"Table": "t1", "AWS::Region": "ap-south-1"}).resolve({"Fn::Sub": "${Table}@${AWS::Region}"})
        't1@ap-south-1'
    """

    def __init__(self, names: Mapping[str, Any]) -> None:
        self._names = names

    def resolve(self, value: Any) -> Any:
        """Return ``value`` with every supported intrinsic replaced by its value."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._lookup(argument, f"Ref {argument}")
            if key == "Fn::GetAtt":
                logical_id, attribute = argument
                return self._lookup(f"{logical_id}.{attribute}", f"Fn::GetAtt {logical_id}.{attribute}")
            if key == "Fn::Sub":
                return self._substitute(argument)
            if key == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self.resolve(items))
            if key == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(separator)
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not supported by the local resolver")
        return {key: self.resolve(item) for key, item in value.items()}

    def _lookup(self, name: str, what: str) -> Any:
        try:
            return self._names[name]
        except KeyError:
            raise TemplateError(f"no local value for {what}") from None

    def _substitute(self, argument: str | list[Any]) -> str:
        if isinstance(argument, str):
            text, local_names = argument, {}
        else:
            text, variables = argument
            local_names = {name: self.resolve(item) for name, item in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} stands for the text ${Literal}
                return "${" + name[1:] + "}"
            if name in local_names:
                return str(local_names[name])
            return str(self._lookup(name, "${" + name + "} in Fn::Sub"))

        return _SUB_VARIABLE.sub(replace, text)


def apply_conditions(template: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    """A copy of the template as deployed with these parameters.

    Resources and outputs whose condition is false are gone, every Fn::If is replaced by the
    branch it takes and AWS::NoValue removes its key. Refs and other intrinsics stay as they are.

    Example:
        >>> off = apply_conditions(load_template(), parameter_values(load_template()))
        >>> "NatGateway" in off["Resources"]
        False
    """
    definitions: Mapping[str, Any] = template.get("Conditions", {})
    resolver = Resolver(parameters)
    truth: dict[str, bool] = {}

    def holds(name: str) -> bool:
        if name not in truth:
            if name not in definitions:
                raise TemplateError(f"unknown condition {name}")
            truth[name] = evaluate(definitions[name])
        return truth[name]

    def evaluate(expression: Any) -> bool:
        ((key, argument),) = expression.items()
        if key == "Condition":
            return holds(argument)
        if key == "Fn::Equals":
            left, right = (str(resolver.resolve(side)) for side in argument)
            return left == right
        if key == "Fn::Not":
            return not evaluate(argument[0])
        if key == "Fn::And":
            return all(evaluate(item) for item in argument)
        if key == "Fn::Or":
            return any(evaluate(item) for item in argument)
        raise TemplateError(f"{key} is not a condition function")

    def prune(value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in map(prune, value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if value == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        if len(value) == 1 and "Fn::If" in value:
            name, when_true, when_false = value["Fn::If"]
            return prune(when_true if holds(name) else when_false)
        pruned = {key: prune(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item is not _NO_VALUE}

    deployed = copy.deepcopy(dict(template))
    for section in ("Resources", "Outputs"):
        entries: Mapping[str, Any] = deployed.get(section, {})
        deployed[section] = {
            name: entry for name, entry in entries.items() if "Condition" not in entry or holds(entry["Condition"])
        }
    return cast(dict[str, Any], prune(deployed))


@dataclass(frozen=True)
class LocalResources:
    """What :func:`provision` created, and each function's environment resolved to it.

    Example:
        >>> resources.environment("TokenApiFunction")["AUTH_MODE"]  # doctest: +SKIP
        'iam'
    """

    table_name: str
    topic_arn: str
    kms_key_arn: str  # "" with SecretsKeyMode=aws-managed (the default): secrets use aws/secretsmanager
    dlq_url: str
    template: dict[str, Any] = field(repr=False)
    names: dict[str, Any] = field(repr=False)

    def environment(self, function_logical_id: str) -> dict[str, str]:
        """The function's environment variables (Globals merged with its own), resolved locally."""
        resource = self.template["Resources"].get(function_logical_id)
        if resource is None or resource["Type"] != "AWS::Serverless::Function":
            raise TemplateError(f"{function_logical_id} is not a function of the template")
        shared = self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        own = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        resolved = Resolver(self.names).resolve({**shared, **own})
        return {name: str(value) for name, value in resolved.items()}


def _attribute_text(value: Any) -> str:
    """SQS and SNS attributes are strings; CloudFormation writes booleans and numbers as YAML values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _attributes(properties: Mapping[str, Any], skip: set[str]) -> dict[str, str]:
    return {name: _attribute_text(value) for name, value in properties.items() if name not in skip}


def _provision_key(session: boto3.Session, deployed: Mapping[str, Any], resolver: Resolver) -> dict[str, str]:
    resources = deployed["Resources"]
    if "SecretsKey" not in resources:  # SecretsKeyMode=aws-managed: Secrets Manager's own key, nothing to create
        return {}
    kms = session.client("kms")
    alias = resolver.resolve(resources["SecretsKeyAlias"]["Properties"]["AliasName"])
    try:
        metadata = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except kms.exceptions.NotFoundException:
        properties = resources["SecretsKey"]["Properties"]
        metadata = kms.create_key(Description=resolver.resolve(properties["Description"]))["KeyMetadata"]
        if properties.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=metadata["KeyId"])
        kms.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
    return {
        "SecretsKey": metadata["KeyId"],
        "SecretsKey.Arn": metadata["Arn"],
        "SecretsKey.KeyId": metadata["KeyId"],
        "SecretsKeyAlias": alias,
    }


def _provision_queue(session: boto3.Session, name: str, properties: Mapping[str, Any]) -> dict[str, str]:
    sqs = session.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=_attributes(properties, {"QueueName", "Tags"}))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"RefreshDeadLetterQueue": url, "RefreshDeadLetterQueue.Arn": arn, "RefreshDeadLetterQueue.QueueName": name}


def _provision_topic(session: boto3.Session, name: str, properties: Mapping[str, Any]) -> dict[str, str]:
    attributes = _attributes(properties, {"TopicName", "Tags", "Subscription"})
    arn = session.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
    return {"AlertTopic": arn, "AlertTopic.TopicArn": arn, "AlertTopic.TopicName": name}


def _provision_table(session: boto3.Session, name: str, properties: Mapping[str, Any]) -> dict[str, str]:
    dynamodb = session.client("dynamodb")
    creation = {
        key: properties[key]
        for key in ("AttributeDefinitions", "KeySchema", "BillingMode", "SSESpecification", "DeletionProtectionEnabled")
        if key in properties
    }
    if "SSESpecification" in creation:  # CloudFormation's SSEEnabled is the API's Enabled
        sse = dict(creation["SSESpecification"])
        creation["SSESpecification"] = {"Enabled": sse.pop("SSEEnabled", False), **sse}
    try:
        description = dynamodb.create_table(TableName=name, **creation)["TableDescription"]
    except dynamodb.exceptions.ResourceInUseException:
        return {"StateTable": name, "StateTable.Arn": dynamodb.describe_table(TableName=name)["Table"]["TableArn"]}
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    if "TimeToLiveSpecification" in properties:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=properties["TimeToLiveSpecification"])
    if "PointInTimeRecoverySpecification" in properties:
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification=properties["PointInTimeRecoverySpecification"]
        )
    return {"StateTable": name, "StateTable.Arn": description["TableArn"]}


def provision(
    session: boto3.Session, *, stack_name: str = "local", parameters: dict[str, str] | None = None
) -> LocalResources:
    """Create the template's dead-letter queue, alert topic, state table (and key, full profile) at ``session``.

    The endpoint is whatever the session's configuration says (``AWS_ENDPOINT_URL`` for a moto
    server, or moto's in-process mock). Physical names are ``{stack_name}-{LogicalId}``; running
    it twice against the same endpoint reuses what exists.

    Example:
        >>> with mock_aws():  # doctest: +SKIP
        ...     provision(boto3.Session(region_name="ap-south-1")).table_name
        'local-StateTable'
    """
    template = load_template()
    values = parameter_values(template, parameters)
    deployed = apply_conditions(template, values)
    region = session.region_name
    if not region:
        raise TemplateError("the session has no region (set AWS_DEFAULT_REGION)")
    account = session.client("sts").get_caller_identity()["Account"]
    partition = session.get_partition_for_region(region)
    names: dict[str, Any] = {
        **values,
        **pseudo_parameters(stack_name=stack_name, region=region, account=account, partition=partition),
    }
    names.update(_provision_key(session, deployed, Resolver(names)))
    resources = deployed["Resources"]
    resolver = Resolver(names)

    def properties_of(logical_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], resolver.resolve(resources[logical_id].get("Properties", {})))

    names.update(
        _provision_queue(session, f"{stack_name}-RefreshDeadLetterQueue", properties_of("RefreshDeadLetterQueue"))
    )
    names.update(_provision_topic(session, f"{stack_name}-AlertTopic", properties_of("AlertTopic")))
    names.update(_provision_table(session, f"{stack_name}-StateTable", properties_of("StateTable")))
    # Functions are not deployed locally; their names are what another function's Ref resolves to.
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Serverless::Function":
            function_name = f"{stack_name}-{logical_id}"
            names[logical_id] = function_name
            names[f"{logical_id}.Arn"] = f"arn:{partition}:lambda:{region}:{account}:function:{function_name}"
    # Function URLs are served by local fronts whose ports are known only once they run: a placeholder
    # here, which the stack replaces (PERSON_URL) when its front is up.
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Url":
            names[f"{logical_id}.FunctionUrl"] = f"http://{logical_id.lower()}.invalid/"
    return LocalResources(
        table_name=names["StateTable"],
        topic_arn=names["AlertTopic"],
        kms_key_arn=names.get("SecretsKey.Arn", ""),
        dlq_url=names["RefreshDeadLetterQueue"],
        template=deployed,
        names=names,
    )
