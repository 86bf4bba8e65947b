"""The state file of a running embedded stack: how another shell reaches it, its demo logins, its outbox.

`broker-tokens local up` (its background server) and `make run KEEP=1` both serve a stack; both write
the same record through :class:`StackRecord`, so `--local`, `local env`, `local outbox` and `local totp`
work with either. The demo logins are credentials of the simulators (generated at start, good nowhere
else): showing them is the point, a person needs them to play the BlinkX login. The outbox holds the
codes the AutoShares simulator "e-mails", written before the simulator's answer goes out, so a
`broker-tokens local outbox` right after `refresh` always finds the code.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broker_tokens.cli.localstate import read_state, write_state
from broker_tokens.cli.schedules import template_schedules
from infra.local.demo import DemoAccount, point_callbacks_at, seed_demo_accounts
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.kite import BlinkXSimulator
from infra.local.stack import LocalStack
from infra.local.template import load_template, parameter_values

# What a person types on the simulated login page of a broker that needs one.
PERSON_LOGIN_KEYS = ("user_id", "password", "totp_secret")


def open_demo(stack: LocalStack) -> list[DemoAccount]:
    """Seed the demo accounts and point the Kite-family apps' redirects at this stack's person pages.

    Example:
        >>> demos = open_demo(stack)  # doctest: +SKIP
    """
    demos = seed_demo_accounts(stack.simulators, stack.moto.client("secretsmanager"), stack.prefix)
    point_callbacks_at(stack.person_url, stack.simulators, demos)
    return demos


def demo_logins(stack: LocalStack, demos: list[DemoAccount]) -> dict[str, dict[str, str]]:
    """The simulated broker logins a person does by hand (BlinkX's browser login), by account.

    Example:
        >>> demo_logins(stack, demos)["blinkx-demo"]["user_id"]  # doctest: +SKIP
        'BX1234'
    """
    person = [name for name, sim in stack.simulators.items() if isinstance(sim, BlinkXSimulator)]
    return {
        d.account: {key: str(d.credentials[key]) for key in PERSON_LOGIN_KEYS}
        for d in demos
        if d.broker in person and all(d.credentials.get(key) for key in PERSON_LOGIN_KEYS)
    }


class StackRecord:
    """The state file of one serving process; rewritten whole (atomically) on every change.

    Example:
        >>> record = StackRecord(path, stack, demos, server="infra.local", lifetime_seconds=None)  # doctest: +SKIP
        >>> record.write()                                                                        # doctest: +SKIP
    """

    def __init__(
        self,
        path: Path,
        stack: LocalStack,
        demos: list[DemoAccount],
        *,
        server: str,
        lifetime_seconds: float | None,
        pid: int,
    ):
        self.path = path
        self.pid = pid
        self._lock = threading.Lock()
        self._open = True
        stops_at = None
        if lifetime_seconds is not None:
            stops_at = datetime.fromtimestamp(time.time() + lifetime_seconds, UTC).isoformat(timespec="seconds")
        self.data: dict[str, Any] = {
            "pid": pid,
            "server": server,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "stops_at": stops_at,
            "environment": stack.environment,
            "moto": stack.moto.endpoint,
            "simulators": {name: sim.url for name, sim in stack.simulators.items()},
            "token_api": stack.front.url,
            "person_pages": stack.person_url,
            # The refresher function behind the stack's Invoke endpoint (AWS_ENDPOINT_URL_LAMBDA):
            # REFRESHER_FUNCTION_NAME=<this> makes `refresh` run there, as with a deployed stack.
            "refresher_function": stack.resources.names["RefresherFunction"] if stack.resources else None,
            "demo_accounts": [{"account": d.account, "broker": d.broker} for d in demos],
            "demo_logins": demo_logins(stack, demos),
            "outbox": [],
            # The template's default runs: what `status` shows as the last and next scheduled runs.
            "schedules": [s.to_dict() for s in template_schedules(parameter_values(load_template()))],
        }
        self._listen_to_mail(stack, demos)

    def write(self) -> None:
        """Write the record as it stands (never after :meth:`close`)."""
        with self._lock:
            if self._open:
                write_state(self.path, self.data)

    def mailed(self, account: str, code: str) -> None:
        """A code the AutoShares simulator sent: into the outbox, and the file, at once."""
        sent = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            self.data["outbox"].append({"account": account, "sent_at": sent, "code": code})
        self.write()

    def owned(self) -> bool:
        """True while the file on disk is this record's (not removed by `local down`, nor taken over)."""
        current = read_state(self.path)
        return current is not None and current.get("pid") == self.pid

    def close(self) -> None:
        """Stop writing, and remove the file when it is still this record's."""
        owned = self.owned()
        with self._lock:
            self._open = False
        if owned:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def _listen_to_mail(self, stack: LocalStack, demos: list[DemoAccount]) -> None:
        users = {str(d.credentials.get("username")): d.account for d in demos if d.broker == "autoshares"}

        def heard(username: str, code: str) -> None:
            self.mailed(users.get(username, username), code)

        for sim in stack.simulators.values():
            if isinstance(sim, AutoSharesSimulator):
                sim.on_mail = heard
