"""Real headless Chromium for console tests, through Playwright.

Playwright does not download browsers here: it drives the system's Chromium
(``apt-get install chromium``; ``make test`` installs it when run as root).
The flags keep it off the network except for the server under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_missing() -> str | None:
    """Why browser tests cannot run, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium; `make test` does it when run as root)"
    return None


@asynccontextmanager
async def launch_chromium(**options: Any) -> AsyncIterator[Any]:
    """A Playwright `Browser` on the system's Chromium, closed on exit."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
                                                   **options)
        try:
            yield browser
        finally:
            await browser.close()


async def sign_in(page: Any, base_url: str, key: str, *, next_path: str = "/console/") -> None:
    """Sign `page` in to the console at `base_url` with an API key, through the form."""
    await page.goto(f"{base_url}{next_path}")
    await page.fill("input[name=key]", key)
    async with page.expect_navigation():
        await page.click("button[type=submit]")
