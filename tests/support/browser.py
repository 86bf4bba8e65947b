"""Headless Chromium from Debian's packages, phone-sized, for tests that click through real pages.

Selenium drives /usr/bin/chromium through /usr/bin/chromedriver (Debian builds the two together, so
their versions match). Both paths are given, and Selenium Manager is told to stay offline: nothing is
ever downloaded. `make browser` (and .ci/run) installs the two packages. A machine without them skips
the browser tests with that advice, except on CI (CI=true), where a missing install step fails.

Every wait is bounded (page loads, element waits, the driver's start), and the browser, the driver and
every process they started are gone after the test, whatever happened in it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Where screenshots go when set (docs/ keeps a set); else the test's tmp directory.
SCREENSHOTS_SETTING = "BROKER_TOKENS_SCREENSHOTS"

WAIT_SECONDS = 10.0
PAGE_LOAD_SECONDS = 20.0

# A phone: the viewport of a common Android handset, device pixel ratio 1 so screenshots stay small.
PHONE_WIDTH, PHONE_HEIGHT = 390, 844
PHONE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers have a tiny /dev/shm
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no calls home: loopback only
    "--disable-component-update",
    "--disable-sync",
    f"--window-size={PHONE_WIDTH},{PHONE_HEIGHT}",
)


def missing() -> list[str]:
    """The Debian browser packages not installed here (empty when the browser tests can run).

    Example:
        >>> missing() in ([], ["chromium"], ["chromium-driver"], ["chromium", "chromium-driver"])
        True
    """
    wanted = {"chromium": CHROMIUM, "chromium-driver": CHROMEDRIVER}
    return [package for package, path in wanted.items() if not os.access(path, os.X_OK)]


def require_chromium() -> None:
    """Skip the test when Chromium is not installed, with how to install it; on CI, fail instead."""
    absent = missing()
    if not absent:
        return
    reason = f"{' and '.join(absent)} not installed: `make browser` installs Debian's chromium and chromium-driver"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI needs the browser tests: {reason}")
    pytest.skip(reason)


def phone_options(profile: Path) -> webdriver.ChromeOptions:
    """Chromium's options: headless, loopback only, a fresh profile, a phone's screen and user agent.

    Example:
        >>> from pathlib import Path
        >>> options = phone_options(Path("/tmp/p"))
        >>> "--headless=new" in options.arguments, options.binary_location
        (True, '/usr/bin/chromium')
    """
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    metrics = {"width": PHONE_WIDTH, "height": PHONE_HEIGHT, "pixelRatio": 1.0, "touch": True, "mobile": True}
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics, "userAgent": PHONE_USER_AGENT})
    return options


@dataclass
class Browser:
    """One headless phone-sized Chromium page, with bounded waits and named screenshots.

    Example:
        >>> browser.open(url)                                    # doctest: +SKIP
        >>> browser.fill("#userid", "BX1234"); browser.click("button[type=submit]")  # doctest: +SKIP
        >>> browser.wait_for_url(front_url + "/callback/")       # doctest: +SKIP
        >>> browser.screenshot("done")                           # doctest: +SKIP
        PosixPath('/tmp/.../done.png')
    """

    driver: webdriver.Chrome
    screenshots: Path

    @property
    def url(self) -> str:
        """The address of the page shown now."""
        return str(self.driver.current_url)

    @property
    def html(self) -> str:
        """The page's HTML (to scan it for what must never be shown)."""
        return str(self.driver.page_source)

    @property
    def text(self) -> str:
        """What the page shows a person: the body's visible text."""
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def open(self, url: str) -> None:
        """Go to ``url`` and wait until it has loaded (at most PAGE_LOAD_SECONDS)."""
        self.driver.get(url)

    def find(self, css: str, timeout: float = WAIT_SECONDS) -> WebElement:
        """The first visible element matching a CSS selector, waiting for it at most ``timeout`` seconds."""
        try:
            element: WebElement = WebDriverWait(self.driver, timeout).until(
                expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
            )
        except TimeoutException:
            raise AssertionError(f"no visible {css!r} within {timeout:g} s on {self.url}") from None
        return element

    def fill(self, css: str, value: str) -> None:
        """Type ``value`` into a form field (cleared first)."""
        field = self.find(css)
        field.clear()
        field.send_keys(value)

    def click(self, css: str) -> None:
        """Click an element once it is visible."""
        self.find(css).click()

    def wait_for_url(self, prefix: str, timeout: float = WAIT_SECONDS) -> str:
        """Wait until the page's address starts with ``prefix`` and its document has loaded; return it."""

        def arrived(driver: webdriver.Chrome) -> bool:
            loaded = driver.execute_script("return document.readyState") == "complete"
            return str(driver.current_url).startswith(prefix) and loaded

        try:
            WebDriverWait(self.driver, timeout).until(arrived)
        except TimeoutException:
            raise AssertionError(f"still on {self.url} after {timeout:g} s, not at {prefix}") from None
        return self.url

    def screenshot(self, name: str) -> Path:
        """Save the viewport as ``NAME.png`` in the screenshot directory; return its path."""
        path = self.screenshots / f"{name}.png"
        if not self.driver.save_screenshot(str(path)):
            raise AssertionError(f"Chromium saved no screenshot {path}")
        return path


def screenshot_directory(default: Path) -> Path:
    """BROKER_TOKENS_SCREENSHOTS when set (created), else ``default``.

    Example:
        >>> from pathlib import Path
        >>> screenshot_directory(Path("/tmp/shots")) == Path(os.environ.get(SCREENSHOTS_SETTING, "/tmp/shots"))
        True
    """
    chosen = Path(os.environ.get(SCREENSHOTS_SETTING) or default)
    chosen.mkdir(parents=True, exist_ok=True)
    return chosen


@contextlib.contextmanager
def chromium(home: Path, screenshots: Path) -> Iterator[Browser]:
    """Start Chromium with everything it writes under ``home``; always quit it and end every process it left.

    ``home`` holds the profile and Chromium's config and cache directories (its crash handler keeps its
    database there too), so the browser touches nothing of the user's, and every process it started
    names ``home`` on its command line: after quitting, the driver's process group is killed and then
    any process naming ``home`` (the crash handler leaves that group), bounded.
    """
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never fetch a driver or a browser
    profile = home / "profile"
    profile.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache")}
    service = Service(executable_path=str(CHROMEDRIVER), env=env, popen_kw={"start_new_session": True})
    try:
        driver = webdriver.Chrome(options=phone_options(profile), service=service)
        try:
            driver.set_page_load_timeout(PAGE_LOAD_SECONDS)
            driver.set_script_timeout(WAIT_SECONDS)
            yield Browser(driver, screenshots)
        finally:
            driver.quit()
    finally:
        end_processes(service, home)


def end_processes(service: Service, home: Path) -> None:
    """Kill the driver's process group, then whatever still names ``home``; wait (bounded) until all are gone."""
    process = getattr(service, "process", None)
    if process is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            process.wait(timeout=WAIT_SECONDS)  # reap the driver: no zombie left
    deadline = time.monotonic() + WAIT_SECONDS
    while (left := processes_naming(home)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def processes_naming(path: Path) -> list[int]:
    """The ids of live processes whose command line contains ``path`` (Linux /proc).

    Example:
        >>> processes_naming(Path("/no/such/browser/home"))
        []
    """
    marker = str(path).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command_line = (entry / "cmdline").read_bytes()
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if marker in command_line:
                found.append(int(entry.name))
    return found


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """A headless phone-sized Chromium (skipped off CI when not installed); quit after the test."""
    require_chromium()
    with chromium(tmp_path / "chromium", screenshot_directory(tmp_path / "screenshots")) as page:
        yield page
