"""`python -m infra.local run [--keep] [--logout]`: what `make run` does.

Starts the embedded stack, seeds a demo account per broker, runs the refresher handler as the 07:30 IST
schedule would and prints the accounts. Then it plays the person two logins wait for, through the one-tap
links of their alerts: it opens BlinkX's link and logs in on the broker's page (which redirects back to the
person pages' /callback), and opens AutoShares' link and types the e-mailed code into its form; then it
prints the accounts again, with how an app reads a token. Then it stops (or, with --keep, stays up until
Ctrl-C for a developer to play with). With --logout (`make run LOGOUT=1`) it also runs the
end-of-day logout as the 23:59 IST schedule would, shows that each old token is refused at its
simulator, and runs the refresher again, as the next morning's schedule would.

Exit status: 0 unless an account failed or needs attention.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import os
import re
import signal
import sys
import threading
from typing import Any
from zoneinfo import ZoneInfo

from broker_tokens.cli import main as cli
from broker_tokens.cli.local import demo_login_lines
from broker_tokens.cli.localstate import DEMO_MODULE, running_state, state_path
from broker_tokens.credentials import parse_credentials
from broker_tokens.errors import BrokerError
from broker_tokens.logout import LogoutFailedError
from broker_tokens.logs import logger
from broker_tokens.models import AccountState, Outcome, Session, TokenRecord
from broker_tokens.refresh import NotFreshError, Refresher, Report
from broker_tokens.runtime import build_refresher
from broker_tokens.table import outcome_table
from infra.local.demo import DemoAccount, demo_run_event
from infra.local.front import DEFAULT_PORT as DEFAULT_FRONT_PORT
from infra.local.front import PERSON_PORT, demo_access
from infra.local.lambda_context import LocalLambdaContext
from infra.local.person import code_through_link, emailed_code, login_through_link
from infra.local.session import StackRecord, demo_logins, open_demo
from infra.local.simulators.autoshares import AutoSharesSimulator
from infra.local.simulators.kite import KiteSimulator
from infra.local.stack import LocalStack
from refresher.app import lambda_handler


def run(keep: bool, port: int = DEFAULT_FRONT_PORT, *, logout: bool = False) -> int:
    """Start, seed, refresh, show; returns the process exit code."""
    colour = sys.stdout.isatty()
    with LocalStack(front_port=port, person_port=PERSON_PORT) as stack:
        print("broker-tokens embedded stack (all on 127.0.0.1, no AWS account used)")
        print(f"  {'moto (Secrets Manager, DynamoDB, SNS, KMS, SQS)':<50}{stack.moto.endpoint}")
        for name, sim in stack.simulators.items():
            print(f"  {name + ' simulator':<50}{sim.url}")
        print(f"  {'token API (a local Function URL)':<50}{stack.front.url}")
        print(f"  {'person pages (a second, public Function URL)':<50}{stack.person_url}")
        demos = open_demo(stack)
        print(f"Seeded {len(demos)} demo account(s): " + ", ".join(f"{d.account} ({d.broker})" for d in demos))
        print("Running the refresher as the 07:30 IST schedule would...\n")

        answer: dict[str, Any]
        try:
            answer = lambda_handler(demo_run_event(), LocalLambdaContext("broker-tokens-refresher"))
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
        if logout:
            end_of_day(zone, colour)
        example = next((d.account for d in demos), "ACCOUNT")
        print(f"""
Read a token from an app (it reads the secret {stack.prefix}/{example}/token, with a short cache):
    from broker_tokens.client import get_token
    token = get_token("{example}")
    headers = {{"Authorization": token["authorization"], **token["headers"]}}""")
        table = stack.resources.table_name if stack.resources else stack.environment["STATE_TABLE_NAME"]
        access = demo_access(table, stack.front.url, example)
        when = "" if keep else ", while the stack runs (make run KEEP=1)"
        print(f"""
Or through the token API, with the demo API key (every account; read and refresh){when}:
    {access.curl}""")
        if keep:
            keep_serving(stack, demos)
        print("\nStack stopped.")
        broken = [o for o in final.outcomes if o.state in (AccountState.FAILED, AccountState.NEEDS_ATTENTION)]
        return 1 if broken else 0


def end_of_day(zone: ZoneInfo, colour: bool) -> None:
    """The logout schedule's run, each old token tried at its broker, then the next morning's run."""
    refresher = build_refresher()
    before = {name: refresher.secrets.read_token(name) for name in refresher.secrets.list_accounts()}
    print("\nRunning the end-of-day logout as the 23:59 IST schedule would...\n")
    context = LocalLambdaContext("broker-tokens-refresher")
    try:
        answer = lambda_handler({"action": "logout"}, context)
    except LogoutFailedError as exc:  # the Lambda raises so its retry and alert fire; the demo shows it
        answer = exc.report.to_dict()
    lines = [Outcome.from_dict(line) for line in answer["accounts"]]
    print(outcome_table(lines, zone, colour=colour, logins=False, actions=True))
    for line in lines:
        token = before.get(line.account)
        if line.action == "logged-out" and token is not None:
            print(f"  {line.account}: the old token at {line.broker}: {old_token_check(refresher, token)}")
    print("\nThe next morning's schedule finds no fresh token and logs in again:\n")
    try:
        again = lambda_handler(demo_run_event(), context)
    except NotFreshError as exc:
        again = exc.report.to_dict()
    print(outcome_table([Outcome.from_dict(line) for line in again["accounts"]], zone, colour=colour))


def old_token_check(refresher: Refresher, token: TokenRecord) -> str:
    """What the broker's profile call says to a logged-out token (refused, as it must be)."""
    text, version = refresher.secrets.read_credentials(token.account)
    broker = refresher.adapter_factory(parse_credentials(token.account, text, version=version))
    session = Session(token.access_token, token.authorization, token.expires_at, dict(token.headers))
    try:
        broker.validate(session)
    except BrokerError as exc:
        return f"refused ({exc.code or exc.status or exc.kind.value}), as it must be"
    finally:
        broker.close()
    return "STILL ACCEPTED: the session was not ended"


# How often a kept stack checks that its state file is still its own.
POLL_SECONDS = 0.5


def keep_serving(stack: LocalStack, demos: list[DemoAccount]) -> None:
    """Stay up until Ctrl-C or `broker-tokens local down`, reachable from any shell through the state file.

    The state file is the one `broker-tokens local up` writes (unless such a stack is up already), so
    `--local`, `local env`, `local outbox` and `local totp` work with this stack too.
    """
    path = state_path()
    if running_state(path) is not None:
        print(f"\nAnother local stack owns {path}: --local keeps using that one.")
        record = None
    else:
        record = StackRecord(path, stack, demos, server=DEMO_MODULE, lifetime_seconds=None, pid=os.getpid())
        record.write()
    print("\nThe stack stays up (Ctrl-C or `broker-tokens local down` stops it). In another shell:")
    print("    export BROKER_TOKENS_LOCAL=1           # broker-tokens commands use this stack")
    print('    eval "$(broker-tokens local env)"      # boto3 and get_token() too')
    accounts = [{"account": d.account, "broker": d.broker} for d in demos]
    for line in demo_login_lines({"demo_logins": demo_logins(stack, demos), "demo_accounts": accounts}):
        print(line)
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(POLL_SECONDS):
                if record is not None and not record.owned():
                    break  # `broker-tokens local down` removed the state file
    finally:
        if record is not None:
            record.close()


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
            title = sim.flavour.title
            print(f"  A person opens it, taps 'Log in at {title}', logs in as {demo.credentials['user_id']},")
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
    run_parser.add_argument("--logout", action="store_true", help="then the end-of-day logout and a new login")
    run_parser.add_argument(
        "--port", type=int, default=DEFAULT_FRONT_PORT, help=f"the token API's port (default {DEFAULT_FRONT_PORT})"
    )
    args = parser.parse_args(argv)
    # The demo's table is the output; the refresher's JSON log lines are for Lambda (--verbose shows them).
    logger.setLevel("INFO" if args.verbose else "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    return run(args.keep, args.port, logout=args.logout)


if __name__ == "__main__":
    sys.exit(main())
