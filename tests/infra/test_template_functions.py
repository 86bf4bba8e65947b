"""The two functions, their environment, schedules, async retries and the token API's URL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.infra.cloudformation import Deployed

SHARED_ENVIRONMENT = {
    "SECRET_PREFIX": "broker-tokens",
    "STATE_TABLE_NAME": "<StateTable>",
    "ALERT_TOPIC_ARN": "<AlertTopic>",
    # The lean default: no key of the stack, so secrets are created with aws/secretsmanager.
    "SECRETS_KMS_KEY_ARN": "",
    "LEASE_TTL_SECONDS": "660",
    "POWERTOOLS_SERVICE_NAME": "broker-tokens",
    "POWERTOOLS_METRICS_NAMESPACE": "BrokerTokens",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "MARKET_TIMEZONE": "Asia/Kolkata",
}


def test_functions_run_the_handlers_on_a_current_arm64_python(default: Deployed) -> None:
    refresher = default.properties("RefresherFunction")
    api = default.properties("TokenApiFunction")

    assert (refresher["Handler"], api["Handler"]) == ("refresher.app.lambda_handler", "token_api.app.lambda_handler")
    for function in (refresher, api):
        assert function["Runtime"] == "python3.13"
        assert function["Architectures"] == ["arm64"]
        assert function["MemorySize"] == 256
    assert (refresher["Timeout"], api["Timeout"]) == (600, 120)


def test_runtime_parameter_allows_only_current_pythons(template: dict, deploy: Callable[..., Deployed]) -> None:
    assert template["Parameters"]["Runtime"]["AllowedValues"] == ["python3.12", "python3.13"]
    assert deploy(Runtime="python3.12").properties("RefresherFunction")["Runtime"] == "python3.12"


def test_both_functions_learn_every_resource_from_the_template(default: Deployed) -> None:
    refresher_env = default.properties("RefresherFunction")["Environment"]["Variables"]
    api_env = default.properties("TokenApiFunction")["Environment"]["Variables"]

    assert refresher_env == {
        **SHARED_ENVIRONMENT,
        "PERSON_URL": "<PersonPagesFunctionUrl.FunctionUrl>",
        "ZERODHA_WEB_LOGIN": "on",
        "HISTORY_DAYS": "90",
        "REFRESH_SCHEDULE": "cron(30 7 ? * MON-FRI *);cron(0 8 ? * MON-FRI *);cron(30 8 ? * MON-FRI *)",
    }
    assert api_env == {**SHARED_ENVIRONMENT, "AUTH_MODE": "iam", "REFRESHER_FUNCTION_NAME": "<RefresherFunction>"}


def test_refresher_keeps_its_concurrency_and_the_token_api_is_capped(deploy: Callable[..., Deployed]) -> None:
    # A flood on the public URL is throttled at the API's cap and cannot take the refresher's runs.
    default = deploy()
    refresher = default.properties("RefresherFunction")["ReservedConcurrentExecutions"]
    api = default.properties("TokenApiFunction")["ReservedConcurrentExecutions"]
    # Sane defaults: both small beside the 1000 of a default account, which keeps 100 unreserved.
    assert 1 <= int(refresher) <= 20 and 1 <= int(api) <= 50
    tuned = deploy(RefresherReservedConcurrency="3", TokenApiMaxConcurrency="7")
    assert tuned.properties("RefresherFunction")["ReservedConcurrentExecutions"] == "3"
    assert tuned.properties("TokenApiFunction")["ReservedConcurrentExecutions"] == "7"
    # An account whose limit is too low to reserve anything (new accounts may have 10) deploys with 0.
    none = deploy(RefresherReservedConcurrency="0", TokenApiMaxConcurrency="0", PersonPagesMaxConcurrency="0")
    for function in ("RefresherFunction", "TokenApiFunction", "PersonPagesFunction"):
        assert "ReservedConcurrentExecutions" not in none.properties(function), function


def test_the_public_person_pages_are_capped_too(deploy: Callable[..., Deployed]) -> None:
    # Their URL has no auth at all: a flood must be throttled there, not take the notifier's runs.
    assert 1 <= int(deploy().properties("PersonPagesFunction")["ReservedConcurrentExecutions"]) <= 10
    assert (
        deploy(PersonPagesMaxConcurrency="2").properties("PersonPagesFunction")["ReservedConcurrentExecutions"] == "2"
    )


def test_lease_outlives_the_refresher_timeout(default: Deployed) -> None:
    refresher = default.properties("RefresherFunction")

    assert int(refresher["Environment"]["Variables"]["LEASE_TTL_SECONDS"]) > refresher["Timeout"]


def test_parameters_flow_into_the_environment(deploy: Callable[..., Deployed]) -> None:
    deployed = deploy(SecretPrefix="desk", LogLevel="DEBUG", ScheduleTimezone="Asia/Tokyo", TokenApiAuthMode="api_key")
    env = deployed.properties("TokenApiFunction")["Environment"]["Variables"]

    assert (env["SECRET_PREFIX"], env["POWERTOOLS_LOG_LEVEL"]) == ("desk", "DEBUG")
    assert (env["MARKET_TIMEZONE"], env["AUTH_MODE"]) == ("Asia/Tokyo", "api_key")


def test_functions_log_to_their_own_groups_with_the_retention_parameter(deploy: Callable[..., Deployed]) -> None:
    deployed = deploy(LogRetentionDays="90")

    for function, group in (("RefresherFunction", "RefresherLogGroup"), ("TokenApiFunction", "TokenApiLogGroup")):
        assert deployed.properties(function)["LoggingConfig"] == {"LogGroup": f"<{group}>"}
        assert deployed.properties(group)["RetentionInDays"] == "90"


def schedules(deployed: Deployed) -> dict[str, dict[str, Any]]:
    """The refresher's schedules by logical id, resolved."""
    return {name: deployed.resolve(r["Properties"]) for name, r in deployed.of_type("AWS::Scheduler::Schedule").items()}


def test_three_weekday_schedules_and_the_logout_in_the_market_time_zone(default: Deployed) -> None:
    found = list(schedules(default).values())
    refreshes = [s for s in found if json.loads(s["Target"]["Input"]) == {}]
    logouts = [s for s in found if json.loads(s["Target"]["Input"]) == {"action": "logout"}]

    assert sorted(s["ScheduleExpression"] for s in refreshes) == [
        "cron(0 8 ? * MON-FRI *)",
        "cron(30 7 ? * MON-FRI *)",
        "cron(30 8 ? * MON-FRI *)",
    ]
    # 23:59 IST, after MCX closes, Monday to Friday; on by default.
    assert [(s["ScheduleExpression"], s["State"]) for s in logouts] == [("cron(59 23 ? * MON-FRI *)", "ENABLED")]
    for schedule in refreshes + logouts:
        assert schedule["ScheduleExpressionTimezone"] == "Asia/Kolkata"
        assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert "Name" not in schedule  # generated, so two stacks can share an account
        target = schedule["Target"]
        assert target["Arn"] == "<RefresherFunction.Arn>"
        assert target["RoleArn"] == "<SchedulerRole.Arn>"
        assert target["DeadLetterConfig"] == {"Arn": "<RefreshDeadLetterQueue.Arn>"}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 3600


def test_the_logout_schedule_moves_and_switches_off_by_parameter(deploy: Callable[..., Deployed]) -> None:
    moved = deploy(LogoutRun="cron(45 23 ? * MON-SAT *)", EndOfDayLogout="off")
    logouts = [s for s in schedules(moved).values() if "logout" in s["Target"]["Input"]]
    refreshes = [s for s in schedules(moved).values() if "logout" not in s["Target"]["Input"]]

    assert [(s["ScheduleExpression"], s["State"]) for s in logouts] == [("cron(45 23 ? * MON-SAT *)", "DISABLED")]
    assert len(refreshes) == 3 and {s.get("State", "ENABLED") for s in refreshes} == {"ENABLED"}


def test_schedule_times_and_zone_are_parameters(deploy: Callable[..., Deployed]) -> None:
    deployed = deploy(FirstRun="cron(0 6 ? * MON-FRI *)", ScheduleTimezone="America/New_York")
    schedules = [deployed.resolve(r["Properties"]) for r in deployed.of_type("AWS::Scheduler::Schedule").values()]

    assert "cron(0 6 ? * MON-FRI *)" in [s["ScheduleExpression"] for s in schedules]
    assert {s["ScheduleExpressionTimezone"] for s in schedules} == {"America/New_York"}


def test_scheduler_role_may_only_invoke_the_refresher_and_dead_letter(default: Deployed) -> None:
    grants = {(s["Action"], s["Resource"]) for s in default.statements("SchedulerRole")}

    assert grants == {
        ("lambda:InvokeFunction", "<RefresherFunction.Arn>"),
        ("sqs:SendMessage", "<RefreshDeadLetterQueue.Arn>"),
    }


def test_failed_async_runs_retry_then_alert(default: Deployed) -> None:
    (config,) = [default.resolve(r["Properties"]) for r in default.of_type("AWS::Lambda::EventInvokeConfig").values()]

    assert config["FunctionName"] == "<RefresherFunction>"
    assert config["MaximumRetryAttempts"] == 2
    assert config["MaximumEventAgeInSeconds"] == 1800
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": "<AlertTopic>"}}


@pytest.mark.parametrize(("mode", "auth_type", "public"), [("iam", "AWS_IAM", False), ("api_key", "NONE", True)])
def test_token_api_url_auth_follows_the_mode(
    deploy: Callable[..., Deployed], mode: str, auth_type: str, public: bool
) -> None:
    deployed = deploy(TokenApiAuthMode=mode)
    permissions = [
        properties
        for r in deployed.of_type("AWS::Lambda::Permission").values()
        if (properties := deployed.resolve(r["Properties"]))["FunctionName"] == "<TokenApiFunction>"
    ]

    assert deployed.properties("TokenApiFunctionUrl")["AuthType"] == auth_type
    assert deployed.properties("TokenApiFunctionUrl")["TargetFunctionArn"] == "<TokenApiFunction.Arn>"
    if public:
        # A public URL needs both statements; the second one only holds for calls through the URL.
        assert sorted((p["Action"], p["Principal"]) for p in permissions) == [
            ("lambda:InvokeFunction", "*"),
            ("lambda:InvokeFunctionUrl", "*"),
        ]
        invoke = next(p for p in permissions if p["Action"] == "lambda:InvokeFunction")
        assert invoke["InvokedViaFunctionUrl"] is True
    else:
        assert permissions == []


def test_with_the_stack_key_every_function_creates_secrets_with_it(full: Deployed) -> None:
    for function in ("RefresherFunction", "TokenApiFunction", "PersonPagesFunction"):
        env = full.properties(function)["Environment"]["Variables"]
        assert env["SECRETS_KMS_KEY_ARN"] == "<SecretsKey.Arn>", function


def test_powertools_comes_from_the_layer_unless_its_arn_is_empty(
    deploy: Callable[..., Deployed], default: Deployed
) -> None:
    layer = default.parameters["PowertoolsLayerArn"]
    assert layer.startswith("arn:aws:lambda:ap-south-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:")
    bundled = deploy(PowertoolsLayerArn="")
    for function in ("RefresherFunction", "TokenApiFunction", "PersonPagesFunction"):
        assert default.properties(function)["Layers"] == [layer], function
        assert bundled.properties(function).get("Layers", []) == [], function
