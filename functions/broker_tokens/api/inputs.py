"""What callers send in a URL or a form, checked one way for the token API and the person pages alike.

Kept apart from either service so that the person pages (a small public function) import these checks
without the token API's whole service.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from broker_tokens.api.errors import bad_request

# An e-mailed or texted code (AutoShares): letters, digits, '-' and '_', at most 64.
VERIFICATION_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def query(event: Mapping[str, Any]) -> dict[str, str]:
    """The query string's parameters, each at most once; ApiError 400 otherwise.

    Example:
        >>> query({"rawQueryString": "request_token=abc123&status=success"})
        {'request_token': 'abc123', 'status': 'success'}
    """
    raw = str(event.get("rawQueryString") or "")
    try:
        parsed = parse_qs(raw, keep_blank_values=True, max_num_fields=20)
    except ValueError:
        raise bad_request("too many query parameters") from None
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise bad_request(f"query parameter(s) given more than once: {', '.join(repr(n[:40]) for n in repeated)}")
    return {name: values[0] for name, values in parsed.items()}
