"""Issue 13's story end to end, against a running system: two networks sharing a broker
partner, one mandated and one past its best-before date and then revised, a candidate
missing entry requirements, a decision that overrides the recommendation, and
memberships that change between two quarter ends. Recorded through HTTP and one step
through Kafka; then the plan (JSON and Markdown), the graph measures held to networkx
run here on the story's own edge lists, and the networks and partnership pages in
Chromium with axe-core. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import networkx as nx
import pytest
from kafka import KafkaProducer
from networkx.algorithms import bipartite
from playwright.sync_api import Browser, Page

from tests.e2e.system import System, run_system
from tests.e2e.test_dashboard_forms import AXE, AXE_URL, RUN_AXE
from tests.e2e.test_dashboards import ARTIFACTS, Session, browser

__all__ = ["browser"]  # the module-scoped Chromium this module shares with test_dashboards

Q1_END = "2025-03-31T23:59:59.999999Z"
Q2_END = "2025-06-30T23:59:59.999999Z"
PLAN_AT = "2025-06-30T12:00:00Z"  # N2 past its best-before (2025-03-31), the keep decided
REVISED_AT = "2025-08-15T12:00:00Z"  # N2's best-before revised to 2025-12-31: not past
PARTNERS = {"A": "Arkki Oy", "B": "Broker Oy", "C": "Cedar Labs", "D": "Delta Works", "E": "Eko Ry", "F": "Fjord AB"}
CANDIDATE = "Open data alliance"
# Who was a member of which network at each quarter's end, as the story below records.
EDGES = {
    Q1_END: {("N1", "A"), ("N1", "B"), ("N1", "C"), ("N2", "B"), ("N2", "D")},
    Q2_END: {("N1", "A"), ("N1", "B"), ("N1", "F"), ("N2", "B"), ("N2", "D"), ("N2", "E"), ("N2", "C")},
}


def day(iso: str) -> str:
    return f"{iso}T10:00:00Z"


class Recorder:
    def __init__(self, system: System) -> None:
        self.system = system
        self.last: dict[str, int] = {}  # aggregate id -> position of its latest event

    def http(self, path: str, body: dict[str, Any]) -> str:
        response = self.system.post(path, body)
        assert response.status_code == 201, response.text
        self.last[response.json()["id"]] = response.json()["position"]
        return str(response.json()["id"])

    def network_over_kafka(self, body: dict[str, Any], network_id: str) -> None:
        """A network command sent to the commands topic, as a calendar sync or another
        system would; waited for in the network's history."""
        events = f"/v1/networks/{network_id}/history"
        expected = len(self.system.get(events).json()["events"]) + 1
        producer = KafkaProducer(bootstrap_servers=self.system.endpoints["kafka_bootstrap"], acks="all")
        producer.send(
            self.system.env["VERKOSTO_COMMANDS_TOPIC"],
            key=network_id.encode(),
            value=json.dumps({**body, "network_id": network_id, "actor": "membership-sync"}).encode(),
        )
        producer.flush()
        producer.close()
        deadline = time.monotonic() + 45
        while len(answer := self.system.get(events).json()["events"]) < expected:
            assert time.monotonic() < deadline, "the Kafka command was not recorded"
            time.sleep(0.2)
        assert answer[-1]["actor"] == "membership-sync"
        self.last[network_id] = answer[-1]["position"]

    def settle(self) -> None:
        """Every projection the assertions read has applied every aggregate's latest event."""
        for position in self.last.values():
            for path in ("/v1/projections/networks", "/v1/graph", "/v1/projections/lifecycle"):
                body = self.system.get(path, min_position=position, wait_ms=10_000).json()
                assert body["caught_up"], (path, body)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    yield from run_system(tmp_path_factory, "network-story")


@pytest.fixture(scope="module")
def story(system: System) -> dict[str, str]:
    r = Recorder(system)
    ids = {
        letter: r.http(
            "/v1/partnerships",
            {
                "partner": {"name": name, "kind": "organisation", "roles": ["customer"]},
                "owner_unit": "research",
                "steward": "Aino Aalto",
                "occurred_at": day("2024-12-01"),
            },
        )  # fmt: skip
        for letter, name in PARTNERS.items()
    }
    joined = {"role": "member", "activity": "active", "owner_unit": "research", "steward": "Aino Aalto"}
    ids["N1"] = r.http(
        "/v1/networks",
        {"name": "Regional council network", "purposes": ["mandated", "influence"], "best_before": "2025-04-30",
         "occurred_at": day("2025-01-10"), **joined},
    )  # fmt: skip
    ids["N2"] = r.http(
        "/v1/networks",
        {"name": "Data skills circle", "purposes": ["competence", "information_sharing"], "best_before": "2025-03-31",
         "occurred_at": day("2025-01-10"), **joined},
    )  # fmt: skip

    def event(network: str, body: dict[str, Any], when: str) -> None:
        r.http(f"/v1/networks/{ids[network]}/events", {**body, "occurred_at": day(when)})

    def member(kind: str, network: str, partner: str, when: str) -> None:
        event(network, {"type": kind, "partnership_id": ids[partner]}, when)

    for network, partner in (("N1", "A"), ("N1", "B"), ("N1", "C"), ("N2", "B"), ("N2", "D")):
        member("member_added", network, partner, "2025-01-20")
    member("member_added", "N1", "F", "2025-04-20")
    r.network_over_kafka(
        {"type": "member_added", "partnership_id": ids["E"], "occurred_at": day("2025-05-01")}, ids["N2"]
    )
    member("member_removed", "N1", "C", "2025-05-15")
    member("member_added", "N2", "C", "2025-05-20")
    # Ours under 20 h in N2: too little to judge fairness, so only its best-before decides.
    event("N1", {"type": "network_contribution_logged", "our_effort_hours": 10}, "2025-02-15")
    event("N2", {"type": "network_contribution_logged", "our_effort_hours": 12}, "2025-02-01")
    event("N2", {"type": "network_contribution_logged", "our_effort_hours": 6}, "2025-05-01")
    for network, partner, hours, outcome, when in (
        ("N1", "A", 5, "adequate", "2025-03-01"),
        ("N2", "B", 15, "excellent", "2025-03-01"),
        ("N2", "D", 15, "adequate", "2025-05-10"),
    ):
        event(network, {"type": "member_contribution_logged", "partnership_id": ids[partner], "effort_hours": hours,
                        "outcome": outcome}, when)  # fmt: skip
    requirements = {"competence": "met", "visibility": "missing", "reliability": "met", "own_resources": "missing",
                    "selective_loyalty": "partly_met"}  # fmt: skip
    r.http(
        "/v1/organisation/events",
        {"type": "network_considered", "name": CANDIDATE, "purposes": ["funding", "competence"],
         "requirements": requirements, "occurred_at": day("2025-05-01")},
    )  # fmt: skip
    r.http(
        "/v1/organisation/events",
        {"type": "plan_decided", "network_id": ids["N2"], "decision": "keep", "rationale": "we chair its final report",
         "decider": "Aino Aalto", "occurred_at": day("2025-06-15")},
    )  # fmt: skip
    event("N2", {"type": "best_before_revised", "best_before": "2025-12-31", "reason": "extended for the report"},
          "2025-07-01")  # fmt: skip
    r.settle()
    return ids


def plan(system: System, as_of: str) -> dict[str, Any]:
    answer = system.get("/v1/network-plan", as_of=as_of)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_plan_shows_to_join_the_decision_beside_the_recommendation_and_the_impact_of_leaving(
    system: System, story: dict[str, str]
) -> None:
    body = plan(system, PLAN_AT)
    networks = {n["name"]: n for n in body["networks"]}
    mandated, skills = networks["Regional council network"], networks["Data skills circle"]
    # Past its best-before, but mandated: never ours to leave; a note for the mandate owner.
    assert mandated["best_before_status"] == "passed" and mandated["recommendation"] != "leave"
    assert mandated["for_mandate_owner"] == ["best_before_passed"] and "mandate owner" in mandated["mandate_note"]
    assert (skills["recommendation"], skills["reason"]) == ("leave", "best_before_passed")
    assert skills["decision"]["decision"] == "keep" and skills["decision"]["decider"] == "Aino Aalto"
    assert (skills["course"], skills["overrides"]) == ("keep", True)
    assert mandated["overrides"] is False and mandated["decision"] is None
    (candidate,) = body["to_join"]
    assert (candidate["rank"], candidate["name"]) == (1, CANDIDATE)
    assert set(candidate["missing"]) == {"visibility", "own_resources"} and candidate["partly_met"] == [
        "selective_loyalty"
    ]
    # Funding is served by none of ours (1); competence by the circle we keep (0).
    assert (candidate["purpose_fit"], candidate["readiness"], candidate["priority"]) == (1, 0.5, 0.5)
    (leaving,) = body["leaving_impact"]
    assert (leaving["network_id"], leaving["basis"], leaving["effort_hours"]) == (story["N2"], "recommended", 18)
    # Broker Oy is in both networks: leaving the circle cuts off only those in it alone.
    assert [m["partner_name"] for m in leaving["sole_members"]] == ["Cedar Labs", "Delta Works", "Eko Ry"]

    markdown = system.http.get(
        "/v1/network-plan", params={"as_of": PLAN_AT}, headers={**system.auth(), "Accept": "text/markdown"}
    )
    text = markdown.text
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "## To join" in text and "## Impact of leaving" in text and "## Recommendation and decision" in text
    (row,) = [line for line in text.splitlines() if line.startswith(f"| 1 | {CANDIDATE} |")]
    assert "visibility" in row and "own_resources" in row
    assert (
        "| Data skills circle | leave (best_before_passed) | keep (overrides) | Aino Aalto "
        "| we chair its final report | 2025-06-15 |" in text
    )
    (impact,) = [line for line in text.splitlines() if line.startswith("- **Data skills circle** (recommended)")]
    assert "frees 18 h" in impact and "Cedar Labs, Delta Works, Eko Ry" in impact and "Broker Oy" not in impact

    # After the revision the circle's best-before is ahead: the rules no longer say leave,
    # the keep agrees with them, and nothing is left to weigh.
    later = {n["name"]: n for n in plan(system, REVISED_AT)["networks"]}
    assert later["Data skills circle"]["best_before"] == "2025-12-31"
    assert later["Data skills circle"]["best_before_status"] == "ok"
    assert later["Data skills circle"]["recommendation"] == "keep" and later["Data skills circle"]["overrides"] is False
    assert plan(system, REVISED_AT)["leaving_impact"] == []


def expected_measures(edges: set[tuple[str, str]]) -> dict[str, Any]:
    """networkx on the story's own edge list, with the definitions services/api/graph.py
    documents: bipartite degree centrality; betweenness on the networks linked where they
    share a partner; eigenvector per connected component; brokers found by removing each
    partner and seeing which of its networks fall apart."""
    networks = {n for n, _ in edges}
    graph = nx.Graph()
    graph.add_nodes_from(sorted(networks))
    graph.add_edges_from(sorted(edges))
    members = {n: {p for x, p in edges if x == n} for n in networks}
    linked = nx.Graph()
    linked.add_nodes_from(networks)
    linked.add_edges_from((a, b) for a in networks for b in networks if a < b and members[a] & members[b])
    eigen: dict[str, float] = {}
    for component in nx.connected_components(graph):
        eigen.update(nx.eigenvector_centrality(graph.subgraph(component), max_iter=1000))
    brokers = {}
    for partner in sorted({p for _, p in edges}):
        without = graph.copy()
        without.remove_node(partner)
        groups = {frozenset(nx.node_connected_component(without, n)) for n in graph[partner]}
        if len(groups) > 1:
            brokers[partner] = sorted(sorted(n for n in g if n in networks and n in graph[partner]) for g in groups)
    return {
        "members": {n: len(m) for n, m in members.items()},
        "degree": bipartite.degree_centrality(graph, networks),
        "betweenness": nx.betweenness_centrality(linked),
        "linked": dict(linked.degree),
        "eigenvector": eigen,
        "brokers": brokers,
    }


def test_the_graph_measures_at_two_quarter_ends_equal_networkx(system: System, story: dict[str, str]) -> None:
    letter = {v: k for k, v in story.items()}
    answer = system.http.get(
        "/v1/graph/measures", params={"from": "2025-01-01T00:00:00Z", "to": Q2_END}, headers=system.auth()
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [q["quarter"] for q in body["quarters"]] == ["2025-Q1", "2025-Q2"]
    trends = {letter[n["network_id"]]: n["trend"] for n in body["networks"]}
    assert EDGES[Q1_END] != EDGES[Q2_END]
    for i, moment in enumerate((Q1_END, Q2_END)):
        want, quarter = expected_measures(EDGES[moment]), body["quarters"][i]
        assert quarter["partnerships"] == len({p for _, p in EDGES[moment]}) and quarter["eigenvector_converged"]
        for network in ("N1", "N2"):
            got = trends[network][i]
            assert got["members"] == want["members"][network]
            assert got["degree_centrality"] == pytest.approx(want["degree"][network])
            assert got["betweenness"] == pytest.approx(want["betweenness"][network])
            assert got["linked_networks"] == want["linked"][network]
            assert got["eigenvector"] == pytest.approx(want["eigenvector"][network], abs=1e-4)
            assert got["brokers"] == sum(1 for p in want["brokers"] if (network, p) in EDGES[moment])
        brokers = {letter[b["partnership_id"]]: sorted(sorted(letter[n] for n in g) for g in b["separates"])
                   for b in quarter["brokers"]}  # fmt: skip
        assert brokers == want["brokers"] == {"B": [["N1"], ["N2"]]}  # Broker Oy ties the two
        assert [b["name"] for b in quarter["brokers"]] == ["Broker Oy"]
    drawing = system.get("/v1/graph", as_of=Q2_END, detail="networks").json()
    assert [s["count"] for s in drawing["shared_members"]] == [1]


@pytest.fixture(scope="module")
def session(browser: Browser, system: System, story: dict[str, str]) -> Iterator[Session]:
    issued = system.cli("token", "issue", "--name", "viewer", "--scope", "dashboards:read")
    assert issued.returncode == 0, issued.stderr
    signed_in = Session(browser, system, issued.stdout.strip())
    assert AXE.exists(), f"{AXE} is missing: run `make axe`"
    signed_in.context.route(f"**{AXE_URL}", lambda route: route.fulfill(path=str(AXE), content_type="text/javascript"))
    yield signed_in
    signed_in.close()


def grave_axe_violations(page: Page, session: Session) -> list[dict[str, Any]]:
    page.add_script_tag(url=session.url(AXE_URL))
    found: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    print(page.url, [(v["id"], v["impact"]) for v in found])  # for the record (pytest -s)
    return [v for v in found if v["impact"] in ("serious", "critical")]


def test_the_networks_page_draws_the_graph_the_trends_and_the_plan(session: Session, story: dict[str, str]) -> None:
    page = session.open("/dashboard/networks.html")
    page.wait_for_selector("#network-graph g.node")
    nodes = page.locator("#network-graph g.node")
    assert nodes.count() == 2 and page.locator("#network-graph line.link").count() == 1
    labels = nodes.evaluate_all("gs => gs.map(g => g.getAttribute('aria-label'))")
    assert any(
        s.startswith("Data skills circle: 4 members; shares partners with Regional council network (1)") for s in labels
    )
    nodes.first.focus()  # keyboard-focusable, with its name
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == labels[0]
    assert page.locator("#graph-pairs tr").count() == 2  # the drawing's text alternative: one pair
    assert "Data skills circle" in page.inner_text("#graph-pairs") and "Regional council network" in page.inner_text(
        "#graph-pairs"
    )
    # A sparkline per network for members and eigenvector, over the last eight quarters.
    assert page.locator("#trends tr[data-network]").count() == 2
    assert page.locator("#trends svg.spark polyline").count() >= 4
    spark = page.locator(f"#trends tr[data-network='{story['N2']}'] svg.spark").first.get_attribute("aria-label") or ""
    assert "2025-Q1 2" in spark and "2025-Q2 4" in spark  # members at the quarter ends
    to_join = page.inner_text("#to-join")
    assert CANDIDATE in to_join and "visibility, own_resources" in to_join
    decided = page.locator(f"#decisions tr[data-network='{story['N2']}']")
    assert "overrides" in decided.inner_text() and "we chair its final report" in decided.inner_text()
    assert "leave (best_before_passed)" in decided.inner_text()  # the rules' word, beside ours
    leaving = page.inner_text("#leaving")
    assert "Data skills circle" in leaving and "Cedar Labs, Delta Works, Eko Ry" in leaving
    assert "Regional council network" in page.inner_text("#mandate-notes")
    session.assert_no_violations(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#plan-section").screenshot(path=str(ARTIFACTS / "networks-plan.png"))
    page.locator("#graph-section").screenshot(path=str(ARTIFACTS / "network-graph.png"))
    assert grave_axe_violations(page, session) == []
    page.close()


def test_the_partnership_page_lists_its_networks(session: Session, story: dict[str, str]) -> None:
    page = session.open(f"/dashboard/partnership.html?id={story['B']}")
    page.wait_for_selector("#member-networks li")
    listed = page.locator("#member-networks li").all_inner_texts()
    assert [t.split(" — ")[0] for t in listed] == ["Data skills circle", "Regional council network"]
    assert all("member since 2025-01-20" in t for t in listed)
    session.assert_no_violations(page)
    assert grave_axe_violations(page, session) == []
    page.close()
    alone = session.open(f"/dashboard/partnership.html?id={story['A']}")
    alone.wait_for_selector("#member-networks li")
    assert alone.locator("#member-networks li").all_inner_texts()[0].startswith("Regional council network")
    alone.close()
