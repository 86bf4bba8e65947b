"""IAM mode (an AWS_IAM Function URL: SigV4-signed callers by ARN) and the apps' TokenApiClient."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from botocore.credentials import Credentials
from infra.local.front import function_url_event
from infra.local.lambda_context import LocalLambdaContext
from infra.local.moto_server import MotoServer
from infra.local.template import LocalResources

from broker_tokens.client import TokenApiClient, TokenApiError
from broker_tokens.clock import WarpClock
from tests.functional.test_token_api import Api, angel1_fixture, api_fixture, start_api  # noqa: F401 - fixtures
from tests.support.harness import Harness
from tests.support.logsink import remember_secret

ROLE = "arn:aws:iam::000000000000:role/trading-bot"
SESSION = "arn:aws:sts::000000000000:assumed-role/trading-bot/i-0123456789"
BOT = Credentials("AKIDLOCALBOT", "local-bot-secret-key-0001")
STRANGER = Credentials("AKIDLOCALSTRANGER", "local-stranger-secret-key-0002")


@pytest.fixture
def iam_api(harness: Harness, moto: MotoServer, cloud: LocalResources, clock: WarpClock) -> Iterator[Api]:
    started = start_api(harness, moto, cloud, clock, auth_mode="iam")
    remember_secret(BOT.secret_key, STRANGER.secret_key)
    started.front.add_identity(BOT.access_key, BOT.secret_key, SESSION)
    started.front.add_identity(STRANGER.access_key, STRANGER.secret_key, "arn:aws:iam::000000000000:user/stranger")
    started.callers.add("trading-bot", ["angel-*"], ["read", "refresh"], principal_arn=ROLE)
    yield started
    started.front.stop()


def signing_client(front: Api, credentials: Credentials) -> TokenApiClient:
    return TokenApiClient(front.url, credentials=credentials, region="ap-south-1")


def test_a_signed_request_of_a_registered_role_gets_the_token(
    iam_api: Api, angel1: dict[str, Any], harness: Harness
) -> None:
    bot = signing_client(iam_api, BOT)
    assert bot.token("angel-1") == harness.token("angel-1")
    assert [line["account"] for line in bot.accounts()] == ["angel-1"]
    refreshed = bot.refresh("angel-1")
    assert refreshed == harness.token("angel-1") and refreshed["source"] == "api"


def test_unsigned_badly_signed_and_unregistered_callers_are_refused(iam_api: Api, angel1: dict[str, Any]) -> None:
    path = f"{iam_api.url}/accounts/angel-1/token"
    unsigned = requests.get(path, timeout=5)
    assert unsigned.status_code == 403 and unsigned.json() == {"Message": "Forbidden"}  # the URL's own refusal
    key = iam_api.key()
    assert requests.get(path, headers={"Authorization": f"Bearer {key}"}, timeout=5).status_code == 403
    forged = signing_client(iam_api, Credentials(BOT.access_key, "not-the-secret-key"))
    with pytest.raises(TokenApiError) as refused:
        forged.token("angel-1")
    assert refused.value.status == 403
    with pytest.raises(TokenApiError) as stranger:
        signing_client(iam_api, STRANGER).token("angel-1")
    assert stranger.value.status == 403 and stranger.value.message == "this IAM principal is not a registered caller"


def test_a_role_with_a_path_is_its_sessions_caller(iam_api: Api, angel1: dict[str, Any], harness: Harness) -> None:
    # Registered by the role's ARN as IAM shows it (with its path); the signed request names the session.
    iam_api.callers.revoke("trading-bot")
    iam_api.callers.add(
        "trading-bot", ["angel-*"], ["read"], principal_arn="arn:aws:iam::000000000000:role/bots/trading-bot"
    )
    assert signing_client(iam_api, BOT).token("angel-1") == harness.token("angel-1")


def test_a_registered_role_is_held_to_its_scope(iam_api: Api, angel1: dict[str, Any]) -> None:
    with pytest.raises(TokenApiError) as refused:
        signing_client(iam_api, BOT).token("kite-1")
    assert refused.value.status == 403 and refused.value.error == "forbidden"


def test_the_token_api_serves_no_callback_in_iam_mode(iam_api: Api, angel1: dict[str, Any]) -> None:
    # Behind an AWS_IAM URL a browser cannot reach the API unsigned; the broker's redirect goes to the
    # person pages' own public URL instead, so the API function has no such route at all.
    assert iam_api.front.api is not None
    event = function_url_event("GET", "/callback/angel-1?request_token=abcdefgh1234&status=success", [], b"")
    answer = iam_api.front.api.handle(event, LocalLambdaContext("token-api"))  # type: ignore[arg-type]
    assert answer["statusCode"] == 404


def test_the_api_key_client(api: Api, angel1: dict[str, Any], harness: Harness) -> None:
    bot = TokenApiClient(api.url, api_key=api.key(accounts=("angel-*",)))
    assert bot.token("angel-1") == harness.token("angel-1")
    assert [line["account"] for line in bot.accounts()] == ["angel-1"]
    assert bot.refresh("angel-1")["access_token"] == (harness.token("angel-1") or {})["access_token"]
    with pytest.raises(TokenApiError) as refused:
        bot.token("kite-1")
    assert refused.value.status == 403
    with pytest.raises(ValueError, match="account ids"):
        bot.token("../accounts")
