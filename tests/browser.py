"""Headless Chromium for the browser tests: where the browser and its driver are, the
module-level skip (saying why) when they or selenium are missing, and one driver."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("RTP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = (
    os.environ.get("RTP_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
)
# what every browser test runs Chromium with: headless, quiet, no shared memory
ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def require_browser(install: str) -> None:
    """Skip the calling test module, at import, without selenium or without Chromium and
    chromedriver (``install``: how to get them, in the skip reason)."""
    pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')"
    )
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip(
            f"no headless browser: need {CHROMIUM} and {CHROMEDRIVER} ({install})",
            allow_module_level=True,
        )


@contextmanager
def chromium(profile: Path, *extra: str) -> Iterator:
    """A headless Chromium (selenium driver) with its profile under ``profile`` and the
    ``extra`` arguments; quit on leaving."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in (*ARGS, f"--user-data-dir={profile / 'chromium-profile'}", *extra):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
