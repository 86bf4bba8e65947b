"""Cold start: a handler's import loads only what every request needs (issue 15).

Each check runs in a fresh interpreter, as a Lambda cold start does: the module cache of the test
process (which has loaded everything) would hide an eager import.
"""

from __future__ import annotations

import json

import pytest
from bench.coldstart import fresh_python

from broker_tokens import brokers
from broker_tokens.brokers import adapters, broker_class, known_broker, known_brokers

# Loaded only when a login runs or a PiTrade JWT is signed.
LOGIN_ONLY = (
    "requests",
    "jwt",
    "pyotp",
    "broker_tokens.refresh",
    "broker_tokens.http",
    "aws_lambda_powertools.event_handler",
)
# Named in annotations only: no handler needs it at run time.
TYPE_ONLY = ("aws_lambda_powertools.utilities.typing",)
ADAPTER_MODULES = tuple(
    f"broker_tokens.brokers.{name}" for name in ("angelone", "autoshares", "kite", "pitrade", "tradejini")
)


def loaded_after(code: str) -> set[str]:
    """The module names a fresh interpreter holds after running ``code``."""
    done = fresh_python(f"import json\n{code}\nprint(json.dumps(sorted(sys.modules)))")
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("handler", ["token_api.app", "person_pages.app"])
def test_a_request_handler_imports_no_adapter_and_nothing_only_a_login_needs(handler: str) -> None:
    loaded = loaded_after(f"import {handler}")

    assert handler in loaded
    unwanted = {*LOGIN_ONLY, *ADAPTER_MODULES, *TYPE_ONLY}
    assert not loaded & unwanted, sorted(loaded & unwanted)


def test_the_person_pages_load_none_of_the_token_apis_service() -> None:
    # The public pages check a link and hand the rest to the refresher: the token API's callers,
    # credentials and token cache are another function's work.
    loaded = loaded_after("import person_pages.app")

    token_api_only = {"broker_tokens.api.service", "broker_tokens.callers", "broker_tokens.credentials"}
    assert not loaded & token_api_only, sorted(loaded & token_api_only)


def test_the_refresher_loads_no_adapter_no_http_stack_no_pyotp_and_no_logout() -> None:
    # A run loads an adapter (and with it requests) only when it logs in, pyotp only when a code is
    # made, and the logout only on the end-of-day event; the core of a refresh is loaded by every run.
    only_some_runs = {
        "requests",
        "jwt",
        "pyotp",
        "broker_tokens.totp",
        "broker_tokens.http",
        "broker_tokens.logout",
        "aws_lambda_powertools.event_handler",
        *ADAPTER_MODULES,
        *TYPE_ONLY,
    }

    loaded = loaded_after("import refresher.app")

    assert not loaded & only_some_runs, sorted(loaded & only_some_runs)
    assert {"refresher.app", "broker_tokens.refresh", "broker_tokens.trading_days"} <= loaded


def test_looking_a_broker_up_imports_its_adapter_only_and_no_http_stack() -> None:
    loaded = loaded_after(
        "from broker_tokens.brokers import known_broker, known_brokers\n"
        "assert known_broker('blinkx').login_supersedes and known_brokers()[0] == 'angelone'"
    )

    assert "broker_tokens.brokers.kite" in loaded
    # broker_tokens.http itself loads with an adapter; the requests it wraps waits for a client.
    assert not loaded & {"requests", "jwt", "pyotp", "broker_tokens.refresh", *ADAPTER_MODULES} - {
        "broker_tokens.brokers.kite"
    }


def test_signing_a_jwt_or_starting_a_login_loads_what_it_needs() -> None:
    loaded = loaded_after(
        "from broker_tokens.brokers import broker_class\n"
        "from broker_tokens.credentials import parse_credentials\n"
        "cls = broker_class('tradejini')\n"
        "creds = parse_credentials('tj-1', json.dumps({'broker': 'tradejini', 'api_key': 'k', 'password': 'p',"
        " 'totp_secret': 'JBSWY3DPEHPK3PXP'}))\n"
        "adapter = cls(creds)\n"
        "adapter.totp_code()"
    )

    assert {"requests", "pyotp", "broker_tokens.http"} <= loaded


def test_the_registry_names_each_adapter_by_its_own_name_and_aliases() -> None:
    for cls in adapters():
        assert broker_class(cls.name) is cls
        for alias in cls.aliases:
            assert known_broker(alias.upper()) is cls, alias
    assert known_brokers() == sorted(cls.name for cls in adapters())
    declared = {alias for cls in adapters() for alias in (cls.name, *cls.aliases)}
    assert declared == set(brokers._CANONICAL)
    assert known_broker("") is None and known_broker("nope") is None
    with pytest.raises(KeyError):
        broker_class("nope")
