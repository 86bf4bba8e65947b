"""The broker registry: adding a broker is one module here and one line in ``_ADAPTERS``.

Adapters are imported on first use, one at a time: the token API and the person pages look a broker
up (its title, whether it stores a token) without loading every adapter, and an adapter module itself
loads ``requests``, ``pyjwt`` and ``pyotp`` only when a login or a signature runs (cold start, issue 15).

Example:
    >>> broker_class("angelone").title
    'Angel One SmartAPI'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broker_tokens.brokers.base import Broker

# Canonical name -> (module, class, aliases). The aliases live here too, so a lookup by alias
# imports nothing but the one adapter it names.
_ADAPTERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "angelone": ("broker_tokens.brokers.angelone", "AngelOne", ()),
    "autoshares": ("broker_tokens.brokers.autoshares", "AutoShares", ("etna",)),
    "blinkx": ("broker_tokens.brokers.kite", "BlinkX", ()),
    "pitrade": ("broker_tokens.brokers.pitrade", "PiTrade", ()),
    "tradejini": ("broker_tokens.brokers.tradejini", "Tradejini", ()),
    "zerodha": ("broker_tokens.brokers.kite", "Zerodha", ()),
}
_CANONICAL: dict[str, str] = {alias: name for name, (_, _, aliases) in _ADAPTERS.items() for alias in (name, *aliases)}


def broker_class(name: str) -> type[Broker]:
    """The adapter class for a broker name or alias (its module imported now); KeyError for an unknown one."""
    canonical = _CANONICAL[name.strip().lower()]
    module, attribute, _ = _ADAPTERS[canonical]
    cls: type[Broker] = getattr(importlib.import_module(module), attribute)
    return cls


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
    """Canonical broker names, sorted, without importing any adapter.

    Example:
        >>> known_brokers()[:2]
        ['angelone', 'autoshares']
    """
    return sorted(_ADAPTERS)


def adapters() -> tuple[type[Broker], ...]:
    """Every adapter class (each module imported now)."""
    return tuple(broker_class(name) for name in sorted(_ADAPTERS))
