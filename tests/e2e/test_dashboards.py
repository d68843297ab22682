"""Dashboards in a real headless Chromium (Debian's), against a running system with the
demo organisation; screenshots go to test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.system import System, run_system

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    systems = run_system(tmp_path_factory, "dash")
    running = next(systems)
    try:
        loaded = running.cli("demo", "--partners", "110")
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        status = running.cli("status")  # wait until every projection has caught up
        for _ in range(100):
            if status.returncode == 0:
                break
            status = running.cli("status")
        yield running
    finally:
        systems.close()  # stops it (even when loading failed), and cleans up a shared server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser: Browser, system: System, path: str, width: int = 1280) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900})
    separator = "&" if "?" in path else "?"
    page.goto(f"{system.endpoints['api_url']}{path}{separator}token={system.token}")
    return page


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_the_portfolio_matrix_counts_every_segmented_partner(browser: Browser, system: System) -> None:
    api = system.get("/v1/projections/portfolio").json()
    page = open_page(browser, system, "/dashboard/portfolio.html")
    page.wait_for_selector("#matrix td[data-cell]")
    for cell in api["cells"]:
        shown = page.locator(f'#matrix td[data-cell="{cell["cell"]}"] .count').inner_text()
        assert int(shown) == cell["count"], cell["cell"]
    assert sum(c["count"] for c in api["cells"]) > 50
    assert page.locator("#matrix td.rising").count() == 6  # the cells where future outranks now
    shot(page, "portfolio")


def test_the_lifecycle_board_shows_cards_with_flags(browser: Browser, system: System) -> None:
    api = system.get("/v1/projections/lifecycle").json()
    flagged = [p for p in api["partnerships"] if p["flags"] and p["stage"] != "ended"]
    page = open_page(browser, system, "/dashboard/lifecycle.html")
    page.wait_for_selector("#board .card")
    active = [p for p in api["partnerships"] if p["stage"] != "ended"]
    assert page.locator("#board .card").count() == len(active)
    assert flagged and page.locator("#board .flag").count() == sum(len(p["flags"]) for p in flagged)
    title = page.locator("#board .flag").first.get_attribute("title")
    assert title  # the reasons travel with the flag
    shot(page, "lifecycle")


def test_the_partnership_page_draws_every_trust_point(browser: Browser, system: System) -> None:
    board = system.get("/v1/projections/lifecycle").json()["partnerships"]
    pid = board[0]["partnership_id"]
    points = system.get(f"/v1/projections/trust/{pid}").json()["points"]
    page = open_page(browser, system, f"/dashboard/partnership.html?id={pid}")
    page.wait_for_selector("#trust-chart")
    assert page.locator("#trust-chart circle.point").count() == len(points) > 0
    assert page.locator("#owners tr").count() >= 2 and page.locator("#history tr").count() > 2
    shot(page, "partnership")
    first_day = system.get(f"/v1/partnerships/{pid}/history").json()["events"][0]["occurred_at"][:10]
    page.fill("#as-of", first_day)
    page.dispatch_event("#as-of", "change")
    page.wait_for_function("document.querySelectorAll('#history tr').length === 2")  # header and the opening
    phone = open_page(browser, system, f"/dashboard/partnership.html?id={pid}", width=390)
    phone.wait_for_selector("#trust-chart")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 420  # readable on a phone
    shot(phone, "partnership-phone")


def test_the_networks_page_recommends_and_follows_new_events(browser: Browser, system: System) -> None:
    page = open_page(browser, system, "/dashboard/networks.html")
    page.wait_for_selector("#networks tr td")
    text = page.locator("#networks").inner_text()
    assert "leave (best_before_passed)" in text or "left" in text
    assert page.locator("#networks tr").count() == 7  # header and six networks
    created = system.post("/v1/networks", {"name": "Brand new forum", "purposes": ["competence"], "role": "member",
                                           "activity": "active"})
    assert created.status_code == 201
    page.wait_for_function("document.querySelector('#networks').innerText.includes('Brand new forum')", timeout=15_000)
    with page.expect_download() as download:
        page.click("#download")
    assert "Network plan" in Path(download.value.path()).read_text()
    shot(page, "networks")
