"""Recording from the dashboards in a real headless Chromium (Debian's), against a running
system with the demo organisation, signed in with a token that may write and belongs to a
steward: every form records through the page, by keyboard where practical, and each
result is checked through the HTTP API; the API's errors show beside their fields; every
page passes axe-core (from the npm registry, served to the page by the test) with no
serious or critical violation. Screenshots and the axe report go to test-artifacts/."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from domain.values import ActivityKind, Channel, Direction, Importance, PartnerKind, Role, Stage, TransferReason
from tests.e2e.system import System
from tests.e2e.test_dashboards import ARTIFACTS, Session, browser, shot, system, wait_until

__all__ = ["browser", "system"]  # the module-scoped fixtures this module shares with test_dashboards

# axe-core as `make axe` installs it from the npm registry (VERKOSTO_AXE overrides).
AXE = Path(os.environ.get("VERKOSTO_AXE", Path.home() / ".cache/verkosto/axe/node_modules/axe-core/axe.min.js"))
AXE_URL = "/__test__/axe.min.js"  # answered by the test itself, on the dashboards' own origin
RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) }));
}"""
STEWARD = "Helmi"  # a steward of the demo organisation
IMPACTS = ("critical", "serious", "moderate", "minor")
CHOICES = {
    "#contact-channel": Channel,
    "#contact-direction": Direction,
    "#activity-kind": ActivityKind,
    "#segment-now": Importance,
    "#transfer-reason": TransferReason,
    "#stage-stage": Stage,
}


@pytest.fixture(scope="module")
def writer(system: System) -> str:
    """A steward's token that may read dashboards and record events, issued as an administrator would."""
    issued = system.cli(
        "token", "issue", "--name", "helmi", "--scope", "dashboards:read", "events:write", "--person", STEWARD
    )
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.strip()


@pytest.fixture(scope="module")
def session(browser: Browser, system: System, writer: str) -> Iterator[Session]:
    signed_in = Session(browser, system, writer)
    assert AXE.exists(), f"{AXE} is missing: run `make axe`"
    # Served from the page's own origin, so the Content-Security-Policy stays as strict as ever.
    signed_in.context.route(f"**{AXE_URL}", lambda route: route.fulfill(path=str(AXE), content_type="text/javascript"))
    yield signed_in
    signed_in.close()


def history(system: System, pid: str) -> list[dict[str, Any]]:
    return system.get(f"/v1/partnerships/{pid}/history").json()["events"]


def recorded(page: Page, form: str, text: str = "Recorded") -> None:
    page.wait_for_selector(f"#{form}-status:has-text('{text}')", timeout=10_000)
    assert page.inner_text(f"#{form}-error") == "", page.inner_text(f"#{form}-error")


def latest(system: System, pid: str, kind: str) -> dict[str, Any]:
    event = history(system, pid)[-1]
    assert event["type"] == kind and event["actor"] == "helmi", event
    return event


def focused(page: Page) -> str:
    return str(page.evaluate("document.activeElement.id"))


def options(page: Page, select: str) -> list[str]:
    values: list[str] = page.locator(f"{select} option").evaluate_all("os => os.map(o => o.value)")
    assert values[0] == ""  # nothing is chosen for anyone
    return values[1:]


def test_the_dashboards_open_on_the_stewards_attention_list(session: Session, system: System) -> None:
    page = session.new_page()
    page.goto(session.url("/dashboard"))
    page.wait_for_url(session.url("/dashboard/attention.html"))
    page.wait_for_selector("#attention-count")
    items = system.get("/v1/attention", steward=STEWARD, limit=50).json()["items"]
    assert items, "the demo gives its stewards something to do"
    links = page.locator("#attention a")
    assert links.all_inner_texts() == [item["partner_name"] for item in items]
    assert links.first.get_attribute("href") == f"/dashboard/partnership.html?id={items[0]['partnership_id']}"
    assert page.get_attribute('header nav a[href="/dashboard/attention.html"]', "aria-current") == "page"
    session.assert_no_violations(page)
    shot(page, "attention")
    links.first.click()
    page.wait_for_selector("#trust-chart")
    page.close()


def test_every_form_records_and_the_api_shows_it(session: Session, system: System) -> None:
    page = session.open("/dashboard/lifecycle.html")
    posted: list[dict[str, str]] = []
    page.on("request", lambda r: posted.append(r.headers) if r.method == "POST" else None)
    # Open a partnership, by keyboard: type, Tab from field to field, Space ticks, Enter submits.
    page.wait_for_selector("#open-partner-name")
    assert options(page, "#open-partner-kind") == [k.value for k in PartnerKind]  # the contract's choices
    roles = page.locator("#form-open input[type=checkbox]").evaluate_all("bs => bs.map(b => b.value)")
    assert roles == [r.value for r in Role]
    page.focus("#open-partner-name")
    page.keyboard.type("Keyboard Works Oy")
    page.keyboard.press("Tab")
    assert focused(page) == "open-partner-kind"
    page.keyboard.type("organisation")  # a select's type-ahead
    page.keyboard.press("Tab")
    assert focused(page) == "open-partner-roles-customer"
    page.keyboard.press("Space")
    page.focus("#open-owner_unit")
    page.keyboard.type("research")
    page.keyboard.press("Tab")
    page.keyboard.type("Helmi")
    page.keyboard.press("Enter")
    page.wait_for_selector("#opened")
    page.click("#opened")
    page.wait_for_selector("#form-contact")
    pid = page.url.split("id=")[1]
    opened = latest(system, pid, "partnership_opened")["data"]
    partner = {"name": "Keyboard Works Oy", "kind": "organisation", "roles": ["customer"], "domains": []}
    assert opened["partner"] == partner
    assert (opened["owner_unit"], opened["steward"]) == ("research", "Helmi")

    # Every choice offered is the contract's (after the blank "Choose…").
    for select, enum in CHOICES.items():
        assert options(page, select) == [e.value for e in enum], select

    # A contact, entirely by keyboard.
    page.focus("#contact-channel")
    page.keyboard.type("call")
    page.keyboard.press("Tab")
    page.keyboard.type("out")
    page.keyboard.press("Tab")
    assert focused(page) == "contact-participants"
    page.keyboard.type("Helmi, Pekka Partner")
    page.keyboard.press("Tab")
    page.keyboard.type("45")
    page.keyboard.press("Enter")
    recorded(page, "contact")
    contact = latest(system, pid, "contact_logged")
    assert contact["data"]["channel"] == "call" and contact["data"]["direction"] == "outbound"
    assert contact["data"]["participants"] == ["Helmi", "Pekka Partner"] and contact["data"]["effort_minutes"] == 45
    wait_until(page, f"document.querySelectorAll('#history tr').length === {len(history(system, pid)) + 1}")

    page.select_option("#interest-direction", "inbound")
    page.fill("#interest-strength", "2")
    page.press("#interest-strength", "Enter")
    recorded(page, "interest")
    assert latest(system, pid, "interest_signalled")["data"]["strength"] == 2

    page.select_option("#activity-kind", "workshop")
    page.fill("#activity-our_effort_hours", "3.5")
    page.fill("#activity-their_effort_hours", "2")
    page.fill("#activity-title", "Joint roadmap workshop")
    page.press("#activity-title", "Enter")
    recorded(page, "activity")
    activity = latest(system, pid, "joint_activity_recorded")["data"]
    assert activity["title"] == "Joint roadmap workshop"
    assert (activity["our_effort_hours"], activity["their_effort_hours"]) == (3.5, 2.0)

    catalogue = system.get("/v1/organisation/criteria").json()["catalogue"]
    scores = {c["name"]: ("10", 10.0) if i == 0 else ("1", 1.0) for i, c in enumerate(catalogue["criteria"])}
    for name, (option, _) in scores.items():
        page.select_option(f"#evaluate-factors-{name}", option)
    page.focus("#form-evaluate button[type=submit]")
    page.keyboard.press("Enter")
    recorded(page, "evaluate")
    assert latest(system, pid, "evaluated")["data"]["factors"] == {n: v for n, (_, v) in scores.items()}

    page.select_option("#segment-now", "+")
    page.select_option("#segment-future", "++")
    page.click("#form-segment button[type=submit]")
    recorded(page, "segment")
    assert latest(system, pid, "segmented")["data"]["segment"] == {"now": "+", "future": "++"}

    page.fill("#transfer-owner_unit", "sales")
    page.select_option("#transfer-reason", "reassignment")
    page.fill("#transfer-steward", "Kaisa")
    page.press("#transfer-steward", "Enter")
    recorded(page, "transfer")
    assert latest(system, pid, "ownership_transferred")["data"]["steward"] == "Kaisa"

    # A refusal (409) is shown beside the field it concerns: analyse cannot go to manage.
    page.select_option("#stage-stage", "manage")
    page.fill("#stage-reason", "agreed_priority")
    page.press("#stage-reason", "Enter")
    page.wait_for_selector("#stage-stage-error:not([hidden])")
    assert "cannot move from analyse to manage" in page.inner_text("#stage-stage-error")
    assert focused(page) == "stage-stage" and page.get_attribute("#stage-stage", "aria-invalid") == "true"
    page.select_option("#stage-stage", "prioritise")
    page.fill("#stage-reason", "agreed_priority")
    page.press("#stage-reason", "Enter")
    recorded(page, "stage")
    assert latest(system, pid, "stage_changed")["data"]["stage"] == "prioritise"
    assert page.get_attribute("#stage-stage", "aria-invalid") is None

    # Correct the contact (#2), then retract the interest signal (#3).
    page.select_option("#correct-event_id", f"{pid}:2")
    page.select_option("#correct-changes-channel", "meeting")
    page.fill("#correct-changes-effort_minutes", "60")
    page.fill("#correct-reason", "It was a meeting, and a longer one")
    page.click("#form-correct button[type=submit]")
    recorded(page, "correct", "event corrected")
    corrected = latest(system, pid, "event_corrected")["data"]
    assert corrected["event_id"] == f"{pid}:2"
    changes = {k: v for k, v in corrected["changes"].items() if v is not None}
    assert changes == {"channel": "meeting", "effort_minutes": 60}
    contact_choice = f"document.querySelector('#correct-event_id option[value=\"{pid}:2\"]')"
    wait_until(page, f"{contact_choice}.text.includes('corrected')")  # the history, reloaded
    page.select_option("#correct-event_id", f"{pid}:3")
    page.select_option("#correct-action", "event_retracted")
    assert page.is_hidden("#correct-changes")
    page.fill("#correct-reason", "Logged on the wrong partner")
    page.click("#form-correct button[type=submit]")
    recorded(page, "correct", "event retracted")
    assert latest(system, pid, "event_retracted")["data"]["event_id"] == f"{pid}:3"
    wait_until(page, f"!document.querySelector('#correct-event_id option[value=\"{pid}:3\"]')")  # gone from the choice
    state = system.get(f"/v1/partnerships/{pid}").json()
    assert (state["stage"], state["steward"]) == ("prioritise", "Kaisa")
    assert (state["interest_signals"], state["contacts"]) == (0, 1)  # the retracted signal no longer counts

    # Every write carried the page's proof; a fetch without it is refused.
    proof = page.get_attribute("form.sign-out input[name=proof]", "value")
    assert len(posted) == 11 and all(h.get("x-csrf-token") == proof for h in posted)
    bare = "fetch('/v1/partnerships', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'})"
    assert page.evaluate(f"{bare}.then((r) => r.status)") == 403
    session.assert_no_violations(page)
    shot(page, "partnership-forms")


def test_the_apis_errors_show_beside_their_fields(session: Session, system: System) -> None:
    pid = system.get("/v1/projections/lifecycle").json()["partnerships"][0]["partnership_id"]
    before = len(history(system, pid))
    page = session.open(f"/dashboard/partnership.html?id={pid}")
    page.wait_for_selector("#contact-participants")
    page.fill("#contact-effort_minutes", "-5")
    page.press("#contact-participants", "Enter")  # nothing chosen, nobody named, effort negative
    page.wait_for_selector("#contact-channel-error:not([hidden])")
    for name in ("channel", "direction", "participants", "effort_minutes"):
        control = f"#contact-{name}"
        assert page.get_attribute(control, "aria-invalid") == "true", name
        assert f"contact-{name}-error" in (page.get_attribute(control, "aria-describedby") or "").split(), name
        assert page.inner_text(f"{control}-error"), name
    assert "greater than or equal to 0" in page.inner_text("#contact-effort_minutes-error")
    assert focused(page) == "contact-channel"  # the first field in error
    assert "not valid" in page.inner_text("#contact-error")
    assert len(history(system, pid)) == before  # nothing recorded
    page.locator("#form-contact").screenshot(path=str(ARTIFACTS / "form-error.png"))
    session.assert_no_violations(page)
    page.close()


def axe(session: Session, path: str, ready: str) -> list[dict[str, Any]]:
    page = session.open(path)
    page.wait_for_selector(ready)
    page.add_script_tag(url=session.url(AXE_URL))
    found: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    session.assert_no_violations(page)  # the policy held: axe ran as a file of this origin
    page.close()
    return found


def test_every_page_passes_axe_with_no_serious_or_critical_violation(session: Session, system: System) -> None:
    pid = system.get("/v1/projections/lifecycle").json()["partnerships"][0]["partnership_id"]
    pages = {
        "attention": ("/dashboard/attention.html", "#attention-count"),
        "portfolio": ("/dashboard/portfolio.html", "#matrix td[data-cell]"),
        "lifecycle": ("/dashboard/lifecycle.html", "#form-open"),
        "partnership": (f"/dashboard/partnership.html?id={pid}", "#form-correct"),
        "networks": ("/dashboard/networks.html", "#networks tr td"),
        "sign-in": ("/dashboard/sign-in", "#token"),
    }
    report = {name: axe(session, path, ready) for name, (path, ready) in pages.items()}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "axe.json").write_text(json.dumps(report, indent=2) + "\n")
    for name, violations in report.items():  # for the record (pytest -s): every violation, by impact
        print(name, {impact: [v["id"] for v in violations if v["impact"] == impact] for impact in IMPACTS})
    grave = {name: [v for v in found if v["impact"] in ("serious", "critical")] for name, found in report.items()}
    assert grave == {name: [] for name in pages}, json.dumps(grave, indent=2)


def test_the_axe_run_would_see_a_violation(session: Session) -> None:
    # The check itself works: an unlabelled field is a critical violation.
    page = session.open("/dashboard/networks.html")
    page.wait_for_selector("#networks tr td")
    page.evaluate("document.querySelector('main').append(document.createElement('input'))")
    page.add_script_tag(url=session.url(AXE_URL))
    found = page.evaluate(RUN_AXE)
    assert [v["impact"] for v in found if v["id"] == "label"] == ["critical"]
    page.close()
