"""The browser harness itself: a phone-sized page, screenshots, nothing left running, and CI never skipping."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.support import browser as harness
from tests.support.browser import PHONE_HEIGHT, PHONE_WIDTH, chromium, processes_naming, require_chromium


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_a_phone_sized_page_is_shot_and_nothing_is_left_running(tmp_path: Path) -> None:
    require_chromium()
    home = tmp_path / "chromium"
    with chromium(home, tmp_path) as page:
        page.open("data:text/html,<meta name=viewport content='width=device-width'><h1 id=t>Hello</h1>")
        assert page.find("#t").text == "Hello"
        assert page.driver.execute_script("return [innerWidth, navigator.userAgent]") == [
            PHONE_WIDTH,
            harness.PHONE_USER_AGENT,
        ]
        shot = page.screenshot("hello")
        assert processes_naming(home), "the browser should be running here"
    assert png_size(shot) == (PHONE_WIDTH, PHONE_HEIGHT)
    assert processes_naming(home) == []  # the driver, the browser, its helpers and its crash handler: all gone


def test_a_wait_that_never_ends_well_fails_in_bounded_time(tmp_path: Path) -> None:
    require_chromium()
    with chromium(tmp_path / "chromium", tmp_path) as page:
        page.open("data:text/html,<p>nothing to find</p>")
        with pytest.raises(AssertionError, match=r"no visible '#missing' within 0\.5 s"):
            page.find("#missing", timeout=0.5)
        with pytest.raises(AssertionError, match="still on data:"):
            page.wait_for_url("http://127.0.0.1:9/", timeout=0.5)


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_without_chromium_ci_fails_and_a_developer_is_told_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setattr(harness, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="make browser"):
        require_chromium()
