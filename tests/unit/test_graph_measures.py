"""The network measures on small graphs whose answers are worked out by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import networkx as nx
import pytest

from services.api import graph as measures
from services.api.graph import measure, measured, quarter_ends, quarter_start


def run(networks: set[str], edges: set[tuple[str, str]]) -> dict:
    return measure(frozenset(networks), frozenset(edges))


# a1 - A - X - B - b1, and a2 - A: X alone ties A to B.
CHAIN = {("A", "a1"), ("A", "a2"), ("A", "X"), ("B", "X"), ("B", "b1")}


def test_degree_is_members_over_every_partnership_in_the_graph() -> None:
    found = run({"A", "B"}, CHAIN)["networks"]
    assert (found["A"]["members"], found["B"]["members"]) == (3, 2)
    assert found["A"]["degree_centrality"] == pytest.approx(3 / 4)
    assert found["B"]["degree_centrality"] == pytest.approx(2 / 4)


def test_betweenness_is_taken_between_networks_linked_by_shared_partners() -> None:
    # A - X - B - Y - C: in the networks' projection A - B - C, B lies on the one path
    # between the other two; normalised over the one pair of others there is.
    edges = {("A", "a1"), ("A", "X"), ("B", "X"), ("B", "Y"), ("C", "Y"), ("C", "c1")}
    found = run({"A", "B", "C"}, edges)["networks"]
    assert [found[n]["betweenness"] for n in "ABC"] == [0.0, 1.0, 0.0]
    assert [found[n]["linked_networks"] for n in "ABC"] == [1, 2, 1]
    # Two networks alone lie between nothing.
    assert run({"A", "B"}, CHAIN)["networks"]["A"]["betweenness"] == 0.0


def test_a_partner_alone_between_two_networks_is_a_broker() -> None:
    found = run({"A", "B"}, CHAIN)
    assert found["brokers"][0]["separates"] == [["A"], ["B"]]
    assert found["networks"]["A"]["brokers"] == 1 and found["networks"]["B"]["brokers"] == 1


def test_a_second_shared_partner_means_neither_is_a_broker() -> None:
    found = run({"A", "B"}, CHAIN | {("A", "Y"), ("B", "Y")})
    assert found["brokers"] == []
    assert found["networks"]["A"]["brokers"] == 0


def test_a_broker_separates_groups_of_networks_that_hold_together_without_it() -> None:
    # X is in A, B and C; Y ties B and C as well, so only A hangs on X alone.
    edges = {("A", "X"), ("B", "X"), ("C", "X"), ("B", "Y"), ("C", "Y"), ("A", "a1")}
    found = run({"A", "B", "C"}, edges)
    assert [(b["partnership_id"], b["separates"]) for b in found["brokers"]] == [("X", [["A"], ["B", "C"]])]


def test_a_partner_in_one_network_only_brokers_nothing() -> None:
    assert run({"A"}, {("A", "a1"), ("A", "a2")})["brokers"] == []


def test_eigenvector_is_taken_within_each_component() -> None:
    # A pair A - a1; a star C with three members; D with nobody.
    edges = {("A", "a1"), ("C", "c1"), ("C", "c2"), ("C", "c3")}
    found = run({"A", "C", "D"}, edges)
    networks = found["networks"]
    assert networks["A"]["eigenvector"] == pytest.approx(1 / math.sqrt(2), abs=1e-4)
    # A star's centre: sqrt(3) against 1 for each leaf, over a unit norm.
    assert networks["C"]["eigenvector"] == pytest.approx(math.sqrt(3) / math.sqrt(6), abs=1e-4)
    assert networks["D"]["eigenvector"] == 0.0
    assert [networks[n]["component_networks"] for n in "ACD"] == [1, 1, 1]
    assert found["components"] == 3 and found["eigenvector_converged"] is True
    # On the whole graph networkx's leading eigenvector has nothing outside the star:
    # which is why it is taken per component.
    whole = nx.Graph([(f"n{a}", f"p{b}") for a, b in edges])
    assert nx.eigenvector_centrality(whole, max_iter=1000)["nA"] < 0.05 < networks["A"]["eigenvector"]


def test_a_component_that_does_not_converge_is_null_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(*_: object, **__: object) -> None:
        raise nx.PowerIterationFailedConvergence(1000)

    monkeypatch.setattr(measures.nx, "eigenvector_centrality", fails)
    found = run({"A", "B"}, CHAIN)
    assert found["eigenvector_converged"] is False
    assert found["networks"]["A"]["eigenvector"] is None


def test_networks_without_members_have_no_degree_centrality_to_give() -> None:
    found = run({"A", "B"}, set())
    assert found["networks"]["A"] == {
        "members": 0,
        "degree_centrality": None,
        "linked_networks": 0,
        "betweenness": 0.0,
        "eigenvector": 0.0,
        "component_networks": 1,
        "brokers": 0,
    }
    assert (found["partnerships"], found["memberships"], found["brokers"]) == (0, 0, [])


def test_betweenness_on_a_ring_of_networks_is_networkx_on_the_ring() -> None:
    # 30 networks in a ring, each with 9 members of its own and one shared with the next.
    edges = {(f"N{i:02}", f"m{i:02}-{k}") for i in range(30) for k in range(9)}
    edges |= {(f"N{i:02}", f"s{i:02}") for i in range(30)} | {(f"N{(i + 1) % 30:02}", f"s{i:02}") for i in range(30)}
    found = run({f"N{i:02}" for i in range(30)}, edges)["networks"]
    ring = nx.betweenness_centrality(nx.cycle_graph(30))[0]
    assert [value["betweenness"] for value in found.values()] == pytest.approx([ring] * 30)
    assert {value["linked_networks"] for value in found.values()} == {2}


def test_the_same_graph_is_measured_once() -> None:
    a = measured({"A", "B"}, set(CHAIN))
    assert measured({"B", "A"}, set(sorted(CHAIN))) is a
    assert measured({"A", "B"}, CHAIN - {("B", "b1")}) is not a


def test_quarters_end_at_their_last_moment_or_at_to_while_running() -> None:
    start, end = datetime(2024, 2, 10, tzinfo=UTC), datetime(2024, 8, 15, 12, tzinfo=UTC)
    assert quarter_ends(start, end) == [
        ("2024-Q1", datetime(2024, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2024-Q2", datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2024-Q3", end),
    ]
    assert quarter_start(end, back=7) == datetime(2022, 10, 1, tzinfo=UTC)
    assert quarter_start(datetime(2024, 1, 1, tzinfo=UTC), back=0) == datetime(2024, 1, 1, tzinfo=UTC)
    assert len(quarter_ends(quarter_start(end, back=7), end)) == 8
