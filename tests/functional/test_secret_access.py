"""A first token under the template's real IAM grants, and AccessDenied on a missing secret read as "absent".

IAM evaluates a request for a secret that does not exist on its bare name (no 6-character suffix).
tests/support/iam.py applies a role's statements that way in front of moto.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from infra.local.simulators.angelone import AngelOneSimulator
from infra.local.template import apply_conditions, load_template, parameter_values

from broker_tokens.client import TokenCache
from broker_tokens.errors import AccountNotFoundError
from broker_tokens.secrets import SecretStore
from tests.functional.test_refresh_angelone import angel_account
from tests.infra.cloudformation import Deployed, sam_transform
from tests.support.harness import Harness
from tests.support.iam import PolicyBoundSecrets

# A hand-written policy of the old shape: suffix wildcards only, so every bare name is denied.
SUFFIXED_ONLY = [
    {
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
        "Resource": [
            "arn:aws:secretsmanager:*:*:secret:broker-tokens/*/token-*",
            "arn:aws:secretsmanager:*:*:secret:broker-tokens/*/credentials-*",
        ],
    }
]


@pytest.fixture(scope="module")
def deployed() -> Deployed:
    template = load_template()
    values = parameter_values(template)
    return Deployed(apply_conditions(sam_transform(template), values), values)


def test_a_new_account_gets_its_first_token_under_the_refresher_role(
    deployed: Deployed, angel: AngelOneSimulator, harness: Harness
) -> None:
    angel_account(angel, harness)
    refresher = harness.refresher()
    refresher.secrets = SecretStore(
        PolicyBoundSecrets(harness.secrets_client, deployed.statements("RefresherRole")), prefix=harness.prefix
    )

    report = refresher.run()

    assert report.ok, report.to_dict()
    assert (harness.token("angel-1") or {})["account"] == "angel-1"


def test_the_token_api_role_reads_a_missing_token_as_no_token_yet(deployed: Deployed, harness: Harness) -> None:
    client: Any = PolicyBoundSecrets(harness.secrets_client, deployed.statements("TokenApiRole"))

    assert SecretStore(client, prefix=harness.prefix).read_token("angel-1") is None
    assert TokenCache(client, prefix=harness.prefix).get("angel-1") is None


def test_access_denied_on_a_missing_secret_is_absent_under_an_older_policy(harness: Harness) -> None:
    client: Any = PolicyBoundSecrets(harness.secrets_client, SUFFIXED_ONLY)
    store = SecretStore(client, prefix=harness.prefix)

    assert store.read_token("angel-1") is None
    assert TokenCache(client, prefix=harness.prefix).get("angel-1") is None
    with pytest.raises(AccountNotFoundError):
        store.read_credentials("angel-1")
    with pytest.raises(AccountNotFoundError):
        store.credentials_metadata("angel-1")


def test_access_denied_on_an_existing_secret_is_never_hidden(harness: Harness) -> None:
    harness.secrets_client.create_secret(Name=f"{harness.prefix}/angel-1/token", SecretString="{}")
    denied: Any = PolicyBoundSecrets(harness.secrets_client, [])
    blind: Any = PolicyBoundSecrets(harness.secrets_client, SUFFIXED_ONLY[:0], list_secrets=False)

    for client in (denied, blind):
        with pytest.raises(ClientError, match="AccessDenied"):
            SecretStore(client, prefix=harness.prefix).read_token("angel-1")
    # Without ListSecrets nobody can tell a missing secret from a forbidden one: the refusal stands.
    with pytest.raises(ClientError, match="AccessDenied"):
        SecretStore(blind, prefix=harness.prefix).read_token("angel-2")
