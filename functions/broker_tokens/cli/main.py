"""The `broker-tokens` command: parser, global options, and the one place errors become exit codes.

Exit codes: 0 ok; 1 an account (or a refresh) is not fresh, or a check failed; 2 bad input, usage,
or AWS unreachable. Every error is one line on stderr, never a traceback (``--verbose`` adds one).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from broker_tokens import __version__
from broker_tokens.cli import accounts, alerts, callers, doctor, history, local, logout, refresh, status, token
from broker_tokens.cli.context import EXIT_USAGE, LOCAL_SWITCH, STACK_SETTING, CliError, Context
from broker_tokens.cli.localstate import LocalStackError
from broker_tokens.cli.output import HelpFormatter, Output
from broker_tokens.logs import logger

PROG = "broker-tokens"
EXIT_INTERRUPTED = 130
COMMAND_GROUPS = (accounts, status, history, refresh, logout, token, callers, alerts, doctor, local)

DESCRIPTION = """\
Daily broker session tokens, kept in AWS Secrets Manager: add accounts, see their state, refresh them,
read tokens, manage API callers, and run it all locally on the embedded stack.

Works against AWS with the standard boto3 configuration (profile, region, credentials), or against the
embedded stack with --local (or BROKER_TOKENS_LOCAL=1) after `broker-tokens local up`."""

EPILOG = """\
exit codes: 0 ok, 1 an account is not fresh (or a check failed), 2 bad input / usage / AWS unreachable.
first steps:
  broker-tokens local up && broker-tokens --local refresh
  broker-tokens accounts add angel-main --broker angelone"""


class Parser(argparse.ArgumentParser):
    """argparse, except that a usage error is one line (no usage block) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``broker-tokens <command>: error: ...`` and exit 2."""
        print(f"{self.prog}: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def global_options(*, suppress: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after its name.

    On the subcommands their defaults are suppressed, so an option given before the command is not
    overwritten by the subcommand's default; their help too, so each command's --help shows its own
    options (and one line pointing at the global ones).
    """
    parent = Parser(add_help=False)
    default: Callable[[object], object] = (lambda _: argparse.SUPPRESS) if suppress else (lambda value: value)
    options = GlobalGroup(parent.add_argument_group("global options"), hidden=suppress)
    options.add_argument(
        "--prefix", default=default(None), help="secret name prefix (default: $SECRET_PREFIX or broker-tokens)"
    )
    options.add_argument("--region", default=default(None), help="AWS region (default: the boto3 configuration)")
    options.add_argument(
        "--table", default=default(None), help="state table (default: $STATE_TABLE_NAME or the --stack output)"
    )
    options.add_argument(
        "--stack",
        default=default(None),
        help=f"read the table, topic and key from this CloudFormation stack (or set {STACK_SETTING})",
    )
    options.add_argument(
        "--local",
        action="store_true",
        default=default(False),
        help=f"use the embedded stack of `broker-tokens local up` (or set {LOCAL_SWITCH}=1)",
    )
    options.add_argument("--no-color", action="store_true", default=default(False), help="no colour (or set NO_COLOR)")
    options.add_argument(
        "-v", "--verbose", action="store_true", default=default(False), help="log lines and tracebacks on stderr"
    )
    return parent


class GlobalGroup:
    """An argument group whose options can be hidden from help (on subcommands) while still accepted."""

    def __init__(self, group: Any, *, hidden: bool):
        self.group = group
        self.hidden = hidden

    def add_argument(self, *names: str, **options: Any) -> None:
        """argparse's add_argument, with help suppressed when hidden."""
        if self.hidden:
            options["help"] = argparse.SUPPRESS
        self.group.add_argument(*names, **options)


def build_parser() -> Parser:
    """The whole command tree.

    Example:
        >>> build_parser().parse_args(["--local", "status", "--json"]).json
        True
    """
    parser = Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
        parents=[global_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    common = global_options(suppress=True)
    for group in COMMAND_GROUPS:
        group.register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (the console script passes it to sys.exit)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = bool(args.verbose)
    out = Output(sys.stdout, sys.stderr, no_color=True)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        quiet_the_core(verbose)
        ctx = Context(args)
        out = ctx.out
        code: int = handler(ctx)
        return code
    except KeyboardInterrupt:
        out.error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0  # the reader (head, grep -q) has what it wanted
    except Exception as exc:  # the one place any error becomes a line and an exit code
        out.error(explain(exc))
        if verbose:
            traceback.print_exc(file=sys.stderr)
        return exc.code if isinstance(exc, CliError) else EXIT_USAGE


def explain(exc: BaseException) -> str:
    """One line that says what went wrong and, where known, what to do.

    Example:
        >>> explain(NoRegionError())
        'no AWS region: pass --region or set AWS_DEFAULT_REGION (or use --local)'
    """
    if isinstance(exc, CliError | LocalStackError):
        return str(exc)
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return f"AWS is unreachable ({exc}); check the network, region and AWS_ENDPOINT_URL"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return "no AWS credentials: configure them (aws configure, AWS_PROFILE) or use --local"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region or set AWS_DEFAULT_REGION (or use --local)"
    if isinstance(exc, ProfileNotFound):
        return f"{exc} (check AWS_PROFILE)"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "AWS call")
        return f"AWS refused {operation}: {error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
    if isinstance(exc, BotoCoreError):
        return f"AWS call failed: {exc}"
    return f"unexpected {type(exc).__name__}: {exc} (run with --verbose for details)"


def quiet_the_core(verbose: bool) -> None:
    """The core's JSON log lines are for Lambda; here they go to stderr, and only with --verbose."""
    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)
    logger.setLevel("INFO" if verbose else "CRITICAL")
    if not verbose:
        warnings.simplefilter("ignore")
