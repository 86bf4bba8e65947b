"""A link as a QR code in the terminal, for a phone's camera (`broker-tokens login ACCOUNT --qr`).

segno (pure Python, no dependencies) encodes the link. It is the CLI's optional extra
(`pip install 'broker-tokens[cli]'`), never part of the Lambda artifact, so it is imported only here,
when a QR code is asked for.

Each line of text carries two rows of modules in Unicode half blocks (a terminal cell is about twice as
tall as it is wide, so the code comes out square), with the standard quiet zone of 4 modules around it.
Light modules are drawn as ink (segno's compact terminal style, made for a dark terminal); with colour
on, every line is painted bright white on black, so the code reads the same on a light theme.
"""

from __future__ import annotations

import io
from types import ModuleType

from broker_tokens.cli.context import CliError

QUIET_ZONE = 4  # modules of light margin a reader needs around the code
INK_ON_BLACK, RESET = "\033[97;40m", "\033[0m"


def qr_lines(text: str, *, colour: bool = False) -> list[str]:
    """``text`` as a QR code: the lines to print, top to bottom.

    Example:
        >>> lines = qr_lines("https://example.com/callback")
        >>> len(lines[0]) == 2 * len(lines) - 1  # square: two rows a line, the last line's lower row blank
        True
        >>> lines[0] == lines[1] == "█" * len(lines[0])  # the quiet zone
        True
    """
    code = encoder().make_qr(text)
    drawn = io.StringIO()
    code.terminal(out=drawn, border=QUIET_ZONE, compact=True)
    lines = drawn.getvalue().splitlines()
    return [f"{INK_ON_BLACK}{line}{RESET}" for line in lines] if colour else lines


def encoder() -> ModuleType:
    """The segno module, or a one-line error saying how to install it."""
    try:
        import segno  # noqa: PLC0415 - optional: only --qr needs it
    except ImportError:
        raise CliError("--qr needs the QR encoder: pip install 'broker-tokens[cli]' (or just segno)") from None
    return segno
