"""The graph of networks and partners over time, and its network measures per quarter.

The measures are networkx's, on the bipartite graph as of each quarter's end (networks on
one side, partnerships in at least one network on the other, an edge per membership):

* ``members`` and ``degree_centrality``: networkx.algorithms.bipartite.degree_centrality,
  a network's members over all partnerships in the graph (null when it has none at all).
* ``betweenness``: nx.betweenness_centrality, exact and normalised, on the networks'
  one-mode projection (bipartite.projected_graph: two networks are adjacent when they
  share a partnership; ``linked_networks`` is a network's degree there). Not on the
  bipartite graph itself: exact Brandes there costs nodes x edges, 90-140 s for each
  quarter at 5,000 partners and 200 networks, and networkx's pivot estimate (200 pivots)
  was 31 % off for the median network (tests/benchmarks/graph_bench.py --exact).
* ``eigenvector``: nx.eigenvector_centrality on the bipartite graph within each connected
  component (unit norm per component), because on a disconnected graph the leading
  eigenvector is zero outside the largest component: values compare nodes of one
  component, whose size is ``component_networks``. An isolated network has 0. A
  component whose power iteration does not converge has null, and its quarter says
  ``eigenvector_converged: false``.
* ``brokers``: partnerships whose removal disconnects networks that were connected, i.e.
  the partner articulation points of the bipartite graph, found from
  nx.biconnected_components: a partnership lying in two or more blocks. ``separates``
  lists its networks grouped by block: networks of one group stay connected without it,
  networks of different groups do not. A network's ``brokers`` counts the brokers among
  its members.

A quarter (UTC) is measured as of its last moment, or as of ``to`` while it runs.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import networkx as nx
from fastapi import APIRouter, Query
from networkx.algorithms import bipartite

from contract.commands import When
from domain.portfolio import quarters
from projections.queries import graph as queries
from projections.queries.reading import position
from projections.registry import active_schema
from services.api.deps import ServicesDep
from services.api.freshness import await_position
from services.api.problems import Problem
from services.api.projections import AsOf, Dashboard, MinPosition, WaitMs

router = APIRouter(tags=["projections"])
PROJECTION = "graph"
MAX_QUARTERS = 40
Node = tuple[str, str]  # ("n", network id) or ("p", partnership id): the two sides never collide


def _graph(networks: frozenset[str], edges: frozenset[queries.Edge]) -> tuple[nx.Graph, list[Node], list[Node]]:
    """The bipartite graph, built in sorted order so that every traversal is repeatable."""
    tops = [("n", n) for n in sorted(networks | {n for n, _ in edges})]
    bottoms = [("p", p) for p in sorted({p for _, p in edges})]
    graph = nx.Graph()
    graph.add_nodes_from(tops, bipartite=0)
    graph.add_nodes_from(bottoms, bipartite=1)
    graph.add_edges_from(sorted((("n", n), ("p", p)) for n, p in edges))
    return graph, tops, bottoms


def _eigenvector(graph: nx.Graph) -> tuple[dict[Node, float | None], list[set[Node]]]:
    found: dict[Node, float | None] = {}
    components = sorted((set(c) for c in nx.connected_components(graph)), key=lambda c: min(c))
    for component in components:
        if len(component) == 1:
            found.update(dict.fromkeys(component, 0.0))
            continue
        try:
            # A copy, not a view: the power iteration walks the edges hundreds of times.
            found.update(nx.eigenvector_centrality(graph.subgraph(component).copy(), max_iter=1_000))
        except nx.PowerIterationFailedConvergence:
            found.update(dict.fromkeys(component, None))
    return found, components


def _brokers(graph: nx.Graph) -> dict[Node, list[list[str]]]:
    """Each partner articulation point, and its networks grouped by biconnected block."""
    blocks: dict[Node, list[list[str]]] = {}
    for block in nx.biconnected_components(graph):
        for node in block:
            if node[0] == "p":
                mine = sorted(n[1] for n in graph[node] if n in block)
                blocks.setdefault(node, []).append(mine)
    return {node: sorted(groups) for node, groups in blocks.items() if len(groups) > 1}


def measure(networks: frozenset[str], edges: frozenset[queries.Edge]) -> dict[str, Any]:
    """Every measure of one graph (see the module's docstring), by network, and its brokers."""
    graph, tops, bottoms = _graph(networks, edges)
    degree = bipartite.degree_centrality(graph, tops) if tops and bottoms else {}
    projection = bipartite.projected_graph(graph, tops)
    between = nx.betweenness_centrality(projection)
    eigen, components = _eigenvector(graph)
    brokers = _brokers(graph)
    sizes = {node: sum(1 for n in c if n[0] == "n") for c in components for node in c}
    broker_count = {top: sum(1 for p in graph[top] if p in brokers) for top in tops}
    return {
        "partnerships": len(bottoms),
        "memberships": graph.number_of_edges(),
        "components": len(components),
        "eigenvector_converged": all(value is not None for value in eigen.values()),
        "networks": {
            top[1]: {
                "members": graph.degree(top),
                "degree_centrality": degree.get(top),
                "linked_networks": projection.degree(top),
                "betweenness": between[top],
                "eigenvector": eigen[top],
                "component_networks": sizes[top],
                "brokers": broker_count[top],
            }
            for top in tops
        },
        "brokers": [{"partnership_id": node[1], "separates": groups} for node, groups in sorted(brokers.items())],
    }


# Computed once per graph (a quarter whose graph did not change since is not computed
# again), kept by a digest of the graph (not the graph itself: tens of thousands of
# edges each), and one at a time: the work is CPU-bound, so two at once gain nothing.
CACHED = 256
_cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
_computing = threading.Lock()


def measured(networks: set[str], edges: set[queries.Edge]) -> dict[str, Any]:
    digest = hashlib.sha256(repr((sorted(networks), sorted(edges))).encode()).hexdigest()
    with _computing:
        if digest not in _cache:
            _cache[digest] = measure(frozenset(networks), frozenset(edges))
            while len(_cache) > CACHED:
                _cache.popitem(last=False)
        _cache.move_to_end(digest)
        return _cache[digest]


def _invalid(field: str, message: str) -> Problem:
    name = f"query.{field}"
    errors = [{"field": name, "message": message, "type": "invalid_parameter"}]
    return Problem(
        422, "validation_failed", "The request is not valid", f"{name}: {message}", field=name, errors=errors
    )


def quarter_ends(start: datetime, end: datetime) -> list[tuple[str, datetime]]:
    """Each quarter from ``start``'s to ``end``'s, as (label, the moment it is measured
    at): its last microsecond, or ``end`` while it runs."""
    last = timedelta(microseconds=1)
    return [(label, end if finish > end else finish - last) for label, _, finish in quarters(start, end)]


def quarter_start(moment: datetime, back: int) -> datetime:
    """The first moment of the quarter ``back`` quarters before ``moment``'s (UTC)."""
    moment = moment.astimezone(UTC)
    index = moment.year * 4 + (moment.month - 1) // 3 - back
    return datetime(index // 4, index % 4 * 3 + 1, 1, tzinfo=UTC)


def _freshness(services: ServicesDep, conn: Any, caught_up: bool) -> tuple[Any, dict[str, Any]]:
    rm = active_schema(conn, services.settings.db_schema, PROJECTION)
    return rm, {"projection": PROJECTION, "position": position(conn, rm), "caught_up": caught_up}


def _quarter(label: str, at: datetime, measures: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    brokers = [{**b, "name": names.get(b["partnership_id"])} for b in measures["brokers"]]
    return {"quarter": label, "as_of": at, **{k: v for k, v in measures.items() if k != "networks"}, "brokers": brokers}


@router.get("/v1/graph")
def get_graph(
    _: Dashboard,
    services: ServicesDep,
    as_of: AsOf = None,
    detail: Annotated[
        Literal["full", "networks"], Query(description="`networks`: networks and shared-member counts only (a drawing)")
    ] = "full",
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any]:
    """The bipartite graph of networks and partnerships as of a moment: nodes, membership
    edges, and for each pair of networks the partnerships in both."""
    moment = as_of or datetime.now(UTC)
    caught_up = await_position(services, PROJECTION, min_position, wait_ms)
    with services.pool.connection() as conn:
        rm, answer = _freshness(services, conn, caught_up)
        graph = queries.graph_at(conn, rm, moment, partners=detail == "full")
    return {**answer, "as_of": moment, **graph}


@router.get("/v1/graph/measures")
def get_measures(
    _: Dashboard,
    services: ServicesDep,
    start: Annotated[
        When | None, Query(alias="from", description="In the first quarter (default: 7 before `to`'s)")
    ] = None,
    end: Annotated[When | None, Query(alias="to", description="In the last quarter (default now)")] = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 3_000,
) -> dict[str, Any]:
    """Per quarter, each network's degree, betweenness and eigenvector centrality and the
    brokers between otherwise separate networks (definitions: the module's docstring in
    services/api/graph.py). ``networks[].trend`` follows ``quarters``; null where the
    network was not one of ours then."""
    end = end or datetime.now(UTC)
    if start is None:
        start = quarter_start(end, back=7)
    if start > end:
        raise _invalid("from", "`from` is after `to`")
    ends = quarter_ends(start, end)
    if len(ends) > MAX_QUARTERS:
        raise _invalid("from", f"{len(ends)} quarters asked for; at most {MAX_QUARTERS}")
    caught_up = await_position(services, PROJECTION, min_position, wait_ms)
    moments = [at for _, at in ends]
    with services.pool.connection() as conn:
        rm, answer = _freshness(services, conn, caught_up)
        edges, networks = queries.edges_at(conn, rm, moments), queries.networks_at(conn, rm, moments)
    # Computed without a connection held: other requests need them meanwhile.
    results = [measured(n, e) for n, e in zip(networks, edges, strict=True)]
    every = sorted({n for m in results for n in m["networks"]})
    with services.pool.connection() as conn:
        names = queries.names(conn, rm, every + [b["partnership_id"] for m in results for b in m["brokers"]])
    series = [{"network_id": n, "name": names.get(n), "trend": [m["networks"].get(n) for m in results]} for n in every]
    return {
        **answer,
        "from": start,
        "to": end,
        "quarters": [_quarter(label, at, m, names) for (label, at), m in zip(ends, results, strict=True)],
        "networks": sorted(series, key=lambda s: (s["name"] or "", s["network_id"])),
    }
