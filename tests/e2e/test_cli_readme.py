"""The README's quick start works as written, and every `broker-tokens` line in the docs is a valid command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from broker_tokens.cli import build_parser
from tests.e2e.test_cli import clean_environment, run_cli

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
    block = next(b for b in shell_blocks(ROOT / "README.md") if any("broker-tokens local up" in line for line in b))
    env = clean_environment(tmp_path / "quick-start.json")
    ran: dict[str, int] = {}
    try:
        for line in block:
            words = shlex.split(line, comments=True)
            if words[0] in SETUP_COMMANDS:
                continue
            if words[0] == "export":
                env.update(dict(word.split("=", 1) for word in words[1:]))
                continue
            assert words[0] == "broker-tokens", f"unexpected line in the quick start: {line}"
            result = run_cli(*words[1:], env=env)
            assert result.returncode in (0, 1), f"`{line}`: exit {result.returncode}: {result.stderr}"
            assert "Traceback" not in result.stderr
            ran[" ".join(words[1:])] = result.returncode
            if words[1:3] == ["token", "angel-demo"]:
                assert result.returncode == 0 and result.stdout.startswith("Bearer "), result.stderr
    finally:
        run_cli("local", "down", env=env)
    assert ran["local up"] == 0 and ran["local down"] == 0
    assert ran["status"] == 1  # nothing has logged in yet
    assert not (tmp_path / "quick-start.json").exists()
