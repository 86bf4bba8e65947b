"""The README's quick start works as written, and every `broker-tokens` line in the docs is a valid command."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from broker_tokens.cli import build_parser
from tests.e2e.test_cli import clean_environment, run_cli
from tests.e2e.test_local_stack import demo_logins, person_logs_in

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "README.md", ROOT / "docs" / "cli.md")
FENCE = re.compile(r"^```(?:sh|bash|shell|console)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# What a fresh clone has done before the CLI exists; the test environment already did it.
SETUP_COMMANDS = ("make", "source", "git", "cd")


def shell_blocks(path: Path) -> list[list[str]]:
    """The shell code blocks of a Markdown file, as lists of command lines (prompts and blanks dropped)."""
    blocks = []
    for body in FENCE.findall(path.read_text(encoding="utf-8")):
        lines = [line.strip().removeprefix("$ ") for line in body.splitlines()]
        blocks.append([line for line in lines if line and not line.startswith("#")])
    return blocks


def commands_in(line: str) -> list[list[str]]:
    """The `broker-tokens` commands of a shell line, each as its arguments (pipes and redirections cut off)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segments: list[list[str]] = [[]]
    redirected = False
    for token in lexer:
        if token in ("|", "||", "&&", ";"):
            segments.append([])
            redirected = False
        elif token in ("<", ">", ">>") or redirected:
            redirected = True
        else:
            segments[-1].append(token)
    return [segment[1:] for segment in segments if segment and segment[0] == "broker-tokens"]


def cli_commands(path: Path) -> list[list[str]]:
    """Every `broker-tokens` command of a file's shell blocks."""
    return [command for block in shell_blocks(path) for line in block for command in commands_in(line)]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_documented_command_parses(path: Path) -> None:
    commands = cli_commands(path)
    assert len(commands) >= 8, f"too few broker-tokens commands found in {path.name}"
    for args in commands:
        try:
            build_parser().parse_args(args)
        except SystemExit as exc:  # argparse's way of refusing
            pytest.fail(f"{path.name}: `broker-tokens {shlex.join(args)}` does not parse (exit {exc.code})")


def test_readme_quick_start_runs_as_written(tmp_path: Path) -> None:
    """Line by line, with a scripted person for the two person steps, who reads only what was printed."""
    block = next(b for b in shell_blocks(ROOT / "README.md") if any("broker-tokens local up" in line for line in b))
    env = clean_environment(tmp_path / "quick-start.json")
    ran: list[tuple[str, subprocess.CompletedProcess[str]]] = []
    printed: dict[str, str] = {}
    try:
        for line in block:
            words = shlex.split(line, comments=True)
            if words[0] in SETUP_COMMANDS:
                continue
            if words[0] == "export":
                env.update(dict(word.split("=", 1) for word in words[1:]))
                continue
            assert words[0] == "broker-tokens", f"unexpected line in the quick start: {line}"
            args = [printed.get(word, word) for word in words[1:]]
            result = run_cli(*args, env=env)
            assert result.returncode in (0, 1), f"`{line}`: exit {result.returncode}: {result.stderr}"
            assert "Traceback" not in result.stderr
            ran.append((" ".join(words[1:]), result))
            play_the_person(args, result, env, printed)
    finally:
        run_cli("local", "down", env=env)
    codes = [(command, result.returncode) for command, result in ran]
    assert codes[0] == ("local up", 0) and codes[-1] == ("local down", 0)
    assert ("status", 1) in codes  # nothing has logged in yet
    assert "CODE" in printed and "blinkx-demo" in printed, "the person steps were not played"
    final = [result for command, result in ran if command == "status"][-1]
    states = {line.split()[0]: line.split()[2] for line in final.stdout.splitlines()[1:] if line.strip()}
    kite = ("fresh", "expiring")  # before 06:00 IST a Kite-family token dies at that morning's reset
    assert states["etna-2fa-demo"] == "fresh" and states["blinkx-demo"] in kite, final.stdout
    assert all(state in ("fresh", "healthy", *kite) for state in states.values()), final.stdout
    assert not (tmp_path / "quick-start.json").exists()


def play_the_person(
    args: list[str], result: subprocess.CompletedProcess[str], env: dict[str, str], printed: dict[str, str]
) -> None:
    """What a person does with a command's output: note the demo logins, log in, read the e-mailed code."""
    if args[:2] == ["local", "up"]:
        printed["logins"] = result.stdout
    elif args[:1] == ["token"] and args[1] == "angel-demo":
        assert result.returncode == 0 and result.stdout.startswith("Bearer "), result.stderr
    elif args[:2] == ["login", "blinkx-demo"]:
        login = demo_logins(printed["logins"])["blinkx-demo"]
        visited = person_logs_in(env, result.stdout.strip(), {"account": "blinkx-demo", **login})
        assert "/callback/blinkx-demo?" in visited[0]
        printed["blinkx-demo"] = "logged in"
    elif args[:2] == ["local", "outbox"]:
        rows = [line.split() for line in result.stdout.splitlines() if line.startswith("etna-2fa-demo ")]
        assert rows, result.stdout + result.stderr
        printed["CODE"] = rows[-1][-1]
