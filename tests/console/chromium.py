"""Debian's Chromium, driven through its chromedriver by Selenium, for the console's
browser tests. Nothing is downloaded: the browser and the driver are the system's
(``apt-get install chromium chromium-driver``, as ``.ci/run`` does); where they are
missing the tests are skipped and the reason is printed.

The gateway under test runs on the test's event loop, so every WebDriver call (which
blocks until the browser answers, and the browser waits for the gateway) runs in a
thread.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.store.conftest import report

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking switches Chromium keeps trying to reach Google's
# services, which a closed network refuses slowly.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)
WAIT_SECONDS = 20

_reported = False


def require_chromium(config: pytest.Config) -> None:
    global _reported
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    if not missing:
        return
    reason = (
        f"browser tests need {' and '.join(missing)}: "
        "apt-get install chromium chromium-driver (.ci/run does)"
    )
    if not _reported:
        _reported = True
        report(config, f"skipping the console's browser tests: {reason}")
    pytest.skip(reason)


class Chromium:
    def __init__(self, profile: Path, screenshots: Path) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        # The browser's console, to check that no page logs an error.
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self.screenshots = screenshots
        screenshots.mkdir(parents=True, exist_ok=True)
        self.errors: list[dict[str, Any]] = []

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(call, *args)

    async def open(self, url: str) -> None:
        await self.run(self.driver.get, url)
        await self.collect_errors()

    async def find(self, css: str) -> WebElement:
        return await self.run(self.driver.find_element, By.CSS_SELECTOR, css)

    async def find_all(self, css: str) -> list[WebElement]:
        return await self.run(self.driver.find_elements, By.CSS_SELECTOR, css)

    async def text(self, css: str) -> str:
        element = await self.find(css)
        return await self.run(lambda: element.text)

    async def click(self, css: str) -> None:
        element = await self.find(css)
        await self.run(element.click)

    async def until(self, condition: Callable[[Any], T], timeout: float = WAIT_SECONDS) -> T:
        # A page being replaced (a navigation, a live swap) makes elements stale.
        wait = WebDriverWait(
            self.driver, timeout, ignored_exceptions=(StaleElementReferenceException,)
        )
        return await self.run(lambda: wait.until(condition))

    async def until_present(self, css: str) -> WebElement:
        return await self.until(lambda d: (d.find_elements(By.CSS_SELECTOR, css) or [None])[0])

    async def until_text(self, css: str, words: str) -> None:
        await self.until(
            lambda d: any(words in e.text for e in d.find_elements(By.CSS_SELECTOR, css))
        )

    async def script(self, source: str) -> Any:
        return await self.run(self.driver.execute_script, source)

    async def unlabelled(self) -> list[str]:
        """Form controls of the page without a label a screen reader would read."""
        found: list[str] = await self.script(
            """return Array.from(document.querySelectorAll(
                   'input:not([type=hidden]), select, textarea'))
                 .filter(c => !c.labels.length && !c.getAttribute('aria-label'))
                 .map(c => c.outerHTML);"""
        )
        return found

    async def shot(self, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        await self.run(self.driver.save_screenshot, str(path))
        return path

    async def collect_errors(self) -> list[dict[str, Any]]:
        """The console's error lines since the last call, added to ``errors``."""
        entries = await self.run(self.driver.get_log, "browser")
        self.errors += [e for e in entries if e.get("level") == "SEVERE"]
        return self.errors

    def quit(self) -> None:
        self.driver.quit()
