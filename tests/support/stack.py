"""The embedded stack of `make run`, in this process, for tests that use it as a person or an app would.

moto, one simulator per broker, the token API's local front on a random loopback port, the demo accounts
seeded and the Kite-family apps' redirect URLs pointed at that front. The refresher has run once as the
07:30 schedule would, so the accounts stand where a trader finds them in the morning: most fresh,
``blinkx-demo`` awaiting a browser login and ``etna-2fa-demo`` an e-mailed code.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local.demo import DemoAccount, demo_run_event, point_callbacks_at, seed_demo_accounts
from infra.local.lambda_context import LocalLambdaContext
from infra.local.moto_server import MotoServer
from infra.local.stack import LocalStack

from broker_tokens.models import Outcome
from broker_tokens.refresh import NotFreshError
from broker_tokens.runtime import container_refresher
from refresher.app import lambda_handler
from tests.support.logsink import remember_secret

# The credential fields of the demo secrets: the log scan (and page scans) look for their values.
SECRET_KEYS = {"pin", "password", "totp_secret", "api_secret", "secret_key"}
CLI_TIMEOUT_SECONDS = 60


@dataclass
class DemoStack:
    """The running stack and its demo accounts by id.

    Example:
        >>> with demo_stack() as demo:                                    # doctest: +SKIP
        ...     demo.describe("blinkx-demo").state.value
        'awaiting-login'
    """

    stack: LocalStack
    accounts: dict[str, DemoAccount]

    def credentials(self, account: str) -> dict[str, Any]:
        """A demo account's credentials secret, as seeded (what the person behind it knows)."""
        return self.accounts[account].credentials

    def describe(self, account: str) -> Outcome:
        """Where an account stands, read from the state table and its token secret (no broker call)."""
        return container_refresher().describe(account)

    def token(self, account: str) -> dict[str, Any]:
        """The account's token secret as stored (empty when there is none)."""
        record = container_refresher().secrets.read_token(account)
        return record.to_dict() if record else {}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``broker-tokens ARGS`` in a subprocess against this stack (bounded), capturing its output."""
        script = Path(sys.executable).with_name("broker-tokens")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "broker_tokens.cli"]
        env = {key: value for key, value in os.environ.items() if key != "BROKER_TOKENS_LOCAL"}
        return subprocess.run(
            [*command, *args],
            input="",
            capture_output=True,
            text=True,
            env=env,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )

    def status(self, account: str) -> dict[str, Any]:
        """``broker-tokens status ACCOUNT --json``: the account's line, as the CLI reports it."""
        done = self.cli("status", account, "--json")
        assert done.returncode in (0, 1), done.stderr
        [line] = json.loads(done.stdout)["accounts"]
        return dict(line)


@contextlib.contextmanager
def demo_stack(auth_mode: str = "api_key") -> Iterator[DemoStack]:
    """Start the stack, seed and refresh the demo accounts; stop it and restore this process's environment.

    ``auth_mode`` is the token API's (`TokenApiAuthMode`: "api_key" or "iam"). One stack at a time per
    process: moto's in-process servers share one state, so a second stack would find the first's.
    """
    saved = dict(os.environ)
    container_refresher.cache_clear()
    moto = MotoServer().start()
    moto.reset()  # start from (and leave) an empty moto
    try:
        with LocalStack(moto=moto, auth_mode=auth_mode) as running:
            demos = seed_demo_accounts(running.simulators, running.moto.client("secretsmanager"), running.prefix)
            point_callbacks_at(running.person_url, running.simulators, demos)
            for demo in demos:
                remember_secret(*(str(v) for k, v in demo.credentials.items() if k in SECRET_KEYS))
            # The demo's person-completed logins wait for a person, as they should: the run says so.
            with contextlib.suppress(NotFreshError):
                lambda_handler(demo_run_event(), LocalLambdaContext("broker-tokens-refresher"))
            yield DemoStack(running, {demo.account: demo for demo in demos})
    finally:
        moto.reset()
        moto.stop()
        container_refresher.cache_clear()
        os.environ.clear()
        os.environ.update(saved)
