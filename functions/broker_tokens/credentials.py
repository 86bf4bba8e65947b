"""The credentials secret: parse it, check it against its broker's declared fields, name what is wrong.

Every error names the account and the key and never the value; secret values are registered with the
redactor as soon as they are parsed.
"""

from __future__ import annotations

import binascii
import ipaddress
import json
import re
from base64 import b32decode
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from broker_tokens.brokers import broker_class, known_brokers
from broker_tokens.brokers.base import COMMON_FIELDS, Broker, Field
from broker_tokens.errors import CredentialsError
from broker_tokens.redaction import register

MAX_VALUE_LENGTH = 4096
MAC = re.compile(r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}")


@dataclass(frozen=True)
class Credentials:
    """A parsed, validated credentials secret.

    Example:
        >>> creds = parse_credentials("a1", '{"broker": "angelone", "api_key": "k", "client_code": "A1",'
        ...     ' "pin": "1234", "totp_secret": "JBSWY3DPEHPK3PXP"}', version="v1")
        >>> creds.broker, creds.enabled, creds.get("pin") == "1234"
        ('angelone', True, True)
    """

    account: str
    broker: str
    values: dict[str, Any] = field(repr=False)
    version: str | None = None

    @property
    def enabled(self) -> bool:
        """False when the secret says ``"enabled": false``."""
        return bool(self.values.get("enabled", True))

    @property
    def broker_class(self) -> type[Broker]:
        """The adapter class for this account's broker."""
        return broker_class(self.broker)

    def get(self, key: str, default: Any = None) -> Any:
        """A value, or ``default`` when the key is absent."""
        return self.values.get(key, default)

    def secret(self, key: str) -> str:
        """A required string value (KeyError names only the key)."""
        return str(self.values[key])


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses.

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("10.0.0.1")
        (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_totp_secret(value: str) -> str:
    """Authenticator secrets are shown in groups and lower case; pyotp wants bare upper-case base32.

    Example:
        >>> normalise_totp_secret("jbsw y3dp ehpk 3pxp")
        'JBSWY3DPEHPK3PXP'
    """
    return re.sub(r"[\s-]", "", value).upper()


def _check_value(account: str, spec: Field, value: Any) -> Any:
    """Type-check one value; returns it normalised."""

    def fail(reason: str) -> CredentialsError:
        return CredentialsError(account, spec.name, reason)

    if spec.name == "enabled":
        if not isinstance(value, bool):
            raise fail("must be true or false")
        return value
    if spec.kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("must be a whole number")
        if spec.minimum is not None and value < spec.minimum:
            raise fail(f"must be at least {spec.minimum}")
        if spec.maximum is not None and value > spec.maximum:
            raise fail(f"must be at most {spec.maximum}")
        return value
    if not isinstance(value, str):
        raise fail(f"must be a string, not {type(value).__name__}")
    if len(value) > MAX_VALUE_LENGTH:
        raise fail(f"is longer than {MAX_VALUE_LENGTH} characters")
    if not value.strip():
        raise fail("is empty")
    if spec.kind == "totp":
        value = normalise_totp_secret(value)
        try:
            b32decode(value + "=" * (-len(value) % 8))
        except (binascii.Error, ValueError):
            raise fail("is not a base32 TOTP secret (the key shown when you enabled TOTP)") from None
        if len(value) < 16:
            raise fail("is too short for a TOTP secret (at least 16 base32 characters)")
    elif spec.kind == "url":
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise fail("must be an https URL")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise fail("must use https (plain http is allowed only for loopback addresses)")
    elif spec.kind == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise fail("is not an IP address") from None
    elif spec.kind == "mac" and not MAC.fullmatch(value):
        raise fail("is not a MAC address like 00:1A:2B:3C:4D:5E")
    return value


def parse_credentials(account: str, text: str | None, *, version: str | None = None) -> Credentials:
    """Parse and validate a credentials secret; raises CredentialsError naming account and key.

    Example:
        >>> parse_credentials("a1", '{"broker": "angelone"}')
        Traceback (most recent call last):
        ...
        broker_tokens.errors.CredentialsError: account 'a1': credentials key 'api_key' is missing
    """
    if text is None or not text.strip():
        raise CredentialsError(account, None, "is empty")
    try:
        data = json.loads(text)
    except ValueError:
        raise CredentialsError(account, None, "is not valid JSON") from None
    if not isinstance(data, dict):
        raise CredentialsError(account, None, f"must be a JSON object, not a {type(data).__name__}")
    return validate_credentials(account, data, version=version)


def validate_credentials(account: str, data: dict[str, Any], *, version: str | None = None) -> Credentials:
    """Validate an already-decoded secret (the CLI's entry point); see :func:`parse_credentials`."""
    name = data.get("broker")
    if name is None:
        raise CredentialsError(account, "broker", "is missing")
    if not isinstance(name, str):
        raise CredentialsError(account, "broker", "must be a string")
    try:
        cls = broker_class(name)
    except KeyError:
        raise CredentialsError(
            account, "broker", f"names an unknown broker (known: {', '.join(known_brokers())})"
        ) from None
    specs = {spec.name: spec for spec in (*COMMON_FIELDS, *cls.fields)}
    unknown = sorted(set(data) - set(specs))
    if unknown:
        listed = ", ".join(f"'{key}'" for key in unknown)
        raise CredentialsError(account, None, f"has unknown key(s) {listed} for broker '{cls.name}'")
    # Register before checking, so a value quoted by a later error or log line is already masked.
    register(*(str(data[key]) for key, spec in specs.items() if spec.is_secret and key in data))
    values: dict[str, Any] = {}
    for key, spec in specs.items():
        if key not in data or data[key] is None:
            if spec.required:
                raise CredentialsError(account, key, "is missing")
            continue
        values[key] = _check_value(account, spec, data[key])
    for group in cls.together:
        absent = [key for key in group if key not in values]
        if absent and len(absent) < len(group):
            raise CredentialsError(account, absent[0], f"is missing: {' and '.join(group)} go together (or neither)")
    values["broker"] = cls.name
    register(*(str(values[key]) for key, spec in specs.items() if spec.is_secret and key in values))
    return Credentials(account=account, broker=cls.name, values=values, version=version)
