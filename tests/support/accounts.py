"""Broker accounts on the simulators, and calls made with nothing but a stored token record.

Each ``*_credentials`` function registers an account on a simulator and returns the JSON object of
the credentials secret that logs in to it (``base_url`` is the simulator's); storing that secret is the
caller's business (``Harness.add_account``, the CLI, a fault kit). TOTP secrets are new random ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyotp
import requests
from infra.local.simulators.angelone import AngelOneSimulator
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.kite import KiteSimulator, ZerodhaSimulator
from infra.local.simulators.tradejini import TradejiniSimulator

TIMEOUT_SECONDS = 5


def angel_credentials(
    sim: AngelOneSimulator, client_code: str, *, pin: str, api_key: str, name: str = ""
) -> dict[str, Any]:
    """An Angel One client on the simulator, and its credentials.

    Example:
        >>> angel_credentials(sim, "A100001", pin="2468", api_key="angel-key-1")["client_code"]  # doctest: +SKIP
        'A100001'
    """
    totp_secret = pyotp.random_base32()
    sim.add_account(client_code=client_code, pin=pin, totp_secret=totp_secret, api_key=api_key, name=name)
    return {
        "broker": "angelone",
        "api_key": api_key,
        "client_code": client_code,
        "pin": pin,
        "totp_secret": totp_secret,
        "base_url": sim.url,
    }


def tradejini_credentials(
    sim: TradejiniSimulator, user_id: str, *, api_key: str, pin: str, user_name: str = ""
) -> dict[str, Any]:
    """A Tradejini user on the simulator, and its credentials (the PIN is the secret's password).

    Example:
        >>> tradejini_credentials(sim, "TJ1001", api_key="tj-key-1", pin="2468")["password"]  # doctest: +SKIP
        '2468'
    """
    totp_secret = pyotp.random_base32()
    sim.add_account(user_id=user_id, api_key=api_key, pin=pin, totp_secret=totp_secret, user_name=user_name)
    return {
        "broker": "tradejini",
        "api_key": api_key,
        "password": pin,
        "totp_secret": totp_secret,
        "base_url": sim.url,
    }


def etna_credentials(
    sim: AutoSharesSimulator,
    username: str,
    password: str,
    *,
    app_key: str,
    two_factor: bool = False,
    pin: str | None = None,
    broker: str = "autoshares",
) -> dict[str, Any]:
    """An AutoShares (ETNA Trader) app key and user on the simulator, and the credentials.

    ``two_factor`` makes the login wait for an e-mailed code; a ``pin`` adds the PIN step.

    Example:
        >>> etna_credentials(sim, "demo.2fa", "Pass-word-1", app_key="etna-app-key", two_factor=True)  # doctest: +SKIP
        {'broker': 'autoshares', 'app_key': 'etna-app-key', 'username': 'demo.2fa', ...}
    """
    sim.add_app_key(app_key)
    sim.add_account(username, password, two_factor=two_factor, pin_step=pin is not None, pin=pin or "")
    return {
        "broker": broker,
        "app_key": app_key,
        "username": username,
        "password": password,
        "base_url": sim.url,
        **({"pin": pin} if pin else {}),
    }


def kite_credentials(
    sim: KiteSimulator,
    user_id: str,
    *,
    api_key: str,
    api_secret: str,
    redirect_url: str,
    password: str,
    totp_secret: str,
    user_name: str = "",
    person_only: bool = False,
) -> dict[str, Any]:
    """A Kite Connect app and its user on a Zerodha or BlinkX simulator, and the credentials.

    With ``person_only`` the secret holds no password or TOTP secret: a person logs in (BlinkX's way).

    Example:
        >>> kite_credentials(zerodha, "AB1234", api_key="k", api_secret="s", redirect_url=CALLBACK,
        ...                  password="p", totp_secret=pyotp.random_base32())["broker"]  # doctest: +SKIP
        'zerodha'
    """
    sim.add_app(api_key, api_secret, redirect_url)
    sim.add_user(user_id, password, totp_secret, user_name=user_name)
    credentials: dict[str, Any] = {
        "broker": "zerodha" if isinstance(sim, ZerodhaSimulator) else "blinkx",
        "api_key": api_key,
        "api_secret": api_secret,
        "user_id": user_id,
        "base_url": sim.url,
        "login_url": sim.login_url,
    }
    if not person_only:
        credentials.update(password=password, totp_secret=totp_secret)
    return credentials


def call_with_record(url: str, record: Mapping[str, Any], *, content_type: str | None = None) -> requests.Response:
    """GET ``url`` sending only what the token record gives (authorization and headers) and Accept.

    That is the contract: an app that sends those (plus Content-Type where the broker wants one) makes a
    valid call with nothing else.

    Example:
        >>> call_with_record(f"{sim.url}/user/profile", harness.token("zerodha-1")).status_code  # doctest: +SKIP
        200
    """
    headers = {"Authorization": record["authorization"], **record["headers"], "Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return requests.get(url, headers=headers, timeout=TIMEOUT_SECONDS)
