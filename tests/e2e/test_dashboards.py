"""Dashboards in a real headless Chromium (Debian's), against a running system with the
demo organisation, signed in through the page with a `dashboards:read` token only;
screenshots go to test-artifacts/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response, Route, sync_playwright
from playwright.sync_api import Request as PlaywrightRequest

from tests.e2e.system import System, run_system

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Runs before any script of every page: collects what the Content-Security-Policy blocked.
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__cspViolations.push(
    `${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`));
"""
PAGES = ("portfolio", "lifecycle", "partnership", "networks")


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
def viewer(system: System) -> str:
    """A token that may read dashboards and nothing else, issued as an administrator would."""
    issued = system.cli("token", "issue", "--name", "viewer", "--scope", "dashboards:read")
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.strip()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Session:
    """A browser profile that signed in through the sign-in page, and what it saw."""

    def __init__(self, browser: Browser, system: System, token: str) -> None:
        self.system = system
        self.context: BrowserContext = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.add_init_script(COLLECT_VIOLATIONS)
        self.responses: list[Response] = []
        self.context.on("response", lambda r: self.responses.append(r))
        self.console_violations: list[str] = []
        page = self.new_page()
        page.goto(self.url("/dashboard/portfolio.html"))
        assert page.url == self.url("/dashboard/sign-in?next=%2Fdashboard%2Fportfolio.html")
        assert page.locator('label[for="token"]').is_visible()
        assert page.get_attribute("#token", "type") == "password"
        page.fill("#token", token)
        with page.expect_response(self.url("/dashboard/sign-in")) as answer:
            page.click('#sign-in button[type="submit"]')
        assert answer.value.status == 303, answer.value.text()
        page.wait_for_url(self.url("/dashboard/portfolio.html"))
        page.wait_for_selector("#matrix td[data-cell]")
        self.assert_no_violations(page)
        self.first_page = page

    def url(self, path: str) -> str:
        return f"{self.system.endpoints['api_url']}{path}"

    def new_page(self, width: int = 1280) -> Page:
        page = self.context.new_page()
        page.set_viewport_size({"width": width, "height": 900})
        page.on(
            "console", lambda m: self.console_violations.append(m.text) if "Content Security Policy" in m.text else None
        )
        return page

    def open(self, path: str, width: int = 1280) -> Page:
        page = self.new_page(width)
        response = page.goto(self.url(path))
        assert response is not None and response.ok and page.url == self.url(path), page.url  # not sent to sign in
        return page

    def violations(self, page: Page) -> list[str]:
        return page.evaluate("window.__cspViolations") + self.console_violations

    def assert_no_violations(self, page: Page) -> None:
        page.wait_for_timeout(300)  # violation reports are dispatched as tasks of their own
        assert self.violations(page) == []

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def session(browser: Browser, system: System, viewer: str) -> Iterator[Session]:
    signed_in = Session(browser, system, viewer)
    yield signed_in
    signed_in.close()


def wait_until(page: Page, expression: str, timeout_s: float = 5) -> None:
    """Polls from outside: page.wait_for_function evaluates its predicate with eval inside
    the page, which the Content-Security-Policy rightly refuses."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {expression}"
        time.sleep(0.1)


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_signing_in_keeps_the_token_out_of_urls_storage_and_logs(
    session: Session,
    system: System,
    viewer: str,
) -> None:
    [cookie] = [c for c in session.context.cookies() if c["name"] == "verkosto_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]  # plain http here
    assert cookie["value"] != viewer and viewer not in cookie["value"]
    page = session.first_page
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read it
    for path in (f"/dashboard/{name}.html" for name in PAGES):
        shown = session.open(path + ("?id=00000000-0000-4000-8000-000000000000" if "partnership" in path else ""))
        stored = shown.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
        assert stored == "[[],[]]"
        shown.close()
    urls = [r.url for r in session.responses]
    assert urls and not [u for u in urls if viewer in u or "token=" in u]
    # Every answer the browser got, pages, scripts, styles and API JSON, carries the policy.
    kinds = {r.request.resource_type for r in session.responses}
    assert {"document", "script", "stylesheet", "fetch"} <= kinds
    for response in session.responses:
        policy = response.headers.get("content-security-policy", "")
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, response.url
        assert response.headers.get("x-frame-options") == "DENY", response.url

    # A token that still arrives in a URL (an old bookmark) is redacted in the access log.
    old_bookmark = httpx.get(session.url(f"/dashboard/portfolio.html?token={viewer}"))
    assert old_bookmark.status_code == 303 and viewer not in old_bookmark.headers["location"]
    log = system.data_dir / "logs" / "api.log"
    deadline = time.monotonic() + 10
    while "token=[redacted]" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    text = log.read_text()
    assert "token=[redacted]" in text and "/dashboard/sign-in" in text
    assert viewer not in text and system.token not in text


def test_the_policy_is_enforced_and_a_violation_would_be_seen(session: Session) -> None:
    page = session.open("/dashboard/lifecycle.html")
    page.wait_for_selector("#board .card")
    session.assert_no_violations(page)
    # The detector itself works: a style attribute (what the dashboards must not use) is refused.
    page.evaluate("document.body.setAttribute('style', 'background: red')")
    wait_until(page, "window.__cspViolations.length > 0")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") != "rgb(255, 0, 0)"
    assert page.evaluate("window.__cspViolations")[0].startswith("style-src")
    session.console_violations.clear()
    page.close()


def test_the_portfolio_matrix_counts_every_segmented_partner(session: Session, system: System) -> None:
    api = system.get("/v1/projections/portfolio").json()
    page = session.open("/dashboard/portfolio.html")
    page.wait_for_selector("#matrix td[data-cell]")
    for cell in api["cells"]:
        shown = page.locator(f'#matrix td[data-cell="{cell["cell"]}"] .count').inner_text()
        assert int(shown) == cell["count"], cell["cell"]
    assert sum(c["count"] for c in api["cells"]) > 50
    assert page.locator("#matrix td.rising").count() == 6  # the cells where future outranks now
    cover = api["evaluation_coverage"]
    assert (
        page.locator("#coverage")
        .inner_text()
        .startswith(f"{cover['never_evaluated']['count']} of {cover['partnerships']} never evaluated")
    )
    session.assert_no_violations(page)
    shot(page, "portfolio")


def board_pages(system: System) -> list[dict[str, Any]]:
    """Every page of the lifecycle board, through the API (one page from a server before paging)."""
    pages = [system.get("/v1/projections/lifecycle").json()]
    while pages[-1].get("next_cursor"):
        pages.append(system.get("/v1/projections/lifecycle", cursor=pages[-1]["next_cursor"]).json())
    return pages


def test_the_lifecycle_board_shows_a_first_page_of_cards_with_flags_and_more_on_demand(
    session: Session, system: System
) -> None:
    pages = board_pages(system)
    everyone = [p for page in pages for p in page["partnerships"]]
    flagged = [p for p in everyone if p["flags"] and p["stage"] != "ended"]
    page = session.open("/dashboard/lifecycle.html")
    page.wait_for_selector("#board .card")
    first = [p for p in pages[0]["partnerships"] if p["stage"] != "ended"]
    assert page.locator("#board .card").count() == len(first)
    assert len(pages) > 1, "the demo's board should need more than one page"  # 110 partners, 100 a page
    assert page.locator("#more").is_visible()
    page.click("#more")
    active = [p for p in everyone if p["stage"] != "ended"]
    wait_until(page, f"document.querySelectorAll('#board .card').length === {len(active)}")
    assert page.locator("#more").count() == 0  # the last page has no next_cursor
    assert flagged and page.locator("#board .flag").count() == sum(len(p["flags"]) for p in flagged)
    title = page.locator("#board .flag").first.get_attribute("title")
    assert title  # the reasons travel with the flag
    session.assert_no_violations(page)
    shot(page, "lifecycle")


def test_a_slow_board_is_never_asked_twice_at_once(session: Session) -> None:
    page = session.new_page()
    held: list[Route] = []
    in_flight = peak = 0

    def started(request: PlaywrightRequest) -> None:
        nonlocal in_flight, peak
        if "/v1/projections/lifecycle" in request.url:
            in_flight += 1
            peak = max(peak, in_flight)

    def ended(request: PlaywrightRequest) -> None:
        nonlocal in_flight
        if "/v1/projections/lifecycle" in request.url:
            in_flight -= 1

    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    page.route("**/v1/projections/lifecycle*", lambda route: held.append(route))  # answered later, by hand
    page.goto(session.url("/dashboard/lifecycle.html"))
    for answered in range(3):
        # Each answer is held for more than two refresh intervals (3 s): a page polling on
        # a timer would have asked again meanwhile.
        page.wait_for_timeout(7_000)
        assert len(held) == answered + 1 and in_flight == 1
        held[-1].continue_()
    page.wait_for_selector("#board .card")
    assert peak == 1
    page.unroute("**/v1/projections/lifecycle*")
    page.close()


def test_an_unchanged_board_is_answered_304_and_kept_as_drawn(session: Session, system: System) -> None:
    page = session.open("/dashboard/lifecycle.html")
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if "/v1/projections/lifecycle" in r.url else None)
    page.wait_for_selector("#board .card")
    # After each unchanged answer the board drawn before is still the one shown. (A new
    # minute is a new question, since the page asks as of the minute: that answer is a 200
    # and draws afresh, so the board is marked again after any 200.)
    kept = 0
    deadline = time.monotonic() + 30
    while kept < 2:
        assert time.monotonic() < deadline, statuses
        page.evaluate("document.querySelector('#board').drawnOnce = true")
        seen = len(statuses)
        while len(statuses) == seen:
            assert time.monotonic() < deadline, statuses
            page.wait_for_timeout(100)
        page.wait_for_timeout(300)  # the answer is handled after its response event
        if statuses[seen] == 304:
            assert page.evaluate("document.querySelector('#board').drawnOnce === true")
            kept += 1
    # A change in the projections is drawn without a reload.
    before = int(page.inner_text(".fresh").split()[3])
    created = system.post(
        "/v1/partnerships",
        {
            "partner": {"name": "Zzzz Late Oy", "kind": "organisation", "roles": ["customer"]},
            "owner_unit": "u",
            "steward": "s",
        },
    )
    assert created.status_code == 201, created.text
    wait_until(page, f"Number(document.querySelector('.fresh').textContent.split(' ')[3]) > {before}", 15)
    page.wait_for_timeout(300)
    assert page.evaluate("document.querySelector('#board').drawnOnce !== true")
    session.assert_no_violations(page)
    page.close()


def test_a_portfolio_cell_lists_its_first_members_and_more_on_demand(session: Session, system: System) -> None:
    # The demo's cells may all fit in the page's default 20 members: ask for two per cell,
    # as a larger organisation's cells would overflow, so "more" is always exercised.
    api = system.get("/v1/projections/portfolio", members=2).json()
    crowded = [c for c in api["cells"] if c.get("more")]
    assert crowded, "no cell of the demo holds more than two partnerships"
    page = session.new_page(1280)

    def two_per_cell(route: Route) -> None:
        url = urlsplit(route.request.url)
        query = urlencode([*((k, v) for k, v in parse_qsl(url.query) if k != "members"), ("members", "2")])
        route.continue_(url=urlunsplit(url._replace(query=query)))

    page.route(lambda url: urlsplit(url).path == "/v1/projections/portfolio", two_per_cell)
    page.goto(session.url("/dashboard/portfolio.html"))
    page.wait_for_selector("#matrix td[data-cell]")
    cell = crowded[0]
    selector = f'#matrix td[data-cell="{cell["cell"]}"]'
    names = page.locator(f"{selector} .who").inner_text().split(", ")
    assert names == [m["partner_name"] for m in cell["members"]]
    page.click(f"{selector} button.more")
    wait_until(page, f"document.querySelector('{selector} .who').innerText.split(', ').length > {len(names)}")
    session.assert_no_violations(page)


def test_the_partnership_page_draws_every_trust_point(session: Session, system: System) -> None:
    board = system.get("/v1/projections/lifecycle").json()["partnerships"]
    pid = board[0]["partnership_id"]
    points = system.get(f"/v1/projections/trust/{pid}").json()["points"]
    page = session.open(f"/dashboard/partnership.html?id={pid}")
    page.wait_for_selector("#trust-chart")
    assert page.locator("#trust-chart circle.point").count() == len(points) > 0
    page.wait_for_selector("#owners tr >> nth=1")
    assert page.locator("#owners tr").count() >= 2 and page.locator("#history tr").count() > 2
    # The legend is coloured through the CSSOM (a style attribute would be refused).
    assert page.locator(".legend span").first.evaluate("e => getComputedStyle(e).color") == "rgb(11, 110, 153)"
    session.assert_no_violations(page)
    shot(page, "partnership")
    first_day = system.get(f"/v1/partnerships/{pid}/history").json()["events"][0]["occurred_at"][:10]
    page.fill("#as-of", first_day)
    page.dispatch_event("#as-of", "change")
    wait_until(page, "document.querySelectorAll('#history tr').length === 2")  # header and the opening
    phone = session.open(f"/dashboard/partnership.html?id={pid}", width=390)
    phone.wait_for_selector("#trust-chart")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 420  # readable on a phone
    session.assert_no_violations(phone)
    shot(phone, "partnership-phone")


def test_the_networks_page_recommends_and_follows_new_events(session: Session, system: System) -> None:
    page = session.open("/dashboard/networks.html")
    page.wait_for_selector("#networks tr td")
    text = page.locator("#networks").inner_text()
    assert "leave (best_before_passed)" in text or "left" in text
    assert page.locator("#networks tr").count() == 7  # header and six networks
    created = system.post(
        "/v1/networks",
        {"name": "Brand new forum", "purposes": ["competence"], "role": "member", "activity": "active"}
        | {"owner_unit": "research", "steward": "Aino"},
    )
    assert created.status_code == 201
    wait_until(page, "document.querySelector('#networks').innerText.includes('Brand new forum')", 15)
    with page.expect_download() as download:
        page.click("#download")
    assert "Network plan" in Path(download.value.path()).read_text()
    session.assert_no_violations(page)
    shot(page, "networks")


def test_docs_load_nothing_from_outside_and_keep_to_the_policy(session: Session) -> None:
    page = session.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    response = page.goto(session.url("/docs"))
    assert response is not None and response.ok
    assert "content-security-policy" in response.headers
    html = page.content().lower()
    assert "cdn" not in html and 'src="http' not in html and 'href="http' not in html
    page.wait_for_selector(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag")  # the operations, from /openapi.json
    assert requested and all(u.startswith(session.url("/")) for u in requested), requested
    session.assert_no_violations(page)
    shot(page, "docs")


def test_signing_out_ends_the_session(browser: Browser, system: System, viewer: str) -> None:
    own = Session(browser, system, viewer)  # its own profile, so the other tests keep theirs
    try:
        page = own.first_page
        with page.expect_navigation(url=own.url("/dashboard/sign-in")):
            page.click("#sign-out")
        assert not [c for c in own.context.cookies() if c["name"] == "verkosto_session"]
        page.goto(own.url("/dashboard/networks.html"))
        assert page.url == own.url("/dashboard/sign-in?next=%2Fdashboard%2Fnetworks.html")
        assert own.context.request.get(own.url("/v1/projections/networks")).status == 401
    finally:
        own.close()
