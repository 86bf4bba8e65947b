"""moto's server on loopback: Secrets Manager, DynamoDB, SNS, KMS and SQS without an AWS account."""

from __future__ import annotations

import contextlib
import io
import logging
import select
import subprocess
import sys
from types import TracebackType
from typing import Self

import boto3
import requests
from moto.server import ThreadedMotoServer

# Fake, and only ever sent to the loopback moto server.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}

# The child serves until its stdin closes: when the parent stops it, or dies, the server goes with it.
_CHILD = """
import contextlib, io, logging, os, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
with contextlib.redirect_stdout(io.StringIO()):
    server.start()
print(server.get_host_and_port()[1], flush=True)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nobody reads the pipe after the port: never block on it
sys.stdout = open(os.devnull, "w")
sys.stdin.read()
os._exit(0)  # a throwaway server: nothing of it needs a clean shutdown
"""
# Starting (imports and a free port) takes about a second; stopping, less.
CHILD_SECONDS = 60


class MotoServer:
    """A ThreadedMotoServer on 127.0.0.1 with a free port, in this process or in a child of its own.

    ``own_process`` puts the server in a child process, as AWS's services are not in a Lambda's process:
    the server's work then neither waits for this process's GIL nor holds it (the benchmarks use it).

    Example:
        >>> with MotoServer(own_process=True) as moto:     # doctest: +SKIP
        ...     moto.session().client("secretsmanager").list_secrets()["SecretList"]
        []
    """

    def __init__(self, region: str = "ap-south-1", *, own_process: bool = False):
        self.region = region
        self.own_process = own_process
        self._server: ThreadedMotoServer | None = None
        self._child: subprocess.Popen[str] | None = None
        self._port: int | None = None

    def start(self) -> Self:
        """Start serving (idempotent)."""
        if self._port is not None:
            return self
        if self.own_process:
            self._port = self._start_child()
            return self
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        with contextlib.redirect_stdout(io.StringIO()):
            server.start()
        self._server = server
        self._port = server.get_host_and_port()[1]
        return self

    def _start_child(self) -> int:
        """Start the child server and read the port it bound (its first line of output)."""
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._child = child
        output = child.stdout
        ready = output is not None and select.select([output], [], [], CHILD_SECONDS)[0]
        line = output.readline() if output is not None and ready else ""
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("moto server did not start in its own process")
        return int(line)

    @property
    def endpoint(self) -> str:
        """The base URL every AWS client of the stack talks to."""
        if self._port is None:
            raise RuntimeError("moto server is not running")
        return f"http://127.0.0.1:{self._port}"

    def environment(self) -> dict[str, str]:
        """What a process needs to reach this server through the standard boto3 configuration."""
        return {
            **LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def session(self) -> boto3.Session:
        """A boto3 session for this server (clients still need ``endpoint_url``; see :meth:`client`)."""
        return boto3.Session(
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=LOCAL_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=self.region,
        )

    def client(self, service: str) -> object:
        """A boto3 client for one service of this server."""
        return self.session().client(service, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    def reset(self) -> None:
        """Forget every resource (moto's own reset API), so each test starts empty."""
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._child is not None:
            child, self._child = self._child, None
            if child.stdin is not None:
                with contextlib.suppress(OSError):
                    child.stdin.close()
            try:
                child.wait(timeout=CHILD_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
