"""Angel One answers mapped to error kinds, from built responses (no network)."""

from __future__ import annotations

import json

import pytest
import requests

from broker_tokens.brokers.angelone import AngelOne
from broker_tokens.credentials import parse_credentials
from broker_tokens.errors import BrokerError, ErrorKind
from tests.support.responses import answer, raised

CREDS = parse_credentials(
    "angel-1",
    json.dumps(
        {
            "broker": "angelone",
            "api_key": "k-1",
            "client_code": "A1",
            "pin": "1234",
            "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DP",
        }
    ),
)


def kind_of(response: requests.Response) -> BrokerError:
    return raised(lambda: AngelOne(CREDS)._data(response, "login"))


def app_error(code: str) -> requests.Response:
    return answer(200, {"status": False, "message": "x", "errorcode": code, "data": None})


@pytest.mark.parametrize(
    ("response", "kind", "code"),
    [
        (app_error("AB1050"), ErrorKind.TOTP, "AB1050"),
        (app_error("AB1007"), ErrorKind.PERMANENT, "AB1007"),
        (app_error("AB1000"), ErrorKind.PERMANENT, "AB1000"),
        (app_error("AB7001"), ErrorKind.PERMANENT, "AB7001"),
        (app_error("AB1006"), ErrorKind.PERMANENT, "AB1006"),
        (app_error("AB1004"), ErrorKind.TRANSIENT, "AB1004"),
        (app_error("AB2001"), ErrorKind.TRANSIENT, "AB2001"),
        (
            answer(200, {"success": False, "message": "Invalid API Key", "errorCode": "AG8004", "data": ""}),
            ErrorKind.PERMANENT,
            "AG8004",
        ),
        (
            answer(200, {"success": False, "message": "Invalid Token", "errorCode": "AG8001", "data": ""}),
            ErrorKind.TRANSIENT,
            "AG8001",
        ),
        (answer(403, "Access denied because of exceeding access rate", "text/plain"), ErrorKind.TRANSIENT, None),
        (answer(502, "<html>Bad gateway</html>", "text/html"), ErrorKind.TRANSIENT, None),
        (answer(200, "<html>maintenance</html>", "text/html"), ErrorKind.TRANSIENT, None),
        (answer(429, {"message": "slow down"}), ErrorKind.TRANSIENT, None),
        (app_error("AB9999"), ErrorKind.PERMANENT, "AB9999"),
    ],
)
def test_answers_map_to_kinds(response: requests.Response, kind: ErrorKind, code: str | None) -> None:
    error = kind_of(response)
    assert error.kind is kind
    assert error.code == code


def test_success_envelope_yields_data() -> None:
    body = {"status": True, "message": "SUCCESS", "errorcode": "", "data": {"jwtToken": "j"}}
    assert AngelOne(CREDS)._data(answer(200, body), "login") == {"jwtToken": "j"}


def test_token_record_headers_are_complete() -> None:
    headers = AngelOne(CREDS).app_headers()
    assert set(headers) == {
        "X-PrivateKey",
        "X-UserType",
        "X-SourceID",
        "X-ClientLocalIP",
        "X-ClientPublicIP",
        "X-MACAddress",
    }
    assert headers["X-PrivateKey"] == "k-1"
