"""The graph over time through real PostgreSQL: two networks sharing a broker partner,
memberships that change (one back-dated), a network left and a partnership merged away;
the graph and its measures at two quarter ends, the measures held to networkx run here on
the edge lists the story implies; a rebuild equal to the live read model; erasure."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import networkx as nx
import psycopg
import pytest
from fastapi.testclient import TestClient
from networkx.algorithms import bipartite

from contract.commands import any_command
from projections.catalog import by_name
from projections.rebuild import content_hash, rebuild_sync
from projections.registry import active_schema
from services.api.app import create_app
from services.application import Accepted, Request, Verkosto
from services.auth import issue_token
from services.erasure import erase_subject
from services.replay import StoreHistory
from services.settings import Settings
from tests.integration.test_projections_fold import apply_all, deliver_like_a_bus, published

Q1_END = "2023-03-31T23:59:59.999999+00:00"
Q2_END = "2023-06-30T23:59:59.999999+00:00"
PERSON = "Ville Mäkitalo"
NAMES = ("A", "B", "C", "X", "Y", "a1", "a2", "b1", "c1")


def day(iso: str) -> str:
    return f"{iso}T12:00:00+00:00"


def story(app: Verkosto) -> dict[str, str]:
    """Who is who (letters to ids). X ties A to B; from May Y does too. c1 is in C, and a
    back-dated membership (recorded last) puts it in A from February. C is left in June,
    b1 leaves B in May, a1 is merged into a2 in June."""
    ids = {name: str(uuid.uuid4()) for name in NAMES}
    commands: list[dict[str, Any]] = []
    for name in ("A", "B", "C"):
        commands.append(
            {"type": "network_joined", "network_id": ids[name], "name": f"Network {name}", "purposes": ["influence"],
             "role": "member", "activity": "active", "owner_unit": "research", "steward": "alice",
             "occurred_at": day("2023-01-10")}
        )  # fmt: skip
    for name in ("X", "Y", "a1", "a2", "b1", "c1"):
        partner = {"name": PERSON if name == "b1" else f"Partner {name}", "roles": ["customer"]}
        partner["kind"] = "person" if name == "b1" else "organisation"
        commands.append(
            {"type": "partnership_opened", "partnership_id": ids[name], "partner": partner, "owner_unit": "research",
             "steward": "alice", "occurred_at": day("2023-01-05")}
        )  # fmt: skip

    def member(kind: str, network: str, partner: str, when: str) -> None:
        commands.append(
            {"type": kind, "network_id": ids[network], "partnership_id": ids[partner], "occurred_at": day(when)}
        )

    for network, partner in (("A", "a1"), ("A", "X"), ("B", "X"), ("B", "b1"), ("C", "c1")):
        member("member_added", network, partner, "2023-01-20")
    member("member_added", "A", "a2", "2023-04-10")
    member("member_added", "A", "Y", "2023-05-01")
    member("member_added", "B", "Y", "2023-05-01")
    member("member_removed", "B", "b1", "2023-05-20")
    commands.append(
        {"type": "network_left", "network_id": ids["C"], "reason": "mandate_ended", "occurred_at": day("2023-06-01")}
    )
    commands.append(
        {"type": "partnership_merged", "partnership_id": ids["a1"], "survivor_id": ids["a2"],
         "occurred_at": day("2023-06-10")}
    )  # fmt: skip
    member("member_added", "A", "c1", "2023-02-01")  # recorded last, in force since February
    for command in commands:
        (outcome,) = app.execute([Request(any_command.validate_python(command), "tester", "api")])
        assert isinstance(outcome, Accepted), (command, outcome)
    return ids


# What the story says held at each quarter's end, by letter.
EDGES = {
    Q1_END: {("A", "a1"), ("A", "X"), ("A", "c1"), ("B", "X"), ("B", "b1"), ("C", "c1")},
    Q2_END: {("A", "X"), ("A", "c1"), ("A", "a2"), ("A", "Y"), ("B", "X"), ("B", "Y")},
}
NETWORKS = {Q1_END: {"A", "B", "C"}, Q2_END: {"A", "B"}}


def expected_measures(networks: set[str], edges: set[tuple[str, str]]) -> dict[str, Any]:
    """networkx on the story's own edge list; brokers found by removing each partner."""
    graph = nx.Graph()
    graph.add_nodes_from(sorted(networks))
    graph.add_edges_from(sorted(edges))
    partners = {p for _, p in edges}
    degree = bipartite.degree_centrality(graph, networks)
    # The networks' own graph, linked where two share a partner, made here from the list.
    members = {n: {p for x, p in edges if x == n} for n in networks}
    linked = nx.Graph()
    linked.add_nodes_from(networks)
    linked.add_edges_from((a, b) for a in networks for b in networks if a < b and members[a] & members[b])
    between = nx.betweenness_centrality(linked)
    eigen: dict[str, float] = {}
    for component in nx.connected_components(graph):
        if len(component) > 1:
            eigen.update(nx.eigenvector_centrality(graph.subgraph(component), max_iter=1000))
    brokers = {}
    for partner in sorted(partners):
        without = graph.copy()
        without.remove_node(partner)
        groups = {frozenset(nx.node_connected_component(without, n)) for n in graph[partner]}
        if len(groups) > 1:
            brokers[partner] = sorted(
                sorted(n for n in group if n in networks and n in graph[partner]) for group in groups
            )
    return {
        "degree": degree,
        "betweenness": between,
        "linked": dict(linked.degree),
        "eigenvector": eigen,
        "brokers": brokers,
    }


@pytest.fixture
def world(app: Verkosto, settings: Settings) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    ids = story(app)
    apply_all(settings, deliver_like_a_bus(published(app), seed=17))  # interleaved, some twice
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        token = issue_token(conn, settings.db_schema, "viewer", ["dashboards:read"])
    with TestClient(create_app(settings)) as client:
        yield client, {"Authorization": f"Bearer {token}"}, ids


def test_the_graph_at_two_quarter_ends(world: tuple[TestClient, dict[str, str], dict[str, str]]) -> None:
    client, headers, ids = world
    letter = {v: k for k, v in ids.items()}
    for moment, edges in EDGES.items():
        answer = client.get("/v1/graph", params={"as_of": moment}, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert {(letter[e["network_id"]], letter[e["partnership_id"]]) for e in body["edges"]} == edges
        networks = [(letter[n["id"]], n["name"], n["members"]) for n in body["nodes"] if n["kind"] == "network"]
        assert networks == [(n, f"Network {n}", sum(1 for e in edges if e[0] == n)) for n in sorted(NETWORKS[moment])]
        partners = {letter[n["id"]] for n in body["nodes"] if n["kind"] == "partnership"}
        assert partners == {p for _, p in edges}
        shared = {(tuple(letter[n] for n in s["networks"]), frozenset(letter[p] for p in s["partnerships"]))
                  for s in body["shared_members"]}  # fmt: skip
        members = {n: {p for x, p in edges if x == n} for n in NETWORKS[moment]}
        expected = {
            (tuple(sorted((a, b), key=ids.__getitem__)), frozenset(members[a] & members[b]))
            for a in members
            for b in members
            if a < b and members[a] & members[b]
        }
        assert shared == expected
    q1 = client.get("/v1/graph", params={"as_of": Q1_END}, headers=headers).json()
    since = {(letter[e["network_id"]], letter[e["partnership_id"]]): e["since"] for e in q1["edges"]}
    # Back-dated: in force from when it took effect, not from when it was recorded.
    assert datetime.fromisoformat(since[("A", "c1")]) == datetime(2023, 2, 1, 12, tzinfo=UTC)
    drawing = client.get("/v1/graph", params={"as_of": Q1_END, "detail": "networks"}, headers=headers).json()
    assert drawing["edges"] == [] and {n["kind"] for n in drawing["nodes"]} == {"network"}
    counts = [{"networks": s["networks"], "count": len(s["partnerships"])} for s in q1["shared_members"]]
    assert drawing["shared_members"] == counts


def test_the_measures_at_two_quarter_ends_equal_networkx_on_the_story(
    world: tuple[TestClient, dict[str, str], dict[str, str]],
) -> None:
    client, headers, ids = world
    letter = {v: k for k, v in ids.items()}
    answer = client.get("/v1/graph/measures", params={"from": "2023-01-01T00:00:00Z", "to": Q2_END}, headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [q["quarter"] for q in body["quarters"]] == ["2023-Q1", "2023-Q2"]
    by_network = {letter[n["network_id"]]: n for n in body["networks"]}
    assert by_network["C"]["trend"][1] is None  # left in June
    for i, moment in enumerate((Q1_END, Q2_END)):
        quarter = body["quarters"][i]
        want = expected_measures(NETWORKS[moment], EDGES[moment])
        assert quarter["eigenvector_converged"] is True
        brokers = {
            letter[b["partnership_id"]]: [[letter[n] for n in g] for g in b["separates"]] for b in quarter["brokers"]
        }
        assert {p: sorted(sorted(g) for g in groups) for p, groups in brokers.items()} == want["brokers"]
        for network in NETWORKS[moment]:
            got = by_network[network]["trend"][i]
            assert got["members"] == sum(1 for n, _ in EDGES[moment] if n == network)
            assert got["degree_centrality"] == pytest.approx(want["degree"][network])
            assert got["betweenness"] == pytest.approx(want["betweenness"][network])
            assert got["linked_networks"] == want["linked"][network]
            assert got["eigenvector"] == pytest.approx(want["eigenvector"][network], abs=1e-4)
    first = body["quarters"][0]
    assert {letter[b["partnership_id"]] for b in first["brokers"]} == {"X", "c1"}
    assert body["quarters"][1]["brokers"] == []  # Y ties A to B as well by then


def test_bad_ranges_are_problems(world: tuple[TestClient, dict[str, str], dict[str, str]], settings: Settings) -> None:
    client, headers, _ = world
    for params in ({"from": Q2_END, "to": Q1_END}, {"from": "2010-01-01T00:00:00Z", "to": Q2_END}):
        answer = client.get("/v1/graph/measures", params=params, headers=headers)
        assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["field"] == "query.from"
    assert client.get("/v1/graph", params={"as_of": "yesterday"}, headers=headers).status_code == 422
    assert client.get("/v1/graph").status_code == 401
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        writer = issue_token(conn, settings.db_schema, "writer", ["events:write"])
    assert client.get("/v1/graph", headers={"Authorization": f"Bearer {writer}"}).status_code == 403


def test_a_rebuild_equals_the_live_graph_and_erasure_reaches_it(
    world: tuple[TestClient, dict[str, str], dict[str, str]], settings: Settings
) -> None:
    client, headers, ids = world
    url, projection = settings.require_database_url(), by_name("graph")
    with psycopg.connect(url) as conn:
        live = active_schema(conn, settings.db_schema, "graph").as_string(conn).strip('"')
        live_hash = content_hash(conn, live, projection)
        assert conn.execute(f'SELECT count(*) FROM "{live}".memberships').fetchone() == (9,)
    with StoreHistory(url, settings.db_schema) as history:
        _, rebuilt = rebuild_sync(url, settings.db_schema, projection, lambda *_: None, source=history)
    with psycopg.connect(url) as conn:
        assert content_hash(conn, rebuilt, projection) == live_hash
    erase_subject(url, settings.db_schema, f"partnership:{ids['b1']}")
    with psycopg.connect(url) as conn:
        erased = active_schema(conn, settings.db_schema, "graph").as_string(conn)
        (text,) = conn.execute(f"SELECT string_agg(t::text, ' ') FROM {erased}.nodes t").fetchone()  # type: ignore[misc]
    assert PERSON not in text and "Mäkitalo" not in text and "Partner X" in text
    nodes = client.get("/v1/graph", params={"as_of": Q1_END}, headers=headers).json()["nodes"]
    assert [n["name"] for n in nodes if n["id"] == ids["b1"]] == ["[erased]"]
