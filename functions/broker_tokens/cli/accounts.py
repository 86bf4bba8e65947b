"""`broker-tokens accounts add | update | remove | list`: the credentials secrets, without hand-written JSON.

Values are asked one by one (hidden for passwords, PINs and TOTP secrets), checked exactly as the
refresher checks them, and written to ``PREFIX/ACCOUNT/credentials`` with the tag ``broker=<name>``
that IAM conditions read. When stdin is not a terminal each answer is the next line of stdin.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError

from broker_tokens.brokers import broker_class, known_brokers
from broker_tokens.brokers.base import COMMON_FIELDS, Broker, Field
from broker_tokens.cli.context import EXIT_OK, CliError, Context, account_id, command, command_group
from broker_tokens.cli.output import article, render_table
from broker_tokens.cli.prompts import InputEndedError
from broker_tokens.credentials import Credentials, validate_credentials
from broker_tokens.errors import CredentialsError
from broker_tokens.models import is_account_id
from broker_tokens.secrets import CREDENTIALS, TOKEN, error_code
from broker_tokens.state import STATE
from broker_tokens.table import local_time
from broker_tokens.totp import BrokerTOTP
from broker_tokens.totp_window import seconds_left_in_window

# Fields the prompts never ask: the broker is given by --broker, and accounts start enabled.
NOT_ASKED = frozenset({"broker", "enabled"})
# A person gets a few tries to fix a value the contract refuses before the command gives up.
MAX_FIX_ROUNDS = 5
DEFAULT_RECOVERY_DAYS = 7
ACCOUNT_TAG = "broker-tokens:account"


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the `accounts` command group."""
    actions = command_group(
        commands,
        common,
        "accounts",
        help="add, update, remove or list accounts (credentials secrets)",
        description=__doc__,
    )
    brokers = ", ".join(known_brokers())

    add = command(
        actions,
        common,
        "add",
        add_account,
        help="create an account's credentials secret",
        description="Create PREFIX/ACCOUNT/credentials (PREFIX: broker-tokens unless --prefix). Each credential "
        "of the broker is asked in turn "
        "(hidden for secrets; required ones first, then optional ones: Enter skips). The current TOTP code "
        "is shown so you can compare it with your authenticator app. When stdin is not a terminal, each "
        "answer is read as the next line of stdin, in the same order.",
        epilog="examples:\n"
        "  broker-tokens accounts add angel-main --broker angelone\n"
        "  broker-tokens accounts add angel-main --from-file angel-main.json\n"
        "  printf '%s\\n' KEY A123456 1234 JBSWY3DPEHPK3PXP | broker-tokens accounts add angel-main --broker angelone\n"
        f"\nbrokers: {brokers}",
    )
    add.add_argument("account", metavar="ACCOUNT", type=account_id, help="account id, e.g. angel-main")
    add.add_argument("--broker", help=f"the broker ({brokers}); optional with --from-file naming it")
    add.add_argument("--from-file", metavar="FILE", help="read the credentials JSON object from FILE ('-' = stdin)")
    add.add_argument("-y", "--yes", action="store_true", help="do not ask whether the TOTP code matches")

    update = command(
        actions,
        common,
        "update",
        update_account,
        help="change an account's credentials (Enter keeps a value)",
        description="Write a new version of PREFIX/ACCOUNT/credentials. Asks for each value again (Enter "
        "keeps the current one), or takes --from-file (keys in the file replace the current ones) or "
        "--set/--unset. A new credentials version lifts a needs-attention block on the old one.",
        epilog="examples:\n"
        "  broker-tokens accounts update angel-main\n"
        "  broker-tokens accounts update angel-main --set enabled=false\n"
        "  broker-tokens accounts update angel-main --from-file new-pin.json",
    )
    update.add_argument("account", metavar="ACCOUNT", type=account_id, help="account id")
    update.add_argument(
        "--broker",
        help="the broker, when the secret names none (say it is not JSON) and has no broker tag; "
        "the values are then asked afresh",
    )
    update.add_argument("--from-file", metavar="FILE", help="merge the JSON object in FILE ('-' = stdin)")
    update.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="set a non-secret value (repeatable), e.g. enabled=false or base_url=https://...",
    )
    update.add_argument("--unset", metavar="KEY", action="append", default=[], help="remove an optional key")
    update.add_argument("-y", "--yes", action="store_true", help="do not ask whether the TOTP code matches")

    remove = command(
        actions,
        common,
        "remove",
        remove_account,
        help="delete an account's secrets (recoverable for a while)",
        description="Schedule PREFIX/ACCOUNT/credentials and PREFIX/ACCOUNT/token for deletion (Secrets "
        "Manager keeps them restorable for the recovery window) and forget the account's state.",
        epilog="example:\n  broker-tokens accounts remove angel-old --yes",
    )
    remove.add_argument("account", metavar="ACCOUNT", type=account_id, help="account id")
    remove.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    remove.add_argument(
        "--recovery-days",
        type=recovery_days,
        default=DEFAULT_RECOVERY_DAYS,
        help=f"days the secrets stay restorable, 7 to 30 (default {DEFAULT_RECOVERY_DAYS})",
    )

    listing = command(
        actions,
        common,
        "list",
        list_accounts,
        help="the accounts under the prefix (no secret value is read)",
        description="List the accounts under the prefix from secret metadata only: broker tag, when the "
        "credentials and the token last changed.",
    )
    listing.add_argument("--json", action="store_true", help="print JSON")


def recovery_days(value: str) -> int:
    """argparse type: Secrets Manager's recovery window, 7 to 30 days.

    Example:
        >>> recovery_days("10")
        10
    """
    if not value.isdigit() or not 7 <= int(value) <= 30:
        raise argparse.ArgumentTypeError("the recovery window is 7 to 30 days")
    return int(value)


# -- the fields and their values ----------------------------------------------------------------------


def asked_fields(cls: type[Broker]) -> list[Field]:
    """The fields the prompts ask, required ones first, in the broker's declared order.

    Example:
        >>> [f.name for f in asked_fields(broker_class("angelone"))][:4]
        ['api_key', 'client_code', 'pin', 'totp_secret']
    """
    specs = {spec.name: spec for spec in (*COMMON_FIELDS, *cls.fields) if spec.name not in NOT_ASKED}
    declared = [spec.name for spec in cls.fields]
    order = declared + [name for name in specs if name not in declared]
    fields = [specs[name] for name in order]
    return [f for f in fields if f.required] + [f for f in fields if not f.required]


def all_fields(cls: type[Broker]) -> dict[str, Field]:
    """Every key the broker's secret may hold, by name (the broker's declaration wins over the common one)."""
    return {spec.name: spec for spec in (*COMMON_FIELDS, *cls.fields)}


def coerce(spec: Field, text: str) -> Any:
    """A typed-in answer as the JSON value the contract expects (numbers and booleans are not strings).

    Example:
        >>> coerce(Field("token_ttl_seconds", False, kind="integer"), "600")
        600
        >>> coerce(Field("enabled", False), "false")
        False
    """
    if spec.is_secret:
        return text  # a password may start or end with a space
    value = text.strip()
    if spec.name == "enabled" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if spec.kind == "integer" and value.lstrip("-").isdigit():
        return int(value)
    return value


def prompt_for(spec: Field, *, current: Any = None, has_current: bool = False) -> str:
    """The prompt of one field (a secret's current value is never shown).

    Example:
        >>> prompt_for(Field("pin", True, kind="secret", description="4-digit MPIN"))
        'pin (4-digit MPIN, hidden)'
        >>> prompt_for(Field("client_code", True), current="A1", has_current=True)
        'client_code [A1]'
    """
    notes = [spec.description] if spec.description else []
    if spec.is_secret:
        notes.append("hidden")
    if has_current:
        notes.append("Enter keeps the current value" if spec.is_secret else "")
    elif not spec.required:
        notes.append("optional, Enter skips")
    text = spec.name + (f" ({', '.join(n for n in notes if n)})" if any(notes) else "")
    if has_current and not spec.is_secret:
        text += f" [{current}]"
    return text


def ask_values(ctx: Context, cls: type[Broker], current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ask every field; with ``current``, Enter keeps a value. Returns the secret's JSON object."""
    prompter = ctx.prompter
    data: dict[str, Any] = {"broker": cls.name}
    if current:
        data.update(current)
    if prompter.interactive:
        ctx.out.note(f"{cls.title} credentials for the secret (Ctrl-C cancels; nothing is written until the end):")
    for spec in asked_fields(cls):
        has_current = bool(current) and spec.name in (current or {})
        prompt = prompt_for(spec, current=(current or {}).get(spec.name), has_current=has_current)
        try:
            if spec.required and not has_current:
                answer: str | None = prompter.ask_required(prompt, hidden=spec.is_secret)
            else:
                answer = prompter.ask(prompt, hidden=spec.is_secret)
        except InputEndedError:
            raise CliError(f"no value for the required '{spec.name}' (stdin ended or the answer was empty)") from None
        if answer is None or not answer.strip():
            continue  # keep the current value, or skip an optional one
        data[spec.name] = coerce(spec, answer)
    return data


def validated(ctx: Context, account: str, cls: type[Broker], data: dict[str, Any]) -> Credentials:
    """Check ``data`` as the refresher will; on a terminal, ask again for a refused value."""
    specs = all_fields(cls)
    for _ in range(MAX_FIX_ROUNDS):
        try:
            return validate_credentials(account, data)
        except CredentialsError as exc:
            spec = specs.get(exc.key or "")
            if not ctx.prompter.interactive or spec is None or spec.name in NOT_ASKED:
                raise CliError(str(exc)) from None
            ctx.out.note(f"  {exc.key} {exc.reason}")
            try:
                if spec.required:
                    answer: str | None = ctx.prompter.ask_required(prompt_for(spec), hidden=spec.is_secret)
                else:
                    answer = ctx.prompter.ask(prompt_for(spec), hidden=spec.is_secret)
            except InputEndedError:
                raise CliError(str(exc)) from None
            if answer is None or not answer.strip():
                data.pop(spec.name, None)  # an optional value given up on
            else:
                data[spec.name] = coerce(spec, answer)
    raise CliError(f"account '{account}': too many refused values, nothing written")


def read_json_file(source: str, stdin: Any) -> dict[str, Any]:
    """The JSON object in a file, or on stdin for '-'; errors name the file and position, never content."""
    where = "stdin" if source == "-" else source
    try:
        text = stdin.read() if source == "-" else open(source, encoding="utf-8").read()  # noqa: SIM115
    except OSError as exc:
        raise CliError(f"cannot read {where}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise CliError(f"{where} must hold a JSON object of credentials, not {article(type(data).__name__)}")
    return data


def resolve_broker(name: Any) -> type[Broker]:
    """The adapter class for a broker name, or a one-line error listing the known ones."""
    try:
        return broker_class(str(name))
    except KeyError:
        raise CliError(f"unknown broker '{name}' (known: {', '.join(known_brokers())})") from None


def show_totp(ctx: Context, creds: Credentials, keys: set[str] | None = None) -> None:
    """The current code of each TOTP secret, for the person to compare with their authenticator app.

    The one place a TOTP code is shown: on this terminal's stderr, never logged.
    """
    now = ctx.clock.time()
    for spec in creds.broker_class.fields:
        if spec.kind != "totp" or spec.name not in creds.values or (keys is not None and spec.name not in keys):
            continue
        code = BrokerTOTP(creds.secret(spec.name)).at(now)
        left = int(seconds_left_in_window(now))
        # Written directly: the redactor would mask digits that happen to equal a registered PIN.
        print(
            f"TOTP check ({spec.name}): the code now is {code[:3]} {code[3:]} (for {left} more s). "
            "It must match your authenticator app; if not, the secret or this machine's clock is wrong.",
            file=ctx.out.err,
            flush=True,
        )
        if ctx.prompter.interactive and not ctx.args.yes and not ctx.prompter.confirm("Does it match?", default=True):
            raise CliError(
                "nothing written: check the TOTP secret (the key shown when TOTP was enabled) "
                "and the clock (`broker-tokens doctor`)"
            )


# -- commands -----------------------------------------------------------------------------------------


def add_account(ctx: Context) -> int:
    """Create the credentials secret of a new account.

    Example: ``broker-tokens accounts add angel-main --broker angelone``
    """
    account = ctx.args.account
    given: dict[str, Any] = {}
    if ctx.args.from_file:
        given = read_json_file(ctx.args.from_file, ctx.prompter.stdin)
    named = given.get("broker") or ctx.args.broker
    if not named:
        raise CliError("which broker? pass --broker (" + ", ".join(known_brokers()) + ")")
    cls = resolve_broker(named)
    if ctx.args.broker and given.get("broker") and resolve_broker(ctx.args.broker) is not cls:
        raise CliError(f"--broker {ctx.args.broker} disagrees with the file's broker '{given['broker']}'")
    check_name_free(ctx, account)
    data = {**given, "broker": cls.name} if ctx.args.from_file else ask_values(ctx, cls)
    creds = validated(ctx, account, cls, data)
    show_totp(ctx, creds)
    create_credentials(ctx, account, creds)
    ctx.out.print(f"Created {ctx.credentials_name(account)} ({cls.title}).")
    ctx.out.note(f"Next: `broker-tokens refresh {account}` logs it in now; the schedule does so every trading day.")
    return EXIT_OK


def update_account(ctx: Context) -> int:
    """Write a new version of an account's credentials.

    Example: ``broker-tokens accounts update angel-main --set enabled=false``
    """
    account = ctx.args.account
    ctx.require_account(account)
    text, _ = ctx.secrets.read_credentials(account)
    try:
        current = json.loads(text or "{}")
    except ValueError:
        current = {}
    if not isinstance(current, dict):
        current = {}
    cls = current_broker(ctx, account, current)
    if ctx.args.from_file or ctx.args.set or ctx.args.unset:
        data = {**current}
        if ctx.args.from_file:
            data.update(read_json_file(ctx.args.from_file, ctx.prompter.stdin))
        data.update(parse_assignments(cls, ctx.args.set))
        for key in ctx.args.unset:
            data.pop(key, None)
        if resolve_broker(data.get("broker", cls.name)) is not cls:
            raise CliError("the broker of an account cannot change: remove it and add it again")
    else:
        data = ask_values(ctx, cls, current)
    creds = validated(ctx, account, cls, {**data, "broker": cls.name})
    changed = {key for key in creds.values if creds.values.get(key) != current.get(key)}
    changed |= {key for key in current if key not in creds.values}
    name = ctx.credentials_name(account)
    if not changed:
        tag_broker(ctx, name, account, cls.name)
        ctx.out.print(f"No change to {name}.")
        return EXIT_OK
    show_totp(ctx, creds, changed)
    ctx.secrets.client.put_secret_value(SecretId=name, SecretString=json.dumps(creds.values))
    tag_broker(ctx, name, account, cls.name)
    ctx.out.print(f"Updated {name}: {', '.join(sorted(changed))}.")
    ctx.out.note("A new credentials version: a needs-attention block on the old one no longer applies.")
    return EXIT_OK


def current_broker(ctx: Context, account: str, current: dict[str, Any]) -> type[Broker]:
    """The broker of an account being updated: its secret's, else --broker, else the secret's broker tag.

    A secret that is not JSON (or names no broker) can still be rewritten: --broker, or the tag that
    `accounts add` wrote, says which broker's values to ask for.
    """
    named, given = current.get("broker"), ctx.args.broker
    if named and given and resolve_broker(given) is not resolve_broker(named):
        raise CliError(
            f"account '{account}' is {article(str(named))} account: its broker cannot change (remove it, add it)"
        )
    if named or given:
        return resolve_broker(named or given)
    tags = ctx.secrets.client.describe_secret(SecretId=ctx.credentials_name(account)).get("Tags", [])
    tagged = next((t.get("Value") for t in tags if t.get("Key") == "broker"), None)
    if tagged:
        return resolve_broker(tagged)
    raise CliError(
        f"account '{account}': its credentials secret names no broker and has no broker tag: "
        f"pass --broker ({', '.join(known_brokers())})"
    )


def remove_account(ctx: Context) -> int:
    """Schedule the account's secrets for deletion and forget its state.

    Example: ``broker-tokens accounts remove angel-old --yes``
    """
    account, days = ctx.args.account, ctx.args.recovery_days
    ctx.require_account(account)
    names = [ctx.secrets.name(account, CREDENTIALS), ctx.secrets.name(account, TOKEN)]
    if not ctx.args.yes and not ctx.prompter.confirm(
        f"Delete account '{account}' ({' and '.join(names)}, restorable for {days} days)?"
    ):
        raise CliError("cancelled: nothing deleted")
    deleted = []
    for name in names:
        try:
            ctx.secrets.client.delete_secret(SecretId=name, RecoveryWindowInDays=days)
            deleted.append(name)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
    if ctx.table:
        ctx.client("dynamodb").delete_item(TableName=ctx.table, Key={"pk": {"S": account}, "sk": {"S": STATE}})
    ctx.out.print(f"Deleted account '{account}': {', '.join(deleted)} (restorable for {days} days).")
    ctx.out.note(f"Undo: aws secretsmanager restore-secret --secret-id {names[0]}")
    return EXIT_OK


def list_accounts(ctx: Context) -> int:
    """The accounts under the prefix, from metadata only.

    Example: ``broker-tokens accounts list --json``
    """
    rows = list(account_rows(ctx))
    if ctx.args.json:
        ctx.out.json(rows)
        return EXIT_OK
    if not rows:
        ctx.out.print(ctx.no_accounts())
        return EXIT_OK
    zone = ctx.settings.market_timezone
    table = [
        [
            r["account"],
            r["broker"] or "-",
            _when(r["credentials_changed"], zone),
            _when(r["token_written"], zone),
            r["note"],
        ]
        for r in rows
    ]
    ctx.out.print(render_table(["account", "broker", "credentials changed", "token written", "note"], table))
    return EXIT_OK


# -- Secrets Manager ------------------------------------------------------------------------------------


def check_name_free(ctx: Context, account: str) -> None:
    """Refuse an account that exists, or whose deleted secret still holds the name."""
    name = ctx.credentials_name(account)
    try:
        answer = ctx.secrets.client.describe_secret(SecretId=name)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return
        raise
    if "DeletedDate" in answer:
        raise CliError(
            f"{name} is scheduled for deletion: restore it (aws secretsmanager restore-secret --secret-id {name}) "
            "and use `accounts update`, or choose another account id"
        )
    raise CliError(exists_already(account))


def exists_already(account: str) -> str:
    """The message for adding an account that exists."""
    return f"account '{account}' exists already: use `broker-tokens accounts update {account}`"


def create_credentials(ctx: Context, account: str, creds: Credentials) -> None:
    """Create the secret, tagged with its broker (and encrypted with the stack's key when known)."""
    request: dict[str, Any] = {
        "Name": ctx.credentials_name(account),
        "SecretString": json.dumps(creds.values),
        "Description": f"broker-tokens credentials of account {account} ({creds.broker_class.title})",
        "Tags": [{"Key": "broker", "Value": creds.broker}, {"Key": ACCOUNT_TAG, "Value": account}],
    }
    if ctx.settings.kms_key_arn:
        request["KmsKeyId"] = ctx.settings.kms_key_arn
    try:
        ctx.secrets.client.create_secret(**request)
    except ClientError as exc:
        if error_code(exc) == "ResourceExistsException":
            raise CliError(
                f"account '{account}' exists already: use `broker-tokens accounts update {account}`"
            ) from None
        raise


def tag_broker(ctx: Context, name: str, account: str, broker: str) -> None:
    """Make sure the secret carries ``broker=<name>`` (IAM conditions read it)."""
    ctx.secrets.client.tag_resource(
        SecretId=name, Tags=[{"Key": "broker", "Value": broker}, {"Key": ACCOUNT_TAG, "Value": account}]
    )


def parse_assignments(cls: type[Broker], assignments: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as typed values; secret keys are refused (they would land in shell history).

    Example:
        >>> parse_assignments(broker_class("angelone"), ["enabled=false", "client_code=A9"])
        {'enabled': False, 'client_code': 'A9'}
    """
    specs = all_fields(cls)
    values: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"--set wants KEY=VALUE, got {key or item!r}")
        spec = specs.get(key)
        if spec is None:
            raise CliError(f"'{key}' is not a key of {article(cls.name)} secret (keys: {', '.join(specs)})")
        if spec.is_secret:
            raise CliError(f"'{key}' is secret: set it through the prompts or --from-file, not the command line")
        values[key] = coerce(spec, value)
    return values


def account_rows(ctx: Context) -> Iterator[dict[str, Any]]:
    """One row per account, from ListSecrets metadata (tags and dates; no value is read)."""
    prefix = ctx.prefix + "/"
    found: dict[str, dict[str, Any]] = {}
    paginator = ctx.secrets.client.get_paginator("list_secrets")
    for page in paginator.paginate(Filters=[{"Key": "name", "Values": [prefix]}]):
        for entry in page.get("SecretList", []):
            rest = entry.get("Name", "").removeprefix(prefix)
            account, _, kind = rest.partition("/")
            if kind not in (CREDENTIALS, TOKEN) or "DeletedDate" in entry:
                continue
            row = found.setdefault(
                account,
                {"account": account, "broker": None, "credentials_changed": None, "token_written": None, "note": ""},
            )
            changed = entry.get("LastChangedDate") or entry.get("CreatedDate")
            if kind == TOKEN:
                row["token_written"] = changed.isoformat() if changed else None
                continue
            row["credentials_changed"] = changed.isoformat() if changed else None
            tags = {t.get("Key"): t.get("Value") for t in entry.get("Tags", [])}
            row["broker"] = tags.get("broker")
            if not is_account_id(account):
                row["note"] = "ignored: not an account id ([a-z0-9][a-z0-9-]{0,62})"
            elif row["broker"] is None:
                row["note"] = "no broker tag (`broker-tokens accounts update` adds it)"
    for account in sorted(found):
        if found[account]["credentials_changed"] is not None:
            yield found[account]


def _when(text: str | None, zone: ZoneInfo) -> str:
    return local_time(datetime.fromisoformat(text) if text else None, zone)
