"""What every command shares: options, the environment (AWS or the local stack), clients and the core.

Nothing touches boto3 before :class:`Context` has settled where AWS is: with ``--local`` the state
file of `broker-tokens local up` is read first and its environment applied, so the same core code
reaches moto instead of AWS.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from broker_tokens.alerts import Alerts
from broker_tokens.cli.localstate import local_environment
from broker_tokens.cli.output import HelpFormatter, Output
from broker_tokens.cli.prompts import Prompter
from broker_tokens.clock import SYSTEM_CLOCK, Clock
from broker_tokens.config import DEFAULT_PREFIX, Settings
from broker_tokens.credentials import Credentials, parse_credentials
from broker_tokens.errors import AccountNotFoundError, CredentialsError
from broker_tokens.models import is_account_id
from broker_tokens.refresh import Refresher
from broker_tokens.secrets import CREDENTIALS, SecretStore, error_code
from broker_tokens.state import DynamoStateStore, MemoryStateStore, StateStore

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

# Exit codes scripts can rely on.
EXIT_OK = 0
EXIT_NOT_FRESH = 1
EXIT_USAGE = 2

LOCAL_SWITCH = "BROKER_TOKENS_LOCAL"
STACK_SETTING = "BROKER_TOKENS_STACK"
# A CLI waits for a person: an unreachable endpoint must fail in seconds, not after botocore's minute.
AWS_CONNECT_TIMEOUT_SECONDS = 5
AWS_READ_TIMEOUT_SECONDS = 30


R = TypeVar("R", bound=Refresher)
# Every command takes the global options; its --help names them in one line instead of repeating them.
GLOBAL_OPTIONS_LINE = (
    "global options, before or after the command: --local, --stack, --region, --prefix, --table, "
    "--no-color, -v (see `broker-tokens --help`)"
)


class CliError(Exception):
    """A problem the person at the terminal can fix; printed as one line, exit code 2.

    Example:
        >>> str(CliError("unknown account 'x'"))
        "unknown account 'x'"
    """

    def __init__(self, message: str, *, code: int = EXIT_USAGE):
        self.code = code
        super().__init__(message)


def truthy(value: str | None) -> bool:
    """How an on/off environment variable reads.

    Example:
        >>> truthy("1"), truthy("yes"), truthy("0"), truthy(None)
        (True, True, False, False)
    """
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def account_id(value: str) -> str:
    """argparse type for an account id (the contract's pattern), so a typo fails before any AWS call.

    Example:
        >>> account_id("angel-main")
        'angel-main'
    """
    if not is_account_id(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an account id (lower-case letters, digits and '-', at most 63, e.g. angel-main)"
        )
    return value


def command(
    commands: Any, common: argparse.ArgumentParser, name: str, handler: Callable[[Context], int], **options: Any
) -> argparse.ArgumentParser:
    """A command (or an action of a group) with the global options, the CLI's help layout and its handler.

    ``options`` are add_parser's (help, description, epilog); the caller adds the command's arguments.

    Example:
        >>> parser = command(commands, common, "status", status, help="every account's state")  # doctest: +SKIP
        >>> parser.add_argument("--json", action="store_true")                                 # doctest: +SKIP
    """
    options["epilog"] = (options.get("epilog", "") + "\n\n" + GLOBAL_OPTIONS_LINE).strip()
    parser: argparse.ArgumentParser = commands.add_parser(
        name, parents=[common], formatter_class=HelpFormatter, **options
    )
    parser.set_defaults(handler=handler)
    return parser


def command_group(
    commands: Any,
    common: argparse.ArgumentParser,
    name: str,
    *,
    defaults: dict[str, Any] | None = None,
    **options: Any,
) -> Any:
    """A group of commands (`accounts add`, `accounts list`...); returns what its actions are added to.

    Named without an action, the group prints its help to stderr and exits 2. ``defaults`` go to the
    namespace of the group and of each of its actions.

    Example:
        >>> actions = command_group(commands, common, "callers", help="API callers")  # doctest: +SKIP
        >>> command(actions, common, "list", list_callers, help="every caller")      # doctest: +SKIP
    """
    group = command(commands, common, name, lambda _: group_help(group), **options)
    group.set_defaults(**(defaults or {}))
    return group.add_subparsers(dest=f"{name}_command")


def group_help(parser: argparse.ArgumentParser) -> int:
    """A group named without its command: its help on stderr, as a usage error.

    Example:
        >>> group_help(argparse.ArgumentParser(prog="broker-tokens accounts"))  # doctest: +SKIP
        2
    """
    parser.print_help(sys.stderr)
    return EXIT_USAGE


class Context:
    """Options, output, prompts and lazily built AWS clients and core objects for one command.

    Example:
        >>> ctx = Context(argparse.Namespace(prefix=None, region=None, table=None, stack=None,
        ...                                  local=False, no_color=True))      # doctest: +SKIP
        >>> ctx.prefix                                                          # doctest: +SKIP
        'broker-tokens'
    """

    def __init__(
        self,
        args: argparse.Namespace,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        environ: dict[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ):
        self.args = args
        self.environ = os.environ if environ is None else environ
        self.clock = clock
        self.out = Output(
            stdout or sys.stdout,
            stderr or sys.stderr,
            no_color=bool(getattr(args, "no_color", False)) or bool(self.environ.get("NO_COLOR")),
        )
        self.prompter = Prompter(stdin or sys.stdin, self.out.err)
        self._clients: dict[str, Any] = {}
        self.local = bool(getattr(args, "local", False)) or truthy(self.environ.get(LOCAL_SWITCH))
        # `local up|down|status` manage the stack; they must work whether or not it is up.
        if self.local and not getattr(args, "manages_stack", False):
            # Before any boto3 object exists: the standard variables then lead every client to moto.
            self.environ.update(local_environment(self.environ))

    # -- configuration ------------------------------------------------------------------------------

    @cached_property
    def stack_outputs(self) -> dict[str, str]:
        """The CloudFormation outputs of ``--stack`` (empty without it)."""
        name = getattr(self.args, "stack", None) or self.environ.get(STACK_SETTING)
        if not name:
            return {}
        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
        except ClientError as exc:
            if error_code(exc) == "ValidationError":
                raise CliError(f"no CloudFormation stack named '{name}' in this account and region") from None
            raise
        found = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        found.update({p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters", [])})
        return found

    @property
    def prefix(self) -> str:
        """--prefix, else SECRET_PREFIX, else the stack's SecretPrefix parameter, else the default."""
        return (
            getattr(self.args, "prefix", None)
            or self.environ.get("SECRET_PREFIX")
            or self.stack_outputs.get("SecretPrefix")
            or DEFAULT_PREFIX
        ).rstrip("/")

    @property
    def table(self) -> str | None:
        """The state table: --table, else STATE_TABLE_NAME, else the stack's StateTableName output."""
        return (
            getattr(self.args, "table", None)
            or self.environ.get("STATE_TABLE_NAME")
            or self.stack_outputs.get("StateTableName")
            or None
        )

    @property
    def refresher_function(self) -> str | None:
        """The stack's refresher function: REFRESHER_FUNCTION_NAME, else the stack's RefresherFunctionName output."""
        return self.environ.get("REFRESHER_FUNCTION_NAME") or self.stack_outputs.get("RefresherFunctionName") or None

    @cached_property
    def settings(self) -> Settings:
        """The core's settings from the environment, with this command's prefix and table."""
        try:
            base = Settings.from_env(self.environ)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        return replace(
            base,
            secret_prefix=self.prefix,
            state_table=self.table,
            alert_topic_arn=base.alert_topic_arn or self.stack_outputs.get("AlertTopicArn") or None,
            kms_key_arn=base.kms_key_arn or self.stack_outputs.get("SecretsKeyArn") or None,
            person_url=base.person_url or self.stack_outputs.get("PersonUrl") or None,
        )

    # -- AWS ----------------------------------------------------------------------------------------

    @cached_property
    def session(self) -> boto3.Session:
        """The boto3 session: standard configuration, with --region on top."""
        return boto3.Session(region_name=getattr(self.args, "region", None) or None)

    def client(self, service: str) -> Any:
        """A client with short timeouts (cached per service)."""
        if service not in self._clients:
            config = Config(connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS, read_timeout=AWS_READ_TIMEOUT_SECONDS)
            self._clients[service] = self.session.client(service, config=config)  # type: ignore[call-overload]
        return self._clients[service]

    @property
    def region(self) -> str | None:
        """The region the clients use."""
        return self.session.region_name

    # -- the core -----------------------------------------------------------------------------------

    @cached_property
    def secrets(self) -> SecretStore:
        """The account secrets under the prefix."""
        client: SecretsManagerClient = self.client("secretsmanager")
        return SecretStore(client, prefix=self.prefix, kms_key_arn=self.settings.kms_key_arn)

    @cached_property
    def state(self) -> StateStore:
        """DynamoDB when a table is known; otherwise this process's memory, with a warning."""
        if self.table:
            return DynamoStateStore(self.table, clock=self.clock, client=self.client("dynamodb"))
        self.out.warn(
            "no state table (set STATE_TABLE_NAME, --table or --stack): account state and the "
            "single-flight lease live in this process only"
        )
        return MemoryStateStore(self.clock)

    @cached_property
    def refresher(self) -> Refresher:
        """The core Refresher, wired as the Lambda function wires it."""
        return self.build_refresher(Refresher)

    def build_refresher(self, factory: Callable[..., R], **extra: Any) -> R:
        """A Refresher (or a subclass, given extra keyword arguments) on this command's stores."""
        topic = self.settings.alert_topic_arn
        return factory(
            secrets=self.secrets,
            state=self.state,
            settings=self.settings,
            clock=self.clock,
            alerts=Alerts(topic, client=self.client("sns") if topic else None),
            **extra,
        )

    # -- accounts -----------------------------------------------------------------------------------

    def credentials_name(self, account: str) -> str:
        """``{prefix}/{account}/credentials``."""
        return self.secrets.name(account, CREDENTIALS)

    def account_exists(self, account: str) -> bool:
        """True when the credentials secret exists and is not scheduled for deletion (metadata only)."""
        client = self.secrets.client
        try:
            answer = client.describe_secret(SecretId=self.credentials_name(account))
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return "DeletedDate" not in answer

    def require_account(self, account: str) -> None:
        """Raise a one-line CliError for an account that does not exist."""
        if not self.account_exists(account):
            raise CliError(self.unknown_account(account))

    def require_accounts(self, accounts: list[str]) -> list[str]:
        """The named accounts (all of them when none are named), each checked to exist."""
        known = self.secrets.list_accounts()
        if not accounts:
            return known
        missing = [name for name in accounts if name not in known]
        if missing:
            raise CliError(self.unknown_account(missing[0]) if len(missing) == 1 else self.unknown_accounts(missing))
        return sorted(set(accounts))

    def no_accounts(self) -> str:
        """The line for a prefix that holds no account yet, with the command that adds one."""
        return f"No accounts under {self.prefix}/ (add one: broker-tokens accounts add ACCOUNT --broker NAME)."

    def unknown_account(self, account: str) -> str:
        """The message for an account without a credentials secret."""
        return (
            f"unknown account '{account}': no secret {self.credentials_name(account)} "
            "(see `broker-tokens accounts list`)"
        )

    def unknown_accounts(self, accounts: list[str]) -> str:
        """The message for several unknown accounts."""
        return f"unknown accounts: {', '.join(accounts)} (no credentials secret under {self.prefix}/)"

    def credentials(self, account: str) -> Credentials:
        """The parsed credentials; a missing or malformed secret is a CliError naming the key."""
        try:
            text, version = self.secrets.read_credentials(account)
            return parse_credentials(account, text, version=version)
        except AccountNotFoundError:
            raise CliError(self.unknown_account(account)) from None
        except CredentialsError as exc:
            raise CliError(f"{exc} (fix it with `broker-tokens accounts update {account}`)") from None
