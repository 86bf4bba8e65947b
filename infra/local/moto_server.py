"""moto's server on loopback: Secrets Manager, DynamoDB, SNS, KMS and SQS without an AWS account."""

from __future__ import annotations

import contextlib
import io
import logging
from types import TracebackType
from typing import Self

import boto3
import requests
from moto.server import ThreadedMotoServer

# Fake, and only ever sent to the loopback moto server.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


class MotoServer:
    """A ThreadedMotoServer on 127.0.0.1 with a free port.

    Example:
        >>> with MotoServer() as moto:                     # doctest: +SKIP
        ...     moto.session().client("secretsmanager").list_secrets()["SecretList"]
        []
    """

    def __init__(self, region: str = "ap-south-1"):
        self.region = region
        self._server: ThreadedMotoServer | None = None

    def start(self) -> Self:
        """Start serving (idempotent)."""
        if self._server is None:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            with contextlib.redirect_stdout(io.StringIO()):
                server.start()
            self._server = server
        return self

    @property
    def endpoint(self) -> str:
        """The base URL every AWS client of the stack talks to."""
        if self._server is None:
            raise RuntimeError("moto server is not running")
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
