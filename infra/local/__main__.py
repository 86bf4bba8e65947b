"""`python -m infra.local run [--keep]`: what `make run` does.

Starts the embedded stack, seeds a demo account per broker, runs the refresher handler as the 07:30 IST
schedule would and prints the accounts. Then it plays the person two logins wait for: it logs in to
BlinkX in a "browser" (the broker redirects to the token API's /callback) and submits AutoShares' e-mailed
code with `broker-tokens verify`, and prints the accounts again, with how an app reads a token. Then it
stops (or, with --keep, stays up until Ctrl-C for a developer to play with).

Exit status: 0 unless an account failed or needs attention.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from typing import Any
from zoneinfo import ZoneInfo

from broker_tokens.cli import main as cli
from broker_tokens.logs import logger
from broker_tokens.models import AccountState, Outcome
from broker_tokens.refresh import NotFreshError, Report
from broker_tokens.runtime import build_refresher
from broker_tokens.table import outcome_table
from infra.local.demo import DemoAccount, point_callbacks_at, seed_demo_accounts
from infra.local.front import DEFAULT_PORT as DEFAULT_FRONT_PORT
from infra.local.front import demo_access
from infra.local.lambda_context import LocalLambdaContext
from infra.local.person import browser_login, emailed_code
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.kite import KiteSimulator
from infra.local.stack import LocalStack
from refresher.app import lambda_handler


def run(keep: bool) -> int:
    """Start, seed, refresh, show; returns the process exit code."""
    colour = sys.stdout.isatty()
    with LocalStack(front_port=DEFAULT_FRONT_PORT) as stack:
        print("broker-tokens embedded stack (all on 127.0.0.1, no AWS account used)")
        print(f"  {'moto (Secrets Manager, DynamoDB, SNS, KMS, SQS)':<50}{stack.moto.endpoint}")
        for name, sim in stack.simulators.items():
            print(f"  {name + ' simulator':<50}{sim.url}")
        print(f"  {'token API (a local Function URL)':<50}{stack.front.url}")
        demos = seed_demo_accounts(stack.simulators, stack.moto.client("secretsmanager"), stack.prefix)
        point_callbacks_at(stack.front.url, stack.simulators, demos)
        print(f"Seeded {len(demos)} demo account(s): " + ", ".join(f"{d.account} ({d.broker})" for d in demos))
        print("Running the refresher as the 07:30 IST schedule would...\n")

        answer: dict[str, Any]
        try:
            answer = lambda_handler({}, LocalLambdaContext("broker-tokens-refresher"))
        except NotFreshError as exc:  # the Lambda raises so its alarm fires; the demo shows the report
            answer = exc.report.to_dict()
        zone = ZoneInfo(stack.environment.get("MARKET_TIMEZONE", "Asia/Kolkata"))
        print(outcome_table([Outcome.from_dict(line) for line in answer["accounts"]], zone, colour=colour))
        show_telegram(stack)
        finish_person_logins(stack, demos)
        broker_outage(stack)
        safety_net_run(stack)
        print("\n$ broker-tokens history")
        sys.stdout.flush()
        cli(["history"])
        refresher = build_refresher()
        final = Report([refresher.describe(account) for account in sorted(d.account for d in demos)])
        print("\n$ broker-tokens status")
        print(outcome_table(final.outcomes, zone, colour=colour, logins=False))
        explain_expiring(final)
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
        broken = [o for o in final.outcomes if o.state in (AccountState.FAILED, AccountState.NEEDS_ATTENTION)]
        return 1 if broken else 0


def finish_person_logins(stack: LocalStack, demos: list[DemoAccount]) -> None:
    """Play the person: a browser login for each awaiting Kite-family account, the e-mailed code for ETNA."""
    refresher = build_refresher()
    for demo in demos:
        outcome = refresher.describe(demo.account)
        sim = stack.simulators.get(demo.broker)
        if outcome.state is AccountState.AWAITING_LOGIN and isinstance(sim, KiteSimulator) and outcome.login_url:
            print(f"\n{demo.account}: a person opens {outcome.login_url}")
            print(f"  and logs in as {demo.credentials['user_id']}; {demo.broker} redirects the browser to")
            location = browser_login(sim, outcome.login_url, demo.credentials, follow=True)
            print(f"  {location.split('?')[0]}?request_token=..., which finishes the login.")
        elif outcome.state is AccountState.AWAITING_VERIFICATION and isinstance(sim, AutoSharesSimulator):
            code = emailed_code(sim, demo.credentials["username"])
            print(f"\n{demo.account}: the broker e-mailed a code; a person types it in:")
            print(f"$ broker-tokens verify {demo.account} <code from the e-mail>")
            sys.stdout.flush()
            cli(["verify", demo.account, code])


def show_telegram(stack: LocalStack) -> None:
    """Relay the new alerts to the notifier and print what the Telegram simulator received."""
    for message in stack.relay_alerts():
        print(f"\n[Telegram, chat {message.chat_id}]")
        print("\n".join(f"  {line}" for line in message.readable.splitlines()))


def broker_outage(stack: LocalStack) -> None:
    """Angel One answers 503 for a while: a forced refresh fails (the good token stays) and says so."""
    angel = stack.simulators["angelone"]
    print("\nAngel One has an outage (every call answers 503); someone forces a refresh meanwhile:")
    print("$ broker-tokens refresh angel-demo --force")
    sys.stdout.flush()
    angel.faults.fail_next(50, status=503)
    budget = os.environ.get("RETRY_BUDGET_SECONDS")
    os.environ["RETRY_BUDGET_SECONDS"] = "2"  # a short demo; the Lambda retries for 150 s
    try:
        cli(["refresh", "angel-demo", "--force"])
    finally:
        angel.faults.clear()
        if budget is None:
            os.environ.pop("RETRY_BUDGET_SECONDS", None)
        else:
            os.environ["RETRY_BUDGET_SECONDS"] = budget
    show_telegram(stack)


def safety_net_run(stack: LocalStack) -> None:
    """The 08:00 run: the outage is over, angel-demo's token was never replaced; the summary goes out."""
    print("\nThe outage is over. The next scheduled run (a safety net) finds every token fresh...")
    try:
        lambda_handler({}, LocalLambdaContext("broker-tokens-refresher"))
    except NotFreshError as exc:
        print(f"  ({exc})")
    show_telegram(stack)


def explain_expiring(report: Report) -> None:
    """Say why a token that was just issued is not fresh (Kite tokens before the 06:00 IST reset)."""
    if any(o.state is AccountState.EXPIRING for o in report.outcomes):
        print("\nexpiring: a Kite-family token issued before 06:00 IST dies at that day's reset, so it cannot")
        print("last the trading day; the scheduled runs (07:30, 08:00, 08:30 IST) log in after the reset.")


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
