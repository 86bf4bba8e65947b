"""The Telegram notifier: only with a chat id, subscribed to the alert topic, failures to a queue, and a
role that reads the bot token and nothing else."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.infra.cloudformation import ACCOUNT, REGION, Deployed
from tests.infra.test_template_iam import CREDENTIALS, SECRETS, TOKEN, grants

BOT_TOKEN = SECRETS + "broker-tokens-telegram/bot-token-AbC123"
NOTIFIER = (
    "NotifierFunction",
    "NotifierRole",
    "NotifierDeadLetterQueue",
    "NotifierLogGroup",
    "NotifierDeadLetterAlarm",
)


@pytest.fixture(scope="module")
def telegram(deploy: Callable[..., Deployed]) -> Deployed:
    return deploy(TelegramChatId="-1001234567890")


def test_without_a_chat_id_there_is_no_notifier(default: Deployed) -> None:
    assert not [name for name in default.resources if name.startswith("Notifier")]
    assert not default.of_type("AWS::Lambda::EventInvokeConfig").keys() - {"RefresherFunctionEventInvokeConfig"}


def test_chat_id_is_a_parameter_and_the_bot_token_is_not(template: dict) -> None:
    parameters = template["Parameters"]
    assert parameters["TelegramChatId"]["Default"] == ""
    assert not [name for name in parameters if "bot" in name.lower() or "telegramtoken" in name.lower()]


def test_the_notifier_is_subscribed_to_the_alert_topic(telegram: Deployed) -> None:
    for name in NOTIFIER:
        assert name in telegram.resources, name
    function = telegram.properties("NotifierFunction")
    assert function["Handler"] == "notifier.app.lambda_handler"
    assert function["Environment"]["Variables"]["TELEGRAM_CHAT_ID"] == "-1001234567890"
    assert function["Timeout"] >= 30
    (subscription,) = telegram.of_type("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "lambda"
    assert telegram.resolve(subscription["Properties"]["TopicArn"]) == "<AlertTopic>"
    assert telegram.resolve(subscription["Properties"]["Endpoint"]) == "<NotifierFunction.Arn>"
    permissions = [
        telegram.resolve(p["Properties"])
        for p in telegram.of_type("AWS::Lambda::Permission").values()
        if telegram.resolve(p["Properties"]).get("Principal") == "sns.amazonaws.com"
    ]
    assert [(p["FunctionName"], p["SourceArn"]) for p in permissions] == [("<NotifierFunction>", "<AlertTopic>")]


def test_a_refused_post_is_retried_then_kept_and_alarmed(telegram: Deployed) -> None:
    (config,) = [
        telegram.resolve(c["Properties"])
        for c in telegram.of_type("AWS::Lambda::EventInvokeConfig").values()
        if telegram.resolve(c["Properties"])["FunctionName"] == "<NotifierFunction>"
    ]
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == "<NotifierDeadLetterQueue.Arn>"
    alarm = telegram.properties("NotifierDeadLetterAlarm")
    assert alarm["AlarmActions"] == ["<AlertTopic>"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": "<NotifierDeadLetterQueue.QueueName>"}]


def test_notifier_role_reads_only_its_bot_token(telegram: Deployed) -> None:
    statements = telegram.statements("NotifierRole")
    assert grants(statements, "secretsmanager:GetSecretValue", BOT_TOKEN)
    for other in (CREDENTIALS, TOKEN, SECRETS + "broker-tokens-telegram/other-AbC123"):
        assert not grants(statements, "secretsmanager:GetSecretValue", other), other
    assert not grants(statements, "secretsmanager:PutSecretValue", BOT_TOKEN)
    assert not [s for s in statements if "kms:Decrypt" in str(s.get("Action"))]  # lean: aws/secretsmanager
    assert grants(statements, "sqs:SendMessage", "<NotifierDeadLetterQueue.Arn>")
    assert not grants(statements, "sns:Publish", "<AlertTopic>")
    assert not grants(statements, "dynamodb:GetItem", "<StateTable.Arn>")
    assert ACCOUNT in BOT_TOKEN


def test_in_the_full_profile_the_notifier_decrypts_through_secrets_manager_only(
    deploy: Callable[..., Deployed],
) -> None:
    full = deploy(TelegramChatId="-1001234567890", SecretsKeyMode="customer-managed")
    (decrypt,) = grants(full.statements("NotifierRole"), "kms:Decrypt", "<SecretsKey.Arn>")
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}}


def test_no_other_role_can_read_the_bot_token(telegram: Deployed) -> None:
    for role in ("RefresherRole", "TokenApiRole"):
        assert not grants(telegram.statements(role), "secretsmanager:GetSecretValue", BOT_TOKEN), role


def test_refresher_learns_the_history_lifetime_and_the_run_times(deploy: Callable[..., Deployed]) -> None:
    env = deploy(HistoryDays="30").properties("RefresherFunction")["Environment"]["Variables"]
    assert env["HISTORY_DAYS"] == "30"
    assert env["REFRESH_SCHEDULE"] == "cron(30 7 ? * MON-FRI *);cron(0 8 ? * MON-FRI *);cron(30 8 ? * MON-FRI *)"
