"""Asking the person at the terminal, or reading the same answers from stdin when it is not a terminal.

On a terminal, hidden values (passwords, PINs, TOTP secrets) are read with getpass and never echoed.
When stdin is a pipe or a file, each answer is simply the next line of stdin, in the order the
prompts would come (so `printf 'key\\nA1\\n1234\\n' | broker-tokens accounts add ...` works and tests
can drive every prompt); nothing is echoed then either.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import TextIO

from broker_tokens.cli.output import isatty

MAX_ATTEMPTS = 3


class InputEndedError(Exception):
    """stdin ended (or a terminal person gave up) before a required answer came."""


class Prompter:
    """Reads answers from a terminal (prompting on stderr) or line by line from stdin.

    Example:
        >>> import io
        >>> p = Prompter(io.StringIO("A123\\n\\n"), io.StringIO())
        >>> p.ask("client_code"), p.ask("optional one"), p.ask("after the end")
        ('A123', '', None)
    """

    def __init__(
        self,
        stdin: TextIO,
        stderr: TextIO,
        *,
        interactive: bool | None = None,
        read_hidden: Callable[[str, TextIO], str] | None = None,
    ):
        self.stdin = stdin
        self.stderr = stderr
        self.interactive = isatty(stdin) if interactive is None else interactive
        self._read_hidden = read_hidden or (lambda prompt, stream: getpass.getpass(prompt, stream=stream))

    def ask(self, prompt: str, *, hidden: bool = False) -> str | None:
        """One answer without its line end; '' for an empty line, None when input has ended."""
        if not self.interactive:
            line = self.stdin.readline()
            return line.rstrip("\r\n") if line else None
        try:
            if hidden:
                return self._read_hidden(f"{prompt}: ", self.stderr)
            print(f"{prompt}: ", end="", file=self.stderr, flush=True)
            line = self.stdin.readline()
        except EOFError:
            return None
        return line.rstrip("\r\n") if line else None

    def ask_required(self, prompt: str, *, hidden: bool = False) -> str:
        """An answer that may not be empty: asked again on a terminal, an error from a pipe."""
        for _ in range(MAX_ATTEMPTS if self.interactive else 1):
            answer = self.ask(prompt, hidden=hidden)
            if answer is None:
                break
            if answer.strip():
                return answer
            if self.interactive:
                print("  a value is required here", file=self.stderr, flush=True)
        raise InputEndedError(prompt)

    def confirm(self, question: str, *, default: bool = False) -> bool:
        """A yes/no answer; Enter takes the default, the end of input means no.

        Example:
            >>> import io
            >>> Prompter(io.StringIO("y\\n"), io.StringIO()).confirm("delete?")
            True
        """
        suffix = "[Y/n]" if default else "[y/N]"
        answer = self.ask(f"{question} {suffix}")
        if answer is None:
            return False
        answer = answer.strip().lower()
        if not answer:
            return default
        return answer in ("y", "yes")
