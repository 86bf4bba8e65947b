"""`broker-tokens login ACCOUNT --qr`: the link as a terminal QR code, read back module by module."""

from __future__ import annotations

import sys

import pytest
import segno

from broker_tokens.cli.context import CliError
from broker_tokens.cli.qr import INK_ON_BLACK, QUIET_ZONE, RESET, encoder, qr_lines

LINK = "https://api.blinkx.in/connect/login?v=3&api_key=demo-blinkx-key"
# A half block back to its (upper, lower) modules: ink is a LIGHT module, so 1 (dark) is no ink.
HALVES = {"█": (0, 0), "▀": (0, 1), "▄": (1, 0), " ": (1, 1)}


def modules(lines: list[str]) -> list[list[int]]:
    """The rows of modules the lines draw (1 = dark), two per line, the last line's lower row included."""
    rows: list[list[int]] = []
    for line in lines:
        pairs = [HALVES[char] for char in line]
        rows += [[upper for upper, _ in pairs], [lower for _, lower in pairs]]
    return rows


def test_the_blocks_draw_segnos_own_matrix_in_a_quiet_zone() -> None:
    lines = qr_lines(LINK)
    expected = [list(row) for row in segno.make_qr(LINK).matrix_iter(border=QUIET_ZONE)]
    drawn = modules(lines)
    size = len(expected)
    assert drawn[:size] == expected
    assert drawn[size:] == [[1] * size]  # the odd row out: blank, below the quiet zone
    assert all(len(row) == size for row in drawn)  # square
    light = [0] * QUIET_ZONE
    assert all(row == [0] * size for row in drawn[:QUIET_ZONE] + drawn[size - QUIET_ZONE : size])
    assert all(row[:QUIET_ZONE] == light and row[-QUIET_ZONE:] == light for row in drawn[:size])


def test_the_finder_pattern_is_dark_where_a_reader_looks_for_it() -> None:
    drawn = modules(qr_lines(LINK))
    corner = [row[QUIET_ZONE : QUIET_ZONE + 7] for row in drawn[QUIET_ZONE : QUIET_ZONE + 7]]
    assert corner[0] == corner[6] == [1] * 7
    assert corner[1] == corner[5] == [1, 0, 0, 0, 0, 0, 1]
    assert corner[3] == [1, 0, 1, 1, 1, 0, 1]


def test_with_colour_every_line_is_painted_ink_on_black() -> None:
    plain, painted = qr_lines(LINK), qr_lines(LINK, colour=True)
    assert painted == [f"{INK_ON_BLACK}{line}{RESET}" for line in plain]


def test_a_longer_link_gives_a_bigger_code() -> None:
    assert len(qr_lines(LINK + "&nonce=" + "x" * 80)) > len(qr_lines(LINK))


def test_without_segno_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "segno", None)  # what `import segno` meets when it is not installed
    with pytest.raises(CliError, match=r"pip install 'broker-tokens\[cli\]'"):
        encoder()
