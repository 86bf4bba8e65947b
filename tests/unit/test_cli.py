"""The CLI's pieces without AWS: parser, prompts, validation loop, output, hints, error lines."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from broker_tokens.brokers import adapters, broker_class
from broker_tokens.cli import build_parser, main
from broker_tokens.cli.accounts import (
    ask_values,
    asked_fields,
    coerce,
    parse_assignments,
    prompt_for,
    read_json_file,
    show_totp,
    validated,
)
from broker_tokens.cli.context import CliError, Context, account_id
from broker_tokens.cli.doctor import skew_check
from broker_tokens.cli.localstate import LocalStackError, is_stack_process, local_environment, read_state, state_path
from broker_tokens.cli.main import explain
from broker_tokens.cli.output import Output, render_table
from broker_tokens.cli.prompts import InputEndedError, Prompter
from broker_tokens.cli.refresh import Progress, completes_logins, request_token
from broker_tokens.cli.status import next_steps, note
from broker_tokens.credentials import validate_credentials
from broker_tokens.errors import ErrorKind
from broker_tokens.models import AccountState, Outcome
from broker_tokens.totp import BrokerTOTP

ROOT = Path(__file__).resolve().parents[2]
TOTP_SECRET = "JBSWY3DPEHPK3PXP"


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class FixedClock:
    """A clock stopped at one instant."""

    def __init__(self, at: float) -> None:
        self.at = at

    def time(self) -> float:
        return self.at


def captured(stream: Any) -> str:
    """What was written to a StringIO stream."""
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and subcommand of the tree, as the words that name it."""
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from command_paths(sub, (*prefix, name))


def context(stdin: str = "", *, interactive: bool = False, hidden: list[str] | None = None, **args: Any) -> Context:
    """A Context on string streams (no AWS is touched until a client is asked for)."""
    namespace = argparse.Namespace(local=False, no_color=True, prefix=None, region=None, table=None, stack=None)
    for key, value in args.items():
        setattr(namespace, key, value)
    ctx = Context(namespace, stdin=io.StringIO(stdin), stdout=io.StringIO(), stderr=io.StringIO(), environ={})
    answers = iter(hidden or [])
    ctx.prompter = Prompter(
        ctx.prompter.stdin, ctx.out.err, interactive=interactive, read_hidden=lambda prompt, stream: next(answers)
    )
    return ctx


# -- the parser -----------------------------------------------------------------------------------------


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    paths = list(command_paths(build_parser()))
    assert ("accounts", "add") in paths and ("callers", "revoke") in paths and ("local", "down") in paths
    assert len(paths) >= 20
    for path in paths:
        with pytest.raises(SystemExit) as exit_info:
            main([*path, "--help"])
        assert exit_info.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: broker-tokens {' '.join(path)}".rstrip())


def test_a_usage_error_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["status", "--bogus"],
        ["nosuch"],
        ["token"],
        ["refresh", "Bad_Id"],
        ["local", "up", "--lifetime-hours", "0"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("broker-tokens"), err


def test_a_group_without_its_command_shows_its_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["accounts"]) == 2
    assert "{add,update,remove,list}" in capsys.readouterr().err
    assert main([]) == 2


def test_global_options_go_before_or_after_the_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["--prefix", "desk", "status"]).prefix == "desk"
    assert parser.parse_args(["status", "--prefix", "desk"]).prefix == "desk"
    assert parser.parse_args(["--local", "accounts", "list"]).local is True
    assert parser.parse_args(["accounts", "list", "--local"]).local is True
    assert parser.parse_args(["status"]).local is False


def test_account_ids_follow_the_contract() -> None:
    assert account_id("angel-main") == "angel-main"
    for bad in ("Angel", "-x", "a_b", "x" * 64):
        with pytest.raises(argparse.ArgumentTypeError):
            account_id(bad)


# -- prompts and values -----------------------------------------------------------------------------------


def test_prompts_from_a_pipe_read_lines_in_order() -> None:
    prompter = Prompter(io.StringIO("first\n\nthird\r\n"), io.StringIO())
    assert [prompter.ask("a"), prompter.ask("b"), prompter.ask("c", hidden=True), prompter.ask("d")] == [
        "first",
        "",
        "third",
        None,
    ]
    with pytest.raises(InputEndedError):
        Prompter(io.StringIO("\n"), io.StringIO()).ask_required("pin")


def test_on_a_terminal_hidden_values_use_getpass_and_empty_answers_are_asked_again() -> None:
    err = io.StringIO()
    seen: list[str] = []
    answers = iter(["", "s3cret"])

    def read_hidden(prompt: str, stream: Any) -> str:
        seen.append(prompt)
        return next(answers)

    prompter = Prompter(io.StringIO("visible\n"), err, interactive=True, read_hidden=read_hidden)
    assert prompter.ask_required("pin", hidden=True) == "s3cret"
    assert seen == ["pin: ", "pin: "] and "required" in err.getvalue()
    assert prompter.ask("client_code") == "visible" and "client_code: " in err.getvalue()
    assert Prompter(io.StringIO("\n"), io.StringIO()).confirm("sure?", default=True) is True
    assert Prompter(io.StringIO(""), io.StringIO()).confirm("sure?", default=True) is False


@pytest.mark.parametrize("cls", adapters(), ids=lambda c: c.name)
def test_required_fields_are_asked_first_and_broker_never(cls: Any) -> None:
    fields = asked_fields(cls)
    required = [f.required for f in fields]
    assert required == sorted(required, reverse=True)
    names = [f.name for f in fields]
    assert "broker" not in names and "enabled" not in names
    assert "base_url" in names and len(names) == len(set(names))


def test_docs_list_the_answer_order_of_every_broker() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    star = "\\*"  # Markdown's escaped asterisk marks a secret key
    for cls in adapters():
        names = [f.name + (star if f.is_secret else "") for f in asked_fields(cls)]
        expected = ", ".join(n if f.required else f"[{n}]" for n, f in zip(names, asked_fields(cls), strict=True))
        assert f"| `{cls.name}` | {expected} |" in text


def test_values_are_typed_and_secrets_never_shown() -> None:
    pin = broker_class("angelone").fields[2]
    assert pin.name == "pin"
    assert "1234" not in prompt_for(pin, current="1234", has_current=True)
    assert prompt_for(pin, current="1234", has_current=True).endswith("Enter keeps the current value)")
    ttl = next(f for f in broker_class("pitrade").fields if f.name == "token_ttl_seconds")
    assert coerce(ttl, " 600 ") == 600 and coerce(ttl, "ten") == "ten"
    assert coerce(pin, " 12 34 ") == " 12 34 "  # a secret is taken exactly as typed


def test_asking_every_value_through_stdin() -> None:
    ctx = context("k\nA1\n4321\njbsw y3dp ehpk 3pxp\n\n10.0.0.1\n")
    data = ask_values(ctx, broker_class("angelone"))
    assert data == {"broker": "angelone", "api_key": "k", "client_code": "A1", "pin": "4321",
                    "totp_secret": "jbsw y3dp ehpk 3pxp", "client_public_ip": "10.0.0.1"}  # fmt: skip
    creds = validated(ctx, "a1", broker_class("angelone"), data)
    assert creds.values["totp_secret"] == TOTP_SECRET
    with pytest.raises(CliError, match="'pin'"):
        ask_values(context("k\nA1\n"), broker_class("angelone"))


def test_enter_keeps_the_current_values() -> None:
    current = {"broker": "tradejini", "api_key": "k", "password": "old", "totp_secret": TOTP_SECRET}
    data = ask_values(context("\nnew-pass\n\n\n"), broker_class("tradejini"), current)
    assert data == {**current, "password": "new-pass"}


def test_a_refused_value_is_asked_again_on_a_terminal_only() -> None:
    data = {"broker": "angelone", "api_key": "k", "client_code": "A1", "pin": "4321", "totp_secret": "not base32!"}
    ctx = context(interactive=True, hidden=[TOTP_SECRET])
    assert validated(ctx, "a1", broker_class("angelone"), dict(data)).values["totp_secret"] == TOTP_SECRET
    assert "totp_secret is not a base32 TOTP secret" in captured(ctx.out.err)
    with pytest.raises(CliError, match="totp_secret"):
        validated(context(), "a1", broker_class("angelone"), dict(data))


def test_set_refuses_secret_and_unknown_keys() -> None:
    angel = broker_class("angelone")
    assert parse_assignments(angel, ["enabled=true", "mac_address=00:1A:2B:3C:4D:5E"])["enabled"] is True
    with pytest.raises(CliError, match="secret"):
        parse_assignments(angel, ["pin=9999"])
    with pytest.raises(CliError, match="not a key"):
        parse_assignments(angel, ["pinn=1"])
    with pytest.raises(CliError, match="KEY=VALUE"):
        parse_assignments(angel, ["enabled"])


def test_json_files_are_checked_without_quoting_them(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"pin": "98761234",')
    with pytest.raises(CliError) as error:
        read_json_file(str(broken), io.StringIO())
    assert "not valid JSON" in str(error.value) and "98761234" not in str(error.value)
    with pytest.raises(CliError, match="JSON object"):
        read_json_file("-", io.StringIO("[1, 2]"))
    with pytest.raises(CliError, match="cannot read"):
        read_json_file(str(tmp_path / "absent.json"), io.StringIO())


def test_the_totp_check_shows_the_code_of_the_moment_and_can_stop_the_write() -> None:
    creds = validate_credentials(
        "t1", {"broker": "tradejini", "api_key": "k", "password": "p", "totp_secret": TOTP_SECRET}
    )
    ctx = context(yes=False)
    ctx.clock = FixedClock(59.0)  # type: ignore[assignment]
    show_totp(ctx, creds)
    code = BrokerTOTP(TOTP_SECRET).at(59)
    assert f"the code now is {code[:3]} {code[3:]} (for 1 more s)" in captured(ctx.out.err)
    person = context("n\n", interactive=True, yes=False)
    with pytest.raises(CliError, match="nothing written"):
        show_totp(person, creds)


# -- output ---------------------------------------------------------------------------------------------------


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert Output(FakeTerminal(), io.StringIO()).colour is True
    assert Output(io.StringIO(), io.StringIO()).colour is False
    assert Output(FakeTerminal(), io.StringIO(), no_color=True).colour is False
    namespace = argparse.Namespace(local=False, no_color=False)
    ctx = Context(namespace, stdout=FakeTerminal(), stderr=io.StringIO(), environ={"NO_COLOR": "1"})
    assert ctx.out.colour is False


def test_tables_align_and_colour_only_the_state() -> None:
    rows = [["a1", "fresh", "note"], ["desk-22", "needs-attention", ""]]
    plain = render_table(["account", "state", "n"], rows, colours=[{1: "32"}, {1: "31"}])
    assert plain.splitlines()[2] == "desk-22  needs-attention"
    coloured = render_table(["account", "state", "n"], rows, colours=[{1: "32"}, {1: "31"}], colour=True)
    assert "\033[32mfresh" in coloured and "\033[31mneeds-attention" in coloured
    assert re.sub(r"\033\[\d+m", "", coloured) == plain


def test_next_steps_name_the_command_for_each_state() -> None:
    outcomes = [
        Outcome("a1", "angelone", AccountState.NEEDS_ATTENTION, error_kind=ErrorKind.PERMANENT, error="AB1007"),
        Outcome("a2", "angelone", AccountState.EXPIRED),
        Outcome("a3", "angelone", AccountState.FAILED, error_kind=ErrorKind.CONFIGURATION, error="pin missing"),
        Outcome("e1", "autoshares", AccountState.AWAITING_VERIFICATION),
        Outcome("a4", "angelone", AccountState.FAILED, error_kind=ErrorKind.TRANSIENT, error="timeout"),
    ]
    steps = next_steps(outcomes)
    assert steps[0] == "broker-tokens accounts update a1  # wrong credentials"
    assert steps[1].startswith("broker-tokens reset a1 && broker-tokens refresh a1  #")
    assert "broker-tokens accounts update a3" in steps and "broker-tokens verify e1 CODE" in steps
    assert steps[-1] == "broker-tokens refresh a2 a4"
    assert note(outcomes[0]) == "permanent: AB1007"
    assert note(Outcome("b", "blinkx", AccountState.AWAITING_LOGIN, login_url="https://x/login")) == (
        "log in at https://x/login"
    )


def test_progress_prints_a_line_per_account_and_a_counter_on_a_terminal() -> None:
    stream = FakeTerminal()
    progress = Progress(2, stream, colour=False)
    progress.start()
    progress.finished(Outcome("a1", "angelone", AccountState.FAILED, action="logged-in", error="x" * 200))
    progress.finished(Outcome("a2", "angelone", AccountState.FRESH, action="skipped"))
    progress.close()
    text = stream.getvalue()
    assert "refreshing: 0/2 done" in text and "refreshing: 1/2 done" in text
    assert "[1/2] a1  failed  " in text and "x" * 81 not in text and "logged-in" not in text and "[...]" not in text
    assert text.endswith("[2/2] a2  fresh  skipped\n\r\033[K")
    piped = io.StringIO()
    Progress(1, piped, colour=False).finished(Outcome("a1", "angelone", AccountState.FRESH, action="skipped"))
    assert piped.getvalue() == "[1/1] a1  fresh  skipped\n"


def test_clock_skew_levels() -> None:
    assert skew_check("https://x", 4.9).level == "ok"
    assert skew_check("https://x", -5.1).level == "warn"
    assert skew_check("https://x", 15.0).level == "warn"
    failed = skew_check("https://x", -15.1)
    assert failed.level == "FAIL" and failed.text == "clock: this machine is 15.1 s behind https://x" and failed.fix


def test_errors_become_one_line_with_what_to_do() -> None:
    assert "AWS is unreachable" in explain(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    assert "--local" in explain(NoCredentialsError())
    refused = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetSecretValue")
    assert explain(refused) == "AWS refused GetSecretValue: AccessDeniedException: no"
    assert explain(CliError("unknown account 'x'")) == "unknown account 'x'"
    assert explain(RuntimeError("boom")) == "unexpected RuntimeError: boom (run with --verbose for details)"


# -- person-completed logins -----------------------------------------------------------------------------------


def test_only_brokers_that_pause_take_login_and_verify() -> None:
    assert not completes_logins(broker_class("angelone"))
    assert completes_logins(broker_class("blinkx")) and completes_logins(broker_class("autoshares"))


def test_a_pasted_redirect_is_checked_before_the_broker_sees_it() -> None:
    blinkx = broker_class("blinkx")
    assert request_token("https://x/cb?request_token=AbC123xyz&status=success", blinkx) == "AbC123xyz"
    with pytest.raises(CliError, match="status"):
        request_token("https://x/cb?request_token=AbC123xyz&status=error", blinkx)
    assert request_token(" 123456 ", broker_class("autoshares")) == "123456"


# -- the local stack's state file ---------------------------------------------------------------------------------


def test_the_state_file_leads_to_the_stack_only_while_it_runs(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    env = {"BROKER_TOKENS_LOCAL_STATE": str(path)}
    assert state_path(env) == path
    with pytest.raises(LocalStackError, match="local up"):
        local_environment(env)
    path.write_text("not json")
    assert read_state(path) is None
    # A file naming a process that is not the stack server (this test runner) leads nowhere.
    path.write_text(json.dumps({"pid": os.getpid(), "environment": {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}}))
    assert read_state(path) is not None and not is_stack_process(os.getpid())
    with pytest.raises(LocalStackError):
        local_environment(env)


def every_command_help(parser: argparse.ArgumentParser, name: str = "broker-tokens") -> dict[str, str]:
    """The --help text of every command and command group under ``parser``."""
    found: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child_name, child in action.choices.items():
                found[f"{name} {child_name}"] = child.format_help()
                found.update(every_command_help(child, f"{name} {child_name}"))
    return found


def test_each_command_help_is_its_own_options_in_plain_words() -> None:
    helps = every_command_help(build_parser())
    assert len(helps) > 20
    for command, text in helps.items():
        assert "--prefix PREFIX" not in text and "--region REGION" not in text, command
        assert "global options, before or after the command" in text, command
        assert "``" not in text and "{prefix}" not in text, command
    assert "--prefix PREFIX" in build_parser().format_help()  # the top level still explains them
    assert "within 10 s" in helps["broker-tokens callers revoke"]


def test_messages_use_an_before_a_vowel() -> None:
    with pytest.raises(CliError, match="not a key of an angelone secret"):
        parse_assignments(broker_class("angelone"), ["pinn=1"])
