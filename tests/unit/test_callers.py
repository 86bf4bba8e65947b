"""Callers and scopes: keys stored as hashes only, rotation, revocation, IAM principals, patterns."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from broker_tokens.callers import Caller, CallerStore, principal_candidates, split_key
from broker_tokens.redaction import scrub
from tests.support.logsink import remember_secret

TABLE = "callers-test"
ROLE = "arn:aws:iam::123456789012:role/bots"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="ap-south-1")
        client.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in ("pk", "sk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


@pytest.fixture
def store(dynamodb: Any) -> CallerStore:
    return CallerStore(TABLE, client=dynamodb)


def add_key(store: CallerStore, name: str, accounts: list[str], actions: list[str]) -> str:
    key = store.add(name, accounts, actions)
    assert key is not None
    remember_secret(key)
    return key


def test_a_new_key_authenticates_its_caller_with_its_scopes(store: CallerStore) -> None:
    key = add_key(store, "bot-1", ["angel-*", "kite-main"], ["read", "refresh"])
    caller = store.authenticate_key(key)
    assert caller == Caller("bot-1", ("angel-*", "kite-main"), frozenset({"read", "refresh"}))
    assert key.startswith("btk_") and split_key(key) is not None


def test_the_table_holds_a_hash_of_the_key_never_the_key(store: CallerStore, dynamodb: Any) -> None:
    key = add_key(store, "bot-1", ["*"], ["read"])
    _, secret = split_key(key) or ("", "")
    stored = json.dumps(dynamodb.scan(TableName=TABLE)["Items"])
    assert secret not in stored and key not in stored
    assert scrub(f"key={key}") == "key=***"  # registered with the redactor the moment it was made


@pytest.mark.parametrize(
    "mangle",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # right id, wrong secret
        lambda key: "btk_0123456789ab_" + key.split("_", 2)[2],  # unknown id, right secret
        lambda key: key.replace("btk_", "xyz_"),
        lambda key: key + "x" * 200,
        lambda key: "",
        lambda key: "btk_",
    ],
)
def test_wrong_unknown_or_malformed_keys_are_refused(store: CallerStore, mangle: Any) -> None:
    key = add_key(store, "bot-1", ["*"], ["read"])
    assert store.authenticate_key(mangle(key)) is None


def test_adding_the_same_name_again_rotates_the_key(store: CallerStore, dynamodb: Any) -> None:
    old = add_key(store, "bot-1", ["*"], ["read"])
    new = add_key(store, "bot-1", ["angel-*"], ["read", "refresh"])
    assert store.authenticate_key(old) is None
    caller = store.authenticate_key(new)
    assert caller is not None and caller.accounts == ("angel-*",)
    keys = {item["pk"]["S"] for item in dynamodb.scan(TableName=TABLE)["Items"]}
    assert len([pk for pk in keys if pk.startswith("apikey#")]) == 1  # the old pointer is gone


def test_revoke_stops_the_key_at_once_and_is_false_for_a_stranger(store: CallerStore, dynamodb: Any) -> None:
    key = add_key(store, "bot-1", ["*"], ["read"])
    add_key(store, "bot-2", ["*"], ["read"])
    assert store.revoke("bot-1") is True
    assert store.authenticate_key(key) is None
    assert store.revoke("bot-1") is False and store.revoke("nobody") is False
    assert [caller.name for caller in store.list()] == ["bot-2"]
    assert not [item for item in dynamodb.scan(TableName=TABLE)["Items"] if "bot-1" in json.dumps(item)]


def test_iam_callers_have_no_key_and_match_their_role_sessions(store: CallerStore) -> None:
    assert store.add("desk", ["*"], ["admin"], principal_arn=ROLE) is None
    session = "arn:aws:sts::123456789012:assumed-role/bots/i-0abc123"
    caller = store.for_principal(session)
    assert caller is not None and caller.name == "desk" and caller.principal_arn == ROLE
    assert store.for_principal(ROLE) == caller
    assert store.for_principal("arn:aws:sts::123456789012:assumed-role/other/i-0abc123") is None
    assert store.for_principal("arn:aws:iam::999999999999:role/bots") is None


def test_a_role_registered_with_its_path_matches_its_sessions(store: CallerStore) -> None:
    # STS session ARNs never carry the role's path; the role's name is unique in its account.
    with_path = "arn:aws:iam::123456789012:role/trading/desk-a/bots"
    store.add("bots", ["angel-*"], ["read"], principal_arn=with_path)

    caller = store.for_principal("arn:aws:sts::123456789012:assumed-role/bots/i-0abc123")
    assert caller is not None and caller.name == "bots" and caller.principal_arn == with_path
    assert store.for_principal(with_path) == caller
    assert store.for_principal("arn:aws:sts::999999999999:assumed-role/bots/i-0abc123") is None
    assert store.for_principal("arn:aws:sts::123456789012:assumed-role/bots2/i-0abc123") is None
    # The same role with another path is the same role: one caller only.
    with pytest.raises(ValueError, match="already the caller"):
        store.add("other", ["*"], ["admin"], principal_arn="arn:aws:iam::123456789012:role/bots")
    assert store.revoke("bots")
    assert store.for_principal("arn:aws:sts::123456789012:assumed-role/bots/i-0abc123") is None


def test_a_principal_belongs_to_one_caller(store: CallerStore) -> None:
    store.add("desk", ["*"], ["read"], principal_arn=ROLE)
    with pytest.raises(ValueError, match="already the caller 'desk'"):
        store.add("other", ["*"], ["read"], principal_arn=ROLE)
    store.add("desk", ["angel-*"], ["read"], principal_arn=ROLE)  # re-adding the same name is fine
    caller = store.for_principal(ROLE)
    assert caller is not None and caller.accounts == ("angel-*",)


@pytest.mark.parametrize(
    ("caller", "reason"),
    [
        (("bad name!", ["*"], ["read"], None), "caller name"),
        (("bot", [], ["read"], None), "at least one account"),
        (("bot", "angel-*", ["read"], None), "at least one account"),
        (("bot", ["Angel_Main"], ["read"], None), "not an account id or pattern"),
        (("bot", ["*"], ["write"], None), "actions must be"),
        (("bot", ["*"], [], None), "actions must be"),
        (("bot", ["*"], ["read"], "role/bots"), "principal_arn"),
    ],
)
def test_invalid_callers_are_refused_with_a_reason(store: CallerStore, caller: tuple[Any, ...], reason: str) -> None:
    name, accounts, actions, arn = caller
    with pytest.raises(ValueError, match=reason):
        store.add(name, accounts, actions, principal_arn=arn)
    assert store.list() == []


def test_list_is_sorted_and_shows_no_key(store: CallerStore) -> None:
    add_key(store, "zeta", ["*"], ["read"])
    store.add("alpha", ["angel-*"], ["refresh"], principal_arn=ROLE)
    callers = store.list()
    assert [c.name for c in callers] == ["alpha", "zeta"]
    assert callers[0].to_dict() == {
        "name": "alpha",
        "accounts": ["angel-*"],
        "actions": ["refresh"],
        "principal_arn": ROLE,
    }


@pytest.mark.parametrize(
    ("accounts", "actions", "account", "action", "allowed"),
    [
        (("angel-*",), {"read"}, "angel-main", "read", True),
        (("angel-*",), {"read"}, "angel-main", "refresh", False),
        (("angel-*",), {"read"}, "kite-main", "read", False),
        (("angel-main",), {"refresh"}, "angel-main", "refresh", True),
        (("angel-main",), {"refresh"}, "angel-main2", "refresh", False),
        (("*",), {"admin"}, "anything", "refresh", True),
        (("*",), {"admin"}, "anything", "delete", False),
        (("desk-?",), {"read"}, "desk-1", "read", True),
        (("desk-?",), {"read"}, "desk-10", "read", False),
    ],
)
def test_scopes(accounts: tuple[str, ...], actions: set[str], account: str, action: str, allowed: bool) -> None:
    assert Caller("c", accounts, frozenset(actions)).allows(account, action) is allowed


def test_principal_candidates_of_a_user_are_just_the_user() -> None:
    assert principal_candidates("arn:aws:iam::123456789012:user/ci") == ["arn:aws:iam::123456789012:user/ci"]
