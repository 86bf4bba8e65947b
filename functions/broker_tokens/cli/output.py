"""What the CLI prints: one-line messages, aligned tables, colour only on a terminal (NO_COLOR honoured)."""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Sequence
from typing import Any, TextIO

from broker_tokens.models import AccountState
from broker_tokens.redaction import scrub
from broker_tokens.table import COLOURS

RED, GREEN, YELLOW = "31", "32", "33"


def article(word: str) -> str:
    """``word`` with "a" or "an" before it, by its sound in the common case (a vowel letter).

    Example:
        >>> article("angelone"), article("tradejini")
        ('an angelone', 'a tradejini')
    """
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def paint(text: str, code: str | None, *, enabled: bool) -> str:
    """``text`` in an ANSI colour when enabled.

    Example:
        >>> paint("ok", GREEN, enabled=False), paint("ok", GREEN, enabled=True)
        ('ok', '\\x1b[32mok\\x1b[0m')
    """
    return f"\033[{code}m{text}\033[0m" if enabled and code else text


def state_colour(state: AccountState | None) -> str | None:
    """The colour of a state cell: green for good, yellow for soon, cyan for a person, red otherwise.

    Example:
        >>> state_colour(AccountState.FRESH), state_colour(AccountState.NEEDS_ATTENTION)
        ('32', '31')
    """
    return COLOURS.get(state, RED) if state else None


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    colours: Sequence[dict[int, str | None]] | None = None,
    colour: bool = False,
) -> str:
    """Aligned columns two spaces apart; the last column is not padded (it holds long notes).

    ``colours`` gives, per row, the colour of some of its cells by column index.

    Example:
        >>> print(render_table(["account", "state"], [["a1", "fresh"], ["desk-22", "expired"]]))
        account  state
        a1       fresh
        desk-22  expired
    """
    table = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers) - 1)]
    lines = []
    for index, row in enumerate(table):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]
        if colour and colours and index > 0:
            for column, code in colours[index - 1].items():
                cells[column] = paint(cells[column], code, enabled=True)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


class Output:
    """The two streams of a command: results on stdout, messages on stderr.

    Colour is used only when stdout is a terminal, never with ``--no-color`` or ``NO_COLOR`` set.

    Example:
        >>> import io
        >>> out = Output(io.StringIO(), io.StringIO(), no_color=True)
        >>> out.colour
        False
    """

    def __init__(self, stdout: TextIO, stderr: TextIO, *, no_color: bool = False):
        self.out = stdout
        self.err = stderr
        self.colour = not no_color and isatty(stdout)
        self.err_colour = not no_color and isatty(stderr)

    def print(self, text: str = "") -> None:
        """A result line on stdout."""
        print(text, file=self.out, flush=True)

    def json(self, data: Any) -> None:
        """A JSON document on stdout."""
        print(json.dumps(data, indent=2, sort_keys=False), file=self.out, flush=True)

    def note(self, text: str) -> None:
        """A message for the person on stderr (never part of a result a script reads)."""
        print(scrub(text), file=self.err, flush=True)

    def warn(self, text: str) -> None:
        """A warning on stderr."""
        self.note(paint("warning:", YELLOW, enabled=self.err_colour) + " " + text)

    def error(self, text: str) -> None:
        """The one line of a failed command on stderr."""
        first = scrub(text).strip().splitlines()[0] if text.strip() else "failed"
        print(paint("broker-tokens: error:", RED, enabled=self.err_colour) + " " + first, file=self.err, flush=True)


def isatty(stream: TextIO) -> bool:
    """True for a terminal; False for pipes, files and closed or fake streams."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps prose to the terminal, keeps indented lines (examples) and short headings as written.

    Example:
        >>> HelpFormatter("x")._fill_text("a b c\\n  keep  this", 4, "").splitlines()
        ['a b', 'c', '  keep  this']
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        text = text.replace("``", "`")  # docstrings' reStructuredText literals, shown as plain backquotes
        lines: list[str] = []
        paragraph: list[str] = []

        def flush() -> None:
            if paragraph:
                lines.extend(textwrap.wrap(" ".join(paragraph), width, initial_indent=indent, subsequent_indent=indent))
                paragraph.clear()

        for line in text.splitlines():
            if not line.strip() or line[0].isspace() or line.rstrip().endswith(":"):
                flush()
                lines.append(indent + line if line.strip() else "")
            else:
                paragraph.append(line.strip())
        flush()
        return "\n".join(lines)
