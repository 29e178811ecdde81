"""The storefront in headless Chromium against a real `rtp dev` of the root project.

A shopper opens the page from the URL `rtp dev` prints, clicks through products of one
category, and the "Recommended for you" panel changes to that category within seconds;
the clicks show up in "Trending now". A screenshot goes to tests/artifacts/storefront.png.

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package (the `dev`
extra); `.ci/services/chromium.sh` installs the browser in CI. Without them the test
skips and says why.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.browser import chromium, require_browser
from tests.conftest import ROOT
from tests.serving import copy_root_project, free_port, stop

ARTIFACTS = ROOT / "tests" / "artifacts"
CATEGORY = "sunglasses"  # four in stock in the fixtures: aviator, cat eye, round, sport

require_browser("apt-get install -y chromium chromium-driver")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def dev_server(tmp_path):
    """`rtp dev` on the copied root project; yields the storefront URL it printed."""
    root = copy_root_project(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtp.cli.main", "dev", "--port", str(port), "-p", str(root)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    url = None
    deadline = time.monotonic() + 90
    while url is None and time.monotonic() < deadline and proc.poll() is None:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        found = re.search(r"open (http://\S+/storefront/\?token=\S+)", line)
        url = found.group(1) if found else None
    try:
        assert url, "rtp dev printed no storefront URL:\n" + "".join(output)
        healthz = url.split("/storefront/")[0] + "/healthz"
        while time.monotonic() < deadline:  # the URL is printed just before uvicorn binds
            try:
                if httpx.get(healthz, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        stop(proc)


@pytest.fixture
def browser(tmp_path):
    with chromium(tmp_path, "--disable-quic", "--window-size=1280,1300") as driver:
        yield driver


def panel(driver, testid: str) -> list[tuple[str, str]]:
    """(product id, category) of each item of a panel, in order; read in one script, since
    the page re-renders its panels every few seconds."""
    return [
        tuple(x)
        for x in driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(li => [li.dataset.product,"
            " ([...li.querySelector('.dot').classList].find(c => c.startsWith('cat-')) || '')"
            ".slice(4)]);",
            f"[data-testid={testid}] li[data-product]",
        )
    ]


def cards(driver, selector: str = ".card") -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(c => c.dataset.product);", selector
    )


def test_clicks_change_recommendations(dev_server, browser):
    driver = browser
    wait = WebDriverWait(driver, 20, poll_frequency=0.1)
    driver.get(dev_server)
    wait.until(lambda d: cards(d))
    wait.until(lambda d: panel(d, "recommendations"))
    before = panel(driver, "recommendations")
    # a new visitor: no session yet, so nothing is recommended for "this visit" (the
    # panel re-renders every few seconds: read its text once it is drawn)
    recs = wait.until(lambda d: d.find_element(By.ID, "recs").text)
    assert "matches this visit" not in recs

    # browse one category: open two of its products, closing each dialog
    driver.find_element(
        By.XPATH, f"//nav[@id='categories']/button[contains(., '{CATEGORY}')]"
    ).click()
    wait.until(lambda d: (shown := cards(d)) and all(p.startswith("sg-") for p in shown))
    in_stock = cards(driver, ".card:not(.sold-out)")
    clicked = in_stock[:2]
    assert len(clicked) == 2, in_stock
    latencies = []
    for product in clicked:
        started = time.monotonic()
        driver.find_element(By.CSS_SELECTOR, f".card[data-product='{product}']").click()
        wait.until(
            lambda d: d.find_element(By.ID, "product-dialog").get_attribute("open") is not None
        )
        wait.until(
            lambda d, p=product: f"sent view {p}" in d.find_element(By.ID, "last-event").text
        )
        # the panel follows the click: top pick is another product of the category
        wait.until(
            lambda d, seen=set(clicked[: clicked.index(product) + 1]): (
                (recs := panel(d, "recommendations"))
                and recs[0][1] == CATEGORY
                and not seen & {p for p, _ in recs}
            )
        )
        latencies.append(time.monotonic() - started)
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
        wait.until(lambda d: d.find_element(By.ID, "product-dialog").get_attribute("open") is None)

    after = panel(driver, "recommendations")
    assert after != before
    ids = [p for p, _ in after]
    assert not set(clicked) & set(ids), "products just viewed are not recommended again"
    rest = [p for p in in_stock if p not in clicked]
    assert set(rest) <= set(ids[: len(rest)]), (rest, after)  # the rest of the category first
    assert "matches this visit" in driver.find_element(By.ID, "recs").text
    fresh = driver.find_element(By.ID, "recs-fresh").text
    found = re.match(r"updated (\d+) ms after your click", fresh)
    assert found, fresh
    assert int(found.group(1)) < 5000, fresh  # ~0.5 s here; a loose bound for busy CI

    # "Trending now" (polled every 3 s) shows the clicked products
    WebDriverWait(driver, 10, poll_frequency=0.2).until(
        lambda d: set(clicked) <= {p for p, _ in panel(d, "trending")}
    )
    assert not driver.find_element(By.ID, "error").is_displayed()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "storefront.png"
    driver.save_screenshot(str(shot))
    print(
        f"\nstorefront screenshot: {shot}; click -> new recommendations: "
        + ", ".join(f"{s * 1000:.0f} ms" for s in latencies)
        + f"; page says '{fresh}'"
    )
