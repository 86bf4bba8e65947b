"""The AWS half of the embedded stack for benchmarks: moto's servers with the template's resources.

Benchmarks talk to it exactly as the functions do in Lambda: through boto3 clients, over HTTP, to the
table, key and topic that template.yaml declares (provisioned by infra.local.template).

Each server runs in a process of its own, and the two services a refresh calls most (DynamoDB and
Secrets Manager) each have their own server: AWS's services are neither in the function's process nor
queued behind one another, while one moto process serves one request at a time (its GIL), about 4 ms
each, which would make a benchmark of 100 accounts measure moto rather than the refresher.

Example:
    >>> with EmbeddedAws() as aws:                                   # doctest: +SKIP
    ...     aws.secrets.list_secrets()["SecretList"]
    []
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from dataclasses import replace
from types import TracebackType
from typing import Any, Self

from infra.local.moto_server import MotoServer
from infra.local.template import LocalResources, provision

from broker_tokens.config import Settings

PREFIX = "bench"
# Services with a server of their own, and the name of their endpoint variable (AWS_ENDPOINT_URL_<name>,
# the standard boto3 configuration); every other service is on the main server.
SERVICES_APART = {"dynamodb": "DYNAMODB", "secretsmanager": "SECRETS_MANAGER"}
# What infra.local.stack gives the refresher locally: a hung simulator call costs seconds, not minutes.
LOCAL_HTTP_TIMEOUT = "5"


class EmbeddedAws:
    """moto's server on loopback, the template's resources in it, and boto3 clients for it.

    ``environment`` is the refresher function's environment as template.yaml resolves it locally.
    """

    def __init__(self, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        # In processes of their own, as AWS is not in the function's: their CPU is not the refresher's.
        self.moto = MotoServer(own_process=True)
        self.apart = {service: MotoServer(own_process=True) for service in SERVICES_APART}
        self.resources: LocalResources | None = None
        self.environment: dict[str, str] = {}
        self._saved_environ: dict[str, str] = {}
        self.secrets: Any = None
        self.dynamodb: Any = None
        self.sns: Any = None

    def start(self) -> Self:
        """Start moto, provision the template's key, topic, queue and table, and make the clients."""
        try:
            for server in self.servers:
                server.start()
        except BaseException:
            for server in self.servers:
                server.stop()
            raise
        self._saved_environ = dict(os.environ)
        # Anything that builds its own boto3 client (the token API's composition root) finds moto too.
        os.environ.update(self.endpoints())
        self.resources = provision(self.moto.session(), parameters={"SecretPrefix": self.prefix})
        self.environment = {
            **self.resources.environment("RefresherFunction"),
            **self.endpoints(),
            "BROKER_HTTP_TIMEOUT_SECONDS": LOCAL_HTTP_TIMEOUT,
        }
        self.secrets = self.client("secretsmanager")
        self.dynamodb = self.client("dynamodb")
        self.sns = self.client("sns")
        return self

    def stop(self) -> None:
        """Stop moto and give the process its environment back."""
        for server in self.servers:
            server.stop()
        os.environ.clear()
        os.environ.update(self._saved_environ)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def servers(self) -> tuple[MotoServer, ...]:
        """The main server and those of the services apart."""
        return (self.moto, *self.apart.values())

    @property
    def table_name(self) -> str:
        """The state table's physical name."""
        if self.resources is None:
            raise RuntimeError("EmbeddedAws is not started")
        return self.resources.table_name

    def settings(self, **overrides: Any) -> Settings:
        """The refresher's Settings from its template environment (with overrides)."""
        return replace(Settings.from_env(self.environment), **overrides)

    def client(self, service: str) -> Any:
        """A new boto3 client for one service of these moto servers (its own hooks, its own connections)."""
        return self.apart.get(service, self.moto).client(service)

    def endpoints(self) -> dict[str, str]:
        """The standard boto3 configuration that reaches these servers: the main one, and each apart.

        Example:
            >>> sorted(EmbeddedAws().start().endpoints())[:2]                 # doctest: +SKIP
            ['AWS_ACCESS_KEY_ID', 'AWS_DEFAULT_REGION']
        """
        apart = {f"AWS_ENDPOINT_URL_{name}": self.apart[service].endpoint for service, name in SERVICES_APART.items()}
        return {**self.moto.environment(), **apart}

    def environment_of(self, function_logical_id: str) -> dict[str, str]:
        """Another function's environment, resolved locally (e.g. "TokenApiFunction")."""
        if self.resources is None:
            raise RuntimeError("EmbeddedAws is not started")
        return {**self.resources.environment(function_logical_id), **self.endpoints()}

    def add_account(self, account: str, credentials: dict[str, Any]) -> None:
        """Create the account's credentials secret, as a user does (tagged with its broker, as deploy.md says)."""
        self.secrets.create_secret(
            Name=f"{self.prefix}/{account}/credentials",
            SecretString=json.dumps(credentials),
            Tags=[{"Key": "broker", "Value": str(credentials["broker"])}],
        )


class CallCounter:
    """Counts the AWS operations boto3 clients make, and the time spent in them (botocore event hooks).

    Counts are right from any number of threads; the time (from a call's ``before-call`` event, request
    built, to its ``after-call``, answer parsed) is meant for one reading thread at a time.

    Example:
        >>> counter = CallCounter(); counter.watch(client)        # doctest: +SKIP
        >>> counter.calls["secretsmanager.GetSecretValue"]         # doctest: +SKIP
        1
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seconds = 0.0
        self._started = 0.0
        self._lock = threading.Lock()

    def watch(self, client: Any) -> None:
        """Count every call ``client`` makes from now on."""
        service = client.meta.service_model.service_name
        client.meta.events.register("before-call", lambda model, **_: self._before(f"{service}.{model.name}"))
        client.meta.events.register("after-call", lambda **_: self._after())

    def _before(self, operation: str) -> None:
        with self._lock:  # counts stay right with many threads; the time is for one reading thread
            self.calls[operation] += 1
        self._started = time.perf_counter()

    def snapshot(self) -> Counter[str]:
        """The counts so far (subtract two snapshots for a phase's calls)."""
        with self._lock:
            return Counter(self.calls)

    def _after(self) -> None:
        self.seconds += time.perf_counter() - self._started

    def service(self, name: str) -> int:
        """Calls to one service (e.g. "secretsmanager")."""
        return sum(count for key, count in self.calls.items() if key.startswith(name + "."))
