"""Browser-test fixtures: `browser` (headless phone-sized Chromium) and `demo` (the embedded stack, refreshed).

Chromium comes from Debian's packages (`make browser`); off CI, a machine without it skips these tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import browser  # noqa: F401 - a fixture
from tests.support.stack import DemoStack, demo_stack


@pytest.fixture(scope="module")
def demo(request: pytest.FixtureRequest) -> Iterator[DemoStack]:
    """The embedded stack with its demo accounts after the 07:30 run: blinkx-demo awaits a browser login.

    The token API's auth mode is "api_key", or the test's indirect parameter:
    ``@pytest.mark.parametrize("demo", ["api_key", "iam"], indirect=True)``.
    """
    with demo_stack(auth_mode=getattr(request, "param", "api_key")) as running:
        yield running
