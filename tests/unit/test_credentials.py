"""The credentials secret contract: every bad secret gets an error naming the account and the key."""

from __future__ import annotations

import json

import pytest

from broker_tokens.credentials import parse_credentials
from broker_tokens.errors import CredentialsError

GOOD = {
    "broker": "angelone",
    "api_key": "key-123",
    "client_code": "A123456",
    "pin": "9731",
    "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DP",
}


def parse(data: object, account: str = "desk-1") -> object:
    return parse_credentials(account, json.dumps(data), version="v1")


def test_valid_secret_parses_with_defaults() -> None:
    creds = parse(GOOD)
    assert creds.broker == "angelone"
    assert creds.enabled is True
    assert creds.version == "v1"
    assert creds.get("base_url") is None


def test_totp_secret_is_normalised_from_authenticator_spelling() -> None:
    creds = parse({**GOOD, "totp_secret": "jbsw y3dp ehpk 3pxp jbsw y3dp"})
    assert creds.secret("totp_secret") == "JBSWY3DPEHPK3PXPJBSWY3DP"


@pytest.mark.parametrize(
    ("mutation", "key", "words"),
    [
        ({"pin": None}, "pin", "is missing"),
        ({"broker": None}, "broker", "is missing"),
        ({"broker": "shoonya"}, "broker", "unknown broker"),
        ({"pin": 9731}, "pin", "must be a string"),
        ({"totp_secret": "not base32 at all!"}, "totp_secret", "base32"),
        ({"totp_secret": "JBSWY3DP"}, "totp_secret", "too short"),
        ({"base_url": "http://apiconnect.angelone.in"}, "base_url", "https"),
        ({"base_url": "ftp://x"}, "base_url", "https URL"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"api_key": "x" * 5000}, "api_key", "longer than"),
        ({"client_code": "   "}, "client_code", "empty"),
        ({"client_local_ip": "not-an-ip"}, "client_local_ip", "IP address"),
        ({"mac_address": "zz"}, "mac_address", "MAC address"),
    ],
)
def test_bad_values_name_account_and_key(mutation: dict[str, object], key: str, words: str) -> None:
    data = {k: v for k, v in {**GOOD, **mutation}.items() if v is not None}
    with pytest.raises(CredentialsError) as caught:
        parse(data)
    message = str(caught.value)
    assert "'desk-1'" in message
    assert f"'{key}'" in message
    assert words in message
    assert caught.value.key == key


def test_unknown_keys_are_named() -> None:
    with pytest.raises(CredentialsError) as caught:
        parse({**GOOD, "totp_secert": "JBSWY3DPEHPK3PXP", "pasword": "x"})
    assert "'pasword'" in str(caught.value)
    assert "'totp_secert'" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [("", "is empty"), ("{not json", "not valid JSON"), ("[1, 2]", "JSON object"), ('"just a string"', "JSON object")],
)
def test_unusable_documents(text: str, words: str) -> None:
    with pytest.raises(CredentialsError) as caught:
        parse_credentials("desk-2", text)
    assert words in str(caught.value)
    assert "'desk-2'" in str(caught.value)


def test_plain_http_is_allowed_on_loopback_only() -> None:
    assert parse({**GOOD, "base_url": "http://127.0.0.1:8080"}).get("base_url") == "http://127.0.0.1:8080"
    assert parse({**GOOD, "base_url": "http://localhost:9"}).get("base_url") == "http://localhost:9"


def test_errors_never_quote_values() -> None:
    secret_pin = "not-a-valid-pin-value-6632"
    with pytest.raises(CredentialsError) as caught:
        parse({**GOOD, "pin": secret_pin, "surprise": secret_pin})
    assert secret_pin not in str(caught.value)


def test_alias_resolves_to_canonical_name() -> None:
    assert parse({**GOOD, "broker": "AngelOne"}).broker == "angelone"
