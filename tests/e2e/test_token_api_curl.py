"""`make run`'s promise, end to end: the embedded stack up, the demo API key, and the printed curl line
run as a user would run it, in a shell, getting a token.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from infra.local.front import demo_access
from infra.local.stack import LocalStack

from tests.support.logsink import leaks, remember_secret
from tests.support.stack import demo_stack

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """The embedded stack with its demo accounts refreshed once; this process's environment restored after."""
    with demo_stack() as demo:
        yield demo.stack


def test_the_printed_curl_line_gets_a_token(stack: LocalStack) -> None:
    assert stack.resources is not None
    access = demo_access(stack.resources.table_name, stack.front.url, "angel-demo")
    remember_secret(access.key)
    done = subprocess.run(shlex.split(access.curl), capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    token = json.loads(done.stdout)
    assert token["account"] == "angel-demo" and token["broker"] == "angelone"
    assert token["authorization"] == f"Bearer {token['access_token']}"
    assert not leaks([done.stdout]), "a credential reached the answer"


def test_curl_without_the_key_is_refused(stack: LocalStack) -> None:
    url = f"{stack.front.url}/accounts/angel-demo/token"
    command = ["curl", "-s", "-w", "\n%{http_code}", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    body, status = done.stdout.rsplit("\n", 1)
    assert status == "401" and json.loads(body)["error"] == "unauthorized"
