"""The broker registry: adding a broker is one module here and one line in ``_ADAPTERS``.

Example:
    >>> broker_class("angelone").title
    'Angel One SmartAPI'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker_tokens.brokers.angelone import AngelOne
from broker_tokens.brokers.autoshares import AutoShares
from broker_tokens.brokers.kite import BlinkX, Zerodha
from broker_tokens.brokers.pitrade import PiTrade
from broker_tokens.brokers.tradejini import Tradejini

if TYPE_CHECKING:
    from broker_tokens.brokers.base import Broker

_ADAPTERS: tuple[type[Broker], ...] = (AngelOne, AutoShares, BlinkX, PiTrade, Tradejini, Zerodha)

_BY_NAME: dict[str, type[Broker]] = {}
for _cls in _ADAPTERS:
    for _name in (_cls.name, *_cls.aliases):
        _BY_NAME[_name] = _cls


def broker_class(name: str) -> type[Broker]:
    """The adapter class for a broker name or alias; KeyError for an unknown one."""
    return _BY_NAME[name.strip().lower()]


def known_broker(name: str | None) -> type[Broker] | None:
    """The adapter class of a broker name or alias, or None (unknown or no name).

    Example:
        >>> known_broker("angelone").name, known_broker("nope")
        ('angelone', None)
    """
    if not name:
        return None
    try:
        return broker_class(name)
    except KeyError:
        return None


def known_brokers() -> list[str]:
    """Canonical broker names, sorted."""
    return sorted(cls.name for cls in _ADAPTERS)


def adapters() -> tuple[type[Broker], ...]:
    """Every adapter class."""
    return _ADAPTERS
