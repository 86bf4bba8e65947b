"""Token reads: a warm reader's latency and what it costs in Secrets Manager calls.

Two ways an app gets a token, both measured in this process on moto's server:
  - the token API's handler (``token_api.app.lambda_handler``) fed Function URL events for
    ``GET /accounts/{account}/token`` by a registered caller, in the template's auth mode: the time
    inside the handler, warm (the first read is left out of the percentiles);
  - ``broker_tokens.client.get_token``, the direct Secrets Manager read with its process cache.
Every AWS call the reader makes is counted with a botocore ``before-call`` hook on its clients.

Targets: p50 <= 1 ms in the handler; one Secrets Manager read (GetSecretValue) per token version (the
cache revalidates with one DescribeSecret, metadata only, every 30 s).

Example:
    >>> result = measure(reads=50)                    # doctest: +SKIP
    >>> result.api.get_secret_value                   # doctest: +SKIP
    1
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench import Figure, percentile
from bench.aws import CallCounter, EmbeddedAws
from bench.fanout import fresh_account
from broker_tokens.clock import SYSTEM_CLOCK, Clock

NAME = "token reads"
TARGET_P50_MS = 1.0
READER_ARN = "arn:aws:iam::123456789012:role/bench-reader"
READER_ACCESS_KEY = "AKIDBENCHREADER"


@dataclass(frozen=True)
class ReadPath:
    """One way of reading a token, measured: latencies (ms, warm) and the AWS calls of all reads."""

    label: str
    latencies_ms: list[float]
    own_ms: list[float]
    calls: Counter[str]
    seconds: float

    @property
    def p50(self) -> float:
        """Median, ms."""
        return percentile(self.latencies_ms, 0.50)

    @property
    def p99(self) -> float:
        """99th percentile, ms."""
        return percentile(self.latencies_ms, 0.99)

    @property
    def get_secret_value(self) -> int:
        """Secret value reads."""
        return self.calls["secretsmanager.GetSecretValue"]

    @property
    def describe_secret(self) -> int:
        """Metadata checks (is AWSCURRENT still the cached version?)."""
        return self.calls["secretsmanager.DescribeSecret"]

    def per_read(self, prefix: str) -> float:
        """Calls of one service per read."""
        total = sum(count for key, count in self.calls.items() if key.startswith(prefix + "."))
        return total / (len(self.latencies_ms) + 1)


@dataclass(frozen=True)
class ReadsResult:
    """Both read paths, and the auth mode the API ran in."""

    reads: int
    auth_mode: str
    api: ReadPath
    client: ReadPath

    def figures(self) -> list[Figure]:
        """The table rows."""
        rows: list[Figure] = []
        for path, target in ((self.api, True), (self.client, False)):
            label = path.label
            rows += [
                Figure(
                    NAME,
                    f"{label}: p50 of {self.reads} warm reads",
                    path.p50,
                    "ms",
                    target=f"<= {TARGET_P50_MS:g} ms" if target else "",
                    ok=path.p50 <= TARGET_P50_MS if target else None,
                    note=_calls_note(path),
                ),
                Figure(NAME, f"{label}: p99", path.p99, "ms"),
                Figure(
                    NAME,
                    f"{label}: p50 outside AWS calls",
                    percentile(path.own_ms, 0.50),
                    "ms",
                    note=f"{path.per_read('dynamodb'):.2f} DynamoDB and {path.per_read('secretsmanager'):.4f} "
                    "Secrets Manager calls per read",
                ),
                Figure(
                    NAME,
                    f"{label}: GetSecretValue for 1 token version",
                    path.get_secret_value,
                    "",
                    target="1",
                    ok=path.get_secret_value == 1,
                    note=f"plus {path.describe_secret} DescribeSecret (metadata) in {path.seconds:.0f} s of reading",
                ),
            ]
        return rows


def _calls_note(path: ReadPath) -> str:
    counted = ", ".join(f"{name} {count}" for name, count in sorted(path.calls.items()))
    return f"AWS calls for all reads: {counted or 'none'}"


def _timed(read: Callable[[], Any], reads: int, counter: CallCounter) -> tuple[list[float], list[float], float]:
    """One cold read (left out), then ``reads`` timed warm reads.

    Returns each read's milliseconds, each read's milliseconds outside AWS calls, and the seconds in all.
    """
    read()
    started = time.perf_counter()
    latencies, own = [], []
    for _ in range(reads):
        in_aws = counter.seconds
        before = time.perf_counter()
        read()
        spent = time.perf_counter() - before
        latencies.append(spent * 1000)
        own.append((spent - (counter.seconds - in_aws)) * 1000)
    return latencies, own, time.perf_counter() - started


def measure(aws: EmbeddedAws | None = None, *, reads: int = 10_000) -> ReadsResult:
    """Log one account in for real, then read its token ``reads`` times through the API and the client."""
    if aws is None:
        with EmbeddedAws() as own:
            return measure(own, reads=reads)
    with fresh_account(aws) as (account, _):
        api_path, mode = _through_api(aws, account, reads)
        return ReadsResult(reads, mode, api_path, _through_client(aws, account, reads))


@contextmanager
def api_reader(
    aws: EmbeddedAws, account: str, *, clock: Clock = SYSTEM_CLOCK
) -> Iterator[tuple[Callable[[], dict[str, Any]], str, CallCounter]]:
    """The token API handler installed as Lambda runs it, and a function that reads ``account``'s token.

    The API runs in the template's auth mode, with a caller registered to read ``account``; its AWS
    clients are its own, so the counter sees only its calls. Yields (read, auth mode, counter).
    """
    # Imported here: the token API (and its local front) load only when a reader is wanted.
    from infra.local.front import function_url_event  # noqa: PLC0415
    from infra.local.lambda_context import LocalLambdaContext  # noqa: PLC0415

    from broker_tokens.api.resolver import TokenApi  # noqa: PLC0415
    from broker_tokens.api.runtime import build_service, install  # noqa: PLC0415
    from broker_tokens.callers import CallerStore  # noqa: PLC0415
    from token_api.app import lambda_handler  # noqa: PLC0415

    environment = aws.environment_of("TokenApiFunction")
    mode = environment.get("AUTH_MODE", "iam")
    # Reads never log in; no refresher function exists locally.
    environment.pop("REFRESHER_FUNCTION_NAME", None)
    secrets, dynamodb = aws.client("secretsmanager"), aws.client("dynamodb")
    callers = CallerStore(aws.table_name, client=dynamodb)
    headers = [("Accept", "application/json")]
    identity: dict[str, str] = {}
    if mode == "iam":
        callers.add("bench-reader", [account], ["read"], principal_arn=READER_ARN)
        identity = {"principal_arn": READER_ARN, "access_key": READER_ACCESS_KEY}
    else:
        headers.append(("Authorization", f"Bearer {callers.add('bench-reader', [account], ['read'])}"))
    service = build_service(environment, clock=clock, secrets_client=secrets, dynamodb_client=dynamodb)
    install(TokenApi(service))
    counter = CallCounter()
    counter.watch(secrets)
    counter.watch(dynamodb)
    event = function_url_event("GET", f"/accounts/{account}/token", headers, b"", **identity)
    context: Any = LocalLambdaContext("broker-tokens-token-api", timeout_seconds=120)

    def read() -> dict[str, Any]:
        answer = lambda_handler(event, context)
        if answer["statusCode"] != 200:
            raise RuntimeError(f"token read refused: {answer['statusCode']} {answer.get('body')}")
        return dict(json.loads(answer["body"]))

    try:
        yield read, mode, counter
    finally:
        install(None)


def _through_api(aws: EmbeddedAws, account: str, reads: int) -> tuple[ReadPath, str]:
    """The token API handler, warm."""
    with api_reader(aws, account) as (read, mode, counter):
        latencies, own, seconds = _timed(read, reads, counter)
    return ReadPath(f"token API handler ({mode})", latencies, own, counter.calls, seconds), mode


def _through_client(aws: EmbeddedAws, account: str, reads: int) -> ReadPath:
    """``client.get_token`` with its own Secrets Manager client (the process-wide cache is per client)."""
    from broker_tokens.client import get_token  # noqa: PLC0415

    secrets = aws.client("secretsmanager")
    counter = CallCounter()
    counter.watch(secrets)
    latencies, own, seconds = _timed(lambda: get_token(account, prefix=aws.prefix, client=secrets), reads, counter)
    return ReadPath("client.get_token", latencies, own, counter.calls, seconds)
