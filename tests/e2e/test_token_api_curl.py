"""`make run`'s promise, end to end: the embedded stack up, the demo API key, and the printed curl line
run as a user would run it, in a shell, getting a token.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from infra.local.demo import demo_run_event, seed_demo_accounts
from infra.local.front import demo_access
from infra.local.lambda_context import LocalLambdaContext
from infra.local.moto_server import MotoServer
from infra.local.stack import LocalStack

from broker_tokens.refresh import NotFreshError
from broker_tokens.runtime import container_refresher
from refresher.app import lambda_handler
from tests.support.logsink import leaks, remember_secret

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """The embedded stack with its demo accounts refreshed once; this process's environment restored after.

    One per module: moto's in-process servers share one state, so a second stack would find the first's.
    """
    saved = dict(os.environ)
    container_refresher.cache_clear()
    # moto's servers in one process share their state: start from (and leave) an empty one.
    moto = MotoServer().start()
    moto.reset()
    try:
        with LocalStack(moto=moto) as running:
            demos = seed_demo_accounts(running.simulators, running.moto.client("secretsmanager"), running.prefix)
            for demo in demos:
                remember_secret(*(str(v) for k, v in demo.credentials.items() if k in SECRET_KEYS))
            # The demo's person-completed logins wait for a person, as they should: the run says so.
            with contextlib.suppress(NotFreshError):
                lambda_handler(demo_run_event(), LocalLambdaContext("broker-tokens-refresher"))
            yield running
    finally:
        moto.reset()
        moto.stop()
        container_refresher.cache_clear()
        os.environ.clear()
        os.environ.update(saved)


SECRET_KEYS = {"pin", "password", "totp_secret", "api_secret", "secret_key"}


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
