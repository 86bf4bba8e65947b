"""`python -m infra.local run [--keep]`: what `make run` does.

Starts the embedded stack, seeds a demo account per broker, runs the refresher handler as the 07:30 IST
schedule would and prints the accounts. Then it plays the person two logins wait for, through the one-tap
links of their alerts: it opens BlinkX's link and logs in on the broker's page (which redirects back to the
person pages' /callback), and opens AutoShares' link and types the e-mailed code into its form; then it
prints the accounts again, with how an app reads a token. Then it stops (or, with --keep, stays up until
Ctrl-C for a developer to play with).

Exit status: 0 unless an account failed or needs attention.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import os
import re
import sys
import threading
from typing import Any
from zoneinfo import ZoneInfo

from broker_tokens.logs import logger
from broker_tokens.models import AccountState, Outcome
from broker_tokens.refresh import NotFreshError, Report
from broker_tokens.runtime import build_refresher
from broker_tokens.table import outcome_table
from infra.local.demo import DemoAccount, point_callbacks_at, seed_demo_accounts
from infra.local.front import DEFAULT_PORT as DEFAULT_FRONT_PORT
from infra.local.front import PERSON_PORT, demo_access
from infra.local.lambda_context import LocalLambdaContext
from infra.local.person import code_through_link, emailed_code, login_through_link
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.kite import KiteSimulator
from infra.local.stack import LocalStack
from refresher.app import lambda_handler


def run(keep: bool) -> int:
    """Start, seed, refresh, show; returns the process exit code."""
    colour = sys.stdout.isatty()
    with LocalStack(front_port=DEFAULT_FRONT_PORT, person_port=PERSON_PORT) as stack:
        print("broker-tokens embedded stack (all on 127.0.0.1, no AWS account used)")
        print(f"  {'moto (Secrets Manager, DynamoDB, SNS, KMS, SQS)':<50}{stack.moto.endpoint}")
        for name, sim in stack.simulators.items():
            print(f"  {name + ' simulator':<50}{sim.url}")
        print(f"  {'token API (a local Function URL)':<50}{stack.front.url}")
        print(f"  {'person pages (a second, public Function URL)':<50}{stack.person_url}")
        demos = seed_demo_accounts(stack.simulators, stack.moto.client("secretsmanager"), stack.prefix)
        point_callbacks_at(stack.person_url, stack.simulators, demos)
        print(f"Seeded {len(demos)} demo account(s): " + ", ".join(f"{d.account} ({d.broker})" for d in demos))
        print("Running the refresher as the 07:30 IST schedule would...\n")

        answer: dict[str, Any]
        try:
            answer = lambda_handler({}, LocalLambdaContext("broker-tokens-refresher"))
        except NotFreshError as exc:  # the Lambda raises so its alarm fires; the demo shows the report
            answer = exc.report.to_dict()
        zone = ZoneInfo(stack.environment.get("MARKET_TIMEZONE", "Asia/Kolkata"))
        print(outcome_table([Outcome.from_dict(line) for line in answer["accounts"]], zone, colour=colour))
        finish_person_logins(stack, demos)
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
    """Play the person, through each alert's one-tap link: a browser login for each awaiting Kite-family
    account, the e-mailed code for ETNA."""
    refresher = build_refresher()
    for demo in demos:
        state = refresher.describe(demo.account).state
        sim = stack.simulators.get(demo.broker)
        if not state.awaits_person:
            continue
        link = stack.person_link(demo.account)
        if link is None:
            print(f"\n{demo.account}: {state.value}, but its alert carries no link")
            continue
        print(f"\n{demo.account} is {state.value}; the alert's one-tap link:\n  {link}")
        if state is AccountState.AWAITING_LOGIN and isinstance(sim, KiteSimulator):
            print(f"  A person opens it, taps 'Log in at {demo.broker}', logs in as {demo.credentials['user_id']},")
            print("  and the broker redirects back to the person pages' /callback/" + demo.account)
            page = login_through_link(sim, link, demo.credentials)
        elif state is AccountState.AWAITING_VERIFICATION and isinstance(sim, AutoSharesSimulator):
            print("  A person opens it and types the code the broker e-mailed.")
            page = code_through_link(link, emailed_code(sim, demo.credentials["username"]))
        else:
            continue
        print(f"  The page says: {page_heading(page.text)}")


def page_heading(page: str) -> str:
    """The text of a page's first heading (what a person reads first).

    Example:
        >>> page_heading("<main><h1>Done: a &amp; b</h1></main>")
        'Done: a & b'
    """
    found = re.search(r"<h1>(.*?)</h1>", page, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))) if found else "(no heading)"


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
