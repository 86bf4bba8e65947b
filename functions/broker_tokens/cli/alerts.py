"""`broker-tokens alerts test` and `broker-tokens alerts telegram set`: check the alert channels, store the bot token.

The bot token is read from a hidden prompt (or stdin) and stored in ``{prefix}-telegram/bot-token`` as
``{"bot_token": "..."}``; it is never an argument (shell history) or a template parameter.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import Any

from broker_tokens.alerts import Alerts
from broker_tokens.cli.context import EXIT_NOT_FRESH, EXIT_OK, CliError, Context, command, command_group
from broker_tokens.cli.prompts import InputEndedError
from broker_tokens.notices import trial_notice
from broker_tokens.redaction import register as register_secret
from broker_tokens.relay import telegram_channel
from broker_tokens.telegram import BOT_TOKEN, SECRET_KEY, TelegramConfigError, TelegramError

TELEGRAM_SECONDS = 30.0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the `alerts` group."""
    actions = command_group(
        commands, common, "alerts", help="alert channels: send a test message, store the Telegram bot token"
    )
    test = command(
        actions,
        common,
        "test",
        alerts_test,
        help="send a test message through every configured channel",
        description="Publish a test message to the alert topic (e-mail subscribers get it, and the Telegram "
        "notifier when the stack has one), and post one straight to Telegram when a chat id is known "
        "(--chat-id or TELEGRAM_CHAT_ID) and the bot token secret exists. Says what it did for each "
        "channel; exit 1 when a channel failed or none is configured.",
        epilog="examples:\n  broker-tokens alerts test --stack broker-tokens\n"
        "  broker-tokens alerts test --chat-id 123456789",
    )
    test.add_argument("--chat-id", help="Telegram chat id to post to directly (default: $TELEGRAM_CHAT_ID)")
    telegram = command_group(actions, common, "telegram", help="the Telegram bot token")
    command(
        telegram,
        common,
        "set",
        set_bot_token,
        help="store the Telegram bot token (hidden prompt or stdin)",
        description="Store the token @BotFather gave in the secret <prefix>-telegram/bot-token (by default "
        "broker-tokens-telegram/bot-token), encrypted "
        "with the stack's key when known. Read from a hidden prompt, or from stdin when piped; never "
        "echoed.",
        epilog="examples:\n  broker-tokens alerts telegram set\n"
        "  pass show telegram/bot | broker-tokens alerts telegram set",
    )


def alerts_test(ctx: Context) -> int:
    """Send the test message through the SNS topic and straight to Telegram; report each channel.

    Example: ``broker-tokens alerts test --chat-id 123456789``
    """
    settings = ctx.settings
    chat_id = ctx.args.chat_id or settings.telegram_chat_id
    channels = [name for name, on in (("the alert topic", settings.alert_topic_arn), ("Telegram", chat_id)) if on]
    if not channels:
        raise CliError(
            "no alert channel configured: pass --stack (or set ALERT_TOPIC_ARN) for the topic, "
            "--chat-id (or TELEGRAM_CHAT_ID) for Telegram",
            code=EXIT_NOT_FRESH,
        )
    notice = trial_notice(ctx.clock.now(), settings.market_timezone, channels)
    failed = False
    topic = settings.alert_topic_arn
    if topic:
        if Alerts(topic, client=ctx.client("sns")).send(notice):
            ctx.out.print(f"SNS topic {topic}: published (e-mail subscribers and the stack's notifier get it)")
        else:
            ctx.out.error(f"SNS topic {topic}: not published (see --verbose)")
            failed = True
    else:
        ctx.out.print("SNS topic: none configured (pass --stack or set ALERT_TOPIC_ARN); skipped")
    if chat_id:
        failed |= not post_to_telegram(ctx, chat_id, notice)
    else:
        ctx.out.print("Telegram: no chat id (pass --chat-id or set TELEGRAM_CHAT_ID); no direct post")
    return EXIT_NOT_FRESH if failed else EXIT_OK


def post_to_telegram(ctx: Context, chat_id: str, notice: Any) -> bool:
    """Post straight to the chat; prints the outcome, True when Telegram took the message."""
    settings = replace(ctx.settings, telegram_chat_id=chat_id)
    try:
        channel = telegram_channel(settings, ctx.client("secretsmanager"), ctx.clock)
        if channel is None:
            return False
        message_id = channel.send(notice, deadline=ctx.clock.time() + TELEGRAM_SECONDS)
    except (TelegramConfigError, TelegramError) as exc:
        ctx.out.error(f"Telegram chat {chat_id}: not sent: {exc}")
        return False
    ctx.out.print(f"Telegram chat {chat_id}: sent (message {message_id})")
    return True


def set_bot_token(ctx: Context) -> int:
    """Read the bot token (hidden) and store it in its secret.

    Example: ``broker-tokens alerts telegram set``
    """
    try:
        token = ctx.prompter.ask_required("Telegram bot token (from @BotFather)", hidden=True).strip()
    except InputEndedError:
        raise CliError("no bot token given (type it at the prompt, or pipe it on stdin)") from None
    register_secret(token)
    if not BOT_TOKEN.fullmatch(token):
        raise CliError("that is not a Telegram bot token: @BotFather gives digits, a colon, then 35 characters")
    name = ctx.settings.telegram_secret
    client = ctx.client("secretsmanager")
    value = json.dumps({SECRET_KEY: token})
    try:
        client.put_secret_value(SecretId=name, SecretString=value)
        action = "updated"
    except client.exceptions.ResourceNotFoundException:
        extra = {"KmsKeyId": ctx.settings.kms_key_arn} if ctx.settings.kms_key_arn else {}
        client.create_secret(
            Name=name,
            SecretString=value,
            Description="broker-tokens: Telegram bot token for the alert notifier",
            **extra,
        )
        action = "stored"
    ctx.out.print(f"Bot token {action} in secret {name}.")
    ctx.out.note("Next: deploy with TelegramChatId set (see docs/deploy.md), then: broker-tokens alerts test")
    return EXIT_OK
