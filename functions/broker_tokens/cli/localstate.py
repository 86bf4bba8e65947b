"""The embedded stack's state file: where `broker-tokens local up` left the way to reach it.

The file is one per user, whatever the directory: ``$BROKER_TOKENS_LOCAL_STATE``, else
``$XDG_STATE_HOME/broker-tokens/local.json``, else ``~/.local/state/broker-tokens/local.json``. It
holds the serving process's id and the environment a client needs (``AWS_ENDPOINT_URL``, the fake
credentials, region, ``SECRET_PREFIX``, ``STATE_TABLE_NAME``...), the demo logins and the simulated
e-mail outbox. Every command run with ``--local`` applies that environment before it creates any
boto3 client. `broker-tokens local up` writes it, and so does `make run KEEP=1`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import broker_tokens

STATE_FILE_SETTING = "BROKER_TOKENS_LOCAL_STATE"
STATE_FILE_NAME = "local.json"
# Written into the state file and looked for in the process's command line before any signal is sent.
SERVER_MODULE = "broker_tokens.cli.local_server"
# `make run KEEP=1` (python -m infra.local run --keep) serves a stack too.
DEMO_MODULE = "infra.local"
SERVER_MODULES = (SERVER_MODULE, DEMO_MODULE)
# A forgotten stack stops by itself after a working day.
DEFAULT_LIFETIME_HOURS = 8.0


class LocalStackError(Exception):
    """The embedded stack is absent, stopped, or cannot be started from this installation."""


def state_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the state file lives: one place per user (the XDG state directory), from any directory.

    Example:
        >>> state_path({"BROKER_TOKENS_LOCAL_STATE": "/tmp/x.json"})
        PosixPath('/tmp/x.json')
        >>> state_path({"XDG_STATE_HOME": "/home/me/.state"})
        PosixPath('/home/me/.state/broker-tokens/local.json')
    """
    env = os.environ if environ is None else environ
    if env.get(STATE_FILE_SETTING):
        return Path(env[STATE_FILE_SETTING]).expanduser().absolute()
    base = Path(env.get("XDG_STATE_HOME") or "~/.local/state").expanduser()
    return (base / "broker-tokens" / STATE_FILE_NAME).absolute()


def read_state(path: Path) -> dict[str, Any] | None:
    """The state file's content, or None when there is none (or it is not one of ours)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("pid"), int)
        or not isinstance(data.get("environment"), dict)
    ):
        return None
    return data


def write_state(path: Path, data: dict[str, Any]) -> None:
    """Write the state file atomically (a reader never sees half of it), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    os.replace(temporary, path)


def is_stack_process(pid: int) -> bool:
    """True when ``pid`` is alive and (where /proc tells) serves a stack (`local up`, `make run KEEP=1`).

    Where /proc tells, a recycled pid of another program is not taken for the stack.

    Example:
        >>> is_stack_process(os.getpid())
        False
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: certainly not the stack this user started
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            words = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            return False
        return "-m" in words and any(module in words for module in SERVER_MODULES)
    return True


def running_state(path: Path) -> dict[str, Any] | None:
    """The state of a stack that is up, or None (a stale file of a dead stack counts as none)."""
    data = read_state(path)
    if data is None or not is_stack_process(int(data["pid"])):
        return None
    return data


def local_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment that leads boto3 and the core to the running embedded stack.

    Raises LocalStackError (one line, saying what to run) when no stack is up.
    """
    path = state_path(environ)
    data = running_state(path)
    if data is None:
        raise LocalStackError(
            f"the local stack is not running (no live {path.name}): start it with `broker-tokens local up`"
        )
    return {str(key): str(value) for key, value in data["environment"].items()}


def repo_root() -> Path:
    """The checkout this package was installed from (editable install): functions/broker_tokens/../../."""
    return Path(broker_tokens.__file__).resolve().parents[2]


def import_embedded_stack() -> None:
    """Make ``infra.local`` importable (it lives in the repo checkout, not in the installed package).

    Raises LocalStackError when this installation has no checkout next to it.
    """
    root = repo_root()
    if not (root / "infra" / "local" / "stack.py").is_file():
        raise LocalStackError(
            "the embedded stack (infra/local) ships with the repository, not the package: "
            "run this from a clone installed with `make install` (pip install -e .)"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        import infra.local.stack  # noqa: F401, PLC0415 - the import is the check
    except ImportError as exc:
        raise LocalStackError(f"the embedded stack cannot be imported ({exc}); run `make install`") from None
