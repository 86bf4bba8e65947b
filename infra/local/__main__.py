"""`python -m infra.local run [--keep]`: what `make run` does.

Starts the embedded stack, seeds a demo account per broker, runs the refresher handler as the 07:30 IST
schedule would, prints the accounts and how an app reads a token, then stops (or, with --keep, stays
up until Ctrl-C for a developer to play with).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from typing import Any
from zoneinfo import ZoneInfo

from broker_tokens.logs import logger
from broker_tokens.models import Outcome
from broker_tokens.refresh import NotFreshError, Report
from broker_tokens.table import outcome_table
from infra.local.demo import seed_demo_accounts
from infra.local.front import DEFAULT_PORT as DEFAULT_FRONT_PORT
from infra.local.front import demo_access
from infra.local.lambda_context import LocalLambdaContext
from infra.local.stack import LocalStack
from refresher.app import lambda_handler


def run(keep: bool) -> int:
    """Start, seed, refresh, show; returns the process exit code."""
    with LocalStack(front_port=DEFAULT_FRONT_PORT) as stack:
        print("broker-tokens embedded stack (all on 127.0.0.1, no AWS account used)")
        print(f"  {'moto (Secrets Manager, DynamoDB, SNS, KMS, SQS)':<50}{stack.moto.endpoint}")
        for name, sim in stack.simulators.items():
            print(f"  {name + ' simulator':<50}{sim.url}")
        print(f"  {'token API (a local Function URL)':<50}{stack.front.url}")
        demos = seed_demo_accounts(stack.simulators, stack.moto.client("secretsmanager"), stack.prefix)
        print(f"Seeded {len(demos)} demo account(s): " + ", ".join(f"{d.account} ({d.broker})" for d in demos))
        print("Running the refresher as the 07:30 IST schedule would...\n")

        answer: dict[str, Any]
        try:
            answer = lambda_handler({}, LocalLambdaContext("broker-tokens-refresher"))
            report_ok = True
        except NotFreshError as exc:
            answer, report_ok = exc.report.to_dict(), False
        report = Report([Outcome.from_dict(line) for line in answer["accounts"]])
        zone = ZoneInfo(stack.environment.get("MARKET_TIMEZONE", "Asia/Kolkata"))
        print(outcome_table(report.outcomes, zone, colour=sys.stdout.isatty()))
        example = next((d.account for d in demos), "ACCOUNT")
        print(f"""
Read a token from an app (secret {stack.prefix}/{example}/token):
    import boto3, json
    secrets = boto3.client("secretsmanager")
    token = json.loads(secrets.get_secret_value(SecretId="{stack.prefix}/{example}/token")["SecretString"])
then send token["authorization"] as the Authorization header, plus token["headers"].""")
        table = stack.resources.table_name if stack.resources else stack.environment["STATE_TABLE_NAME"]
        access = demo_access(table, stack.front.url, example)
        when = "" if keep else ", while the stack runs (make run KEEP=1)"
        print(f"""
Or through the token API, with the demo API key (every account; read and refresh){when}:
    {access.curl}""")
        if keep:
            print("\nThe stack stays up; use these settings in another shell (Ctrl-C stops it):")
            for key in (
                "AWS_ENDPOINT_URL",
                "AWS_DEFAULT_REGION",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "SECRET_PREFIX",
                "STATE_TABLE_NAME",
            ):
                print(f"    export {key}={stack.environment[key]}")
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
        print("\nStack stopped.")
        return 0 if report_ok else 1


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(prog="python -m infra.local", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="start, seed, refresh once, show, stop")
    run_parser.add_argument("--keep", action="store_true", help="keep the stack up until Ctrl-C")
    run_parser.add_argument("--verbose", action="store_true", help="show the refresher's JSON log lines")
    args = parser.parse_args(argv)
    # The demo's table is the output; the refresher's JSON log lines are for Lambda (--verbose shows them).
    logger.setLevel("INFO" if args.verbose else "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    return run(args.keep)


if __name__ == "__main__":
    sys.exit(main())
