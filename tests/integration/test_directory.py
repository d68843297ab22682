"""Finding partnerships and networks: commands over HTTP, events through the relay and
Apache Kafka into the directory projection on PostgreSQL, answers over HTTP again
(the organisation: tests/integration/directory_world.py). Search forgives accents, case
and a typo; every filter is held to the unpaged answer filtered here, the flag filter to
the lifecycle board; pages concatenate to the unpaged answer; an opening answers with
its near-namesakes; an erased person partner leaves neither name nor trigrams behind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from domain.lifecycle import THRESHOLDS
from domain.people import person_key
from projections import directory
from projections.catalog import by_name
from projections.queries import cursor as cursors
from projections.queries.board import BoardQuery, board_page
from projections.rebuild import content_hash, rebuild_sync
from projections.registry import active_schema
from services import privacy
from services.api.app import create_app
from services.application import Verkosto
from services.erasure import erase_subject
from services.replay import StoreHistory
from services.settings import Settings
from tests.conftest import fresh_settings, opened_application
from tests.integration.directory_world import (
    ME,
    World,
    build,
    clients,
    follow,
    listing,
    names,
    open_partnership,
    post,
    project,
    similar,
)


@pytest.fixture(scope="module")
def world(database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with fresh_settings(database_url, kafka_bootstrap, Path(tmp_path_factory.mktemp("directory"))) as settings:
        headers, _ = clients(settings)
        with opened_application(settings) as app, TestClient(create_app(settings), headers=headers) as client:
            ids = build(client)
            project(app, settings)
            yield World(settings, app, client, ids)


def test_search_forgives_accents_case_and_a_typo(world: World) -> None:
    client = world.client
    assert names(client, "acme oy") == ["ACME Oy"]  # not every other "… Oy"
    assert names(client, "Äcme") == ["ACME Oy"]
    assert names(client, "Acne Oy") == ["ACME Oy"]  # one typo
    assert names(client, "aanekoski") == ["Äänekoski Works"] == names(client, "works")
    assert names(client, "cme") == ["ACME Oy"]  # a part of a word
    assert names(client, "Globex") == ["Globex Corporation"]
    assert names(client, "Initech Systems") == [] and "Globex Corporation" not in names(client, "acme")
    found = listing(client, q="acme oy")
    assert found["filters"]["sort"] == "relevance" and found["items"][0]["similarity"] == 1.0
    typo = listing(client, q="acne oy")["items"][0]["similarity"]
    assert typo == round(5 / 11, 6)  # pg_trgm's similarity: 5 trigrams shared of 11
    # Two letters: found where a word of the name begins with them, not inside one.
    open_names = [r["partner_name"] for r in listing(client, limit=200)["items"]]
    assert sorted(names(client, "oy")) == sorted(n for n in open_names if n.endswith(" Oy"))
    network = names(client, "nordik helth", "/v1/networks")
    assert network == ["Nordic Health Network"]


def test_every_filter_keeps_exactly_its_rows(world: World) -> None:
    client = world.client
    everything = listing(client, include_ended=True, limit=200)["items"]
    assert len(everything) == 30 and [r["partner_name"] for r in everything][:2] == ["Äänekoski Works", "ACME Oy"]
    rows = {r["partner_name"]: r for r in everything}
    assert rows["Globex Corporation"]["steward"] == "carol"  # the back-dated handover does not replace it
    assert rows["ACME Oy"]["segment"] == {"now": "+", "future": "++"}  # nor the back-dated segment
    assert rows["Nokia Oy"]["roles"] == ["funder"]
    questions: list[tuple[dict[str, Any], Any]] = [
        ({"steward": "me"}, lambda r: person_key(r["steward"]) == person_key(ME)),
        ({"steward": " oona STEWARD"}, lambda r: person_key(r["steward"]) == person_key(ME)),
        ({"unit": "sales"}, lambda r: r["owner_unit"] == "sales"),
        ({"stage": "prioritise"}, lambda r: r["stage"] == "prioritise"),
        ({"segment_now": "+"}, lambda r: (r["segment"] or {}).get("now") == "+"),
        ({"segment_future": "++"}, lambda r: (r["segment"] or {}).get("future") == "++"),
        ({"role": "funder"}, lambda r: "funder" in r["roles"]),
        (
            {"unit": "research", "role": "customer"},
            lambda r: r["owner_unit"] == "research" and "customer" in r["roles"],
        ),
    ]
    for filters, keeps in questions:
        expected = [r for r in everything if keeps(r)]
        assert 0 < len(expected) < len(everything), filters
        assert follow(client, **filters, include_ended=True, limit=2) == expected, filters
        assert follow(client, **filters, limit=3) == [r for r in expected if not r["ended"]], filters
    ended = [r for r in everything if r["ended"]]
    assert ended and all(r["stage"] == "ended" for r in ended)
    assert listing(client, limit=200)["items"] == [r for r in everything if not r["ended"]]
    mine = listing(client, steward="me")
    assert mine["filters"]["steward"] == "me" and mine["filters"]["include_ended"] is False


def test_a_flag_filter_keeps_what_the_board_flags_now(world: World) -> None:
    client = world.client
    with psycopg.connect(world.settings.require_database_url()) as conn:
        lifecycle, trust = (active_schema(conn, world.settings.db_schema, n) for n in ("lifecycle", "trust"))
        board, _ = board_page(conn, lifecycle, trust, BoardQuery(datetime.now(UTC), limit=1000), THRESHOLDS)
    flagged = {r["partnership_id"] for r in board if any(f["name"] == "under_served" for f in r["flags"])}
    everything = listing(client, limit=200)["items"]
    expected = [r for r in everything if r["id"] in flagged]
    assert 0 < len(expected) < len(everything)
    answer = listing(client, flag="under_served", limit=200)
    assert answer["items"] == expected and "as_of" in answer["filters"]
    assert follow(client, flag="under_served", limit=2) == expected
    sales = [r for r in expected if r["owner_unit"] == "sales"]
    assert sales and follow(client, flag="under_served", unit="sales", limit=1) == sales
    searched = listing(client, flag="under_served", q="acme")["items"]
    assert [r["id"] for r in searched] == [r["id"] for r in expected if r["partner_name"] == "ACME Oy"] != []


def test_pages_concatenate_to_the_unpaged_answer_and_cursors_name_no_one(world: World) -> None:
    client = world.client
    for params in ({"sort": "name"}, {"sort": "opened_at"}, {"q": "oy"}, {"q": "Kivi Ab", "sort": "name"}):
        whole = listing(client, **params, include_ended=True, limit=200)
        assert whole["next_cursor"] is None and whole["count"] > 1
        for limit in (1, 3, 7):
            assert follow(client, **params, include_ended=True, limit=limit) == whole["items"], (params, limit)
    by_opening = listing(client, sort="opened_at", limit=200)["items"]
    assert [r["opened_at"] for r in by_opening] == sorted(r["opened_at"] for r in by_opening)
    first = listing(client, q="oy", limit=2)
    assert [r["similarity"] for r in first["items"]] == sorted((r["similarity"] for r in first["items"]), reverse=True)
    key = cursors.decode(first["next_cursor"], (str, str, str))
    assert key[:2] == ["relevance", first["items"][-1]["id"]]  # the id and a score, never a name
    unknown = cursors.encode(["name", str(uuid.uuid4())])
    for bad in ("nonsense", "W10=", unknown, cursors.encode(["opened_at", first["items"][0]["id"]])):
        answer = client.get("/v1/partnerships", params={"cursor": bad, "sort": "name"})
        assert answer.status_code == 400 and answer.headers["content-type"] == "application/problem+json", bad
        assert answer.json()["code"] == "invalid_cursor"
    nan = cursors.encode(["relevance", first["items"][0]["id"], "NaN"])
    assert client.get("/v1/partnerships", params={"cursor": nan, "q": "oy"}).status_code == 400
    for params in ({"limit": 201}, {"sort": "relevance"}, {"q": "!!!"}, {"sort": "joined_at"}, {"stage": "nowhere"}):
        answer = client.get("/v1/partnerships", params=params)
        assert answer.status_code == 422 and answer.json()["code"] == "validation_failed", params


def test_networks_are_found_filtered_and_paged(world: World) -> None:
    client, path = world.client, "/v1/networks"
    everything = listing(client, path, include_ended=True, limit=200)["items"]
    assert [n["name"] for n in everything][:3] == ["Baltic Data Forum", "Kallio Verkosto", "Kivi Verkosto"]
    assert [n["name"] for n in everything if n["ended"]] == ["Old Forum"]
    assert [n for n in listing(client, path, limit=200)["items"]] == [n for n in everything if not n["ended"]]
    assert [n["activity"] for n in everything if n["name"] == "Baltic Data Forum"] == ["active"]
    for filters, keeps in (
        ({"role": "member"}, lambda n: n["role"] == "member"),
        ({"activity": "passive"}, lambda n: n["activity"] == "passive"),
        ({"purpose": "competence"}, lambda n: "competence" in n["purposes"]),
    ):
        expected = [n for n in everything if keeps(n)]
        assert expected and follow(client, path, **filters, include_ended=True, limit=2) == expected
    joined = listing(client, path, sort="joined_at", include_ended=True, limit=200)["items"]
    assert follow(client, path, sort="joined_at", include_ended=True, limit=2) == joined
    assert joined[0]["name"] == "Nordic Health Network" and names(client, "verkosto", path)
    assert client.get(path, params={"sort": "opened_at"}).status_code == 422


def test_an_opening_answers_with_its_near_namesakes_and_a_merge_hides_it(world: World) -> None:
    client, acme = world.client, world.ids["ACME Oy"]
    namesakes = client.get("/v1/partnerships/similar", params={"name": "Acme Oy."}).json()
    assert namesakes["items"] == [{"id": acme, "name": "ACME Oy", "similarity": 1.0}]
    assert similar(client, "Initech") == []
    body = {"partner": {"name": "Acme Oyj", "kind": "organisation", "roles": ["customer"]}, "owner_unit": "sales",
            "steward": "bob", "command_id": "open-acme-oyj"}  # fmt: skip
    opened = client.post("/v1/partnerships", json=body)
    assert opened.status_code == 201
    twin = opened.json()["id"]
    assert opened.json()["possible_duplicates"] == [{"id": acme, "name": "ACME Oy", "similarity": 0.7}]
    project(world.app, world.settings)
    again = client.post("/v1/partnerships", json=body)  # the same command: itself is not its duplicate
    assert again.status_code == 200 and again.json()["id"] == twin
    assert [d["id"] for d in again.json()["possible_duplicates"]] == [acme]
    third = post(client, "/v1/partnerships", {**body, "command_id": None})  # most alike first
    assert [(d["id"], d["similarity"]) for d in third["possible_duplicates"]] == [(twin, 1.0), (acme, 0.7)]
    post(client, f"/v1/partnerships/{twin}/events", {"type": "partnership_merged", "survivor_id": acme})
    project(world.app, world.settings)
    assert twin not in {r["id"] for r in listing(client, q="acme oyj")["items"]}
    merged = [r for r in listing(client, q="acme oyj", include_ended=True)["items"] if r["id"] == twin]
    assert merged and merged[0]["merged_into"] == acme and merged[0]["ended"] and merged[0]["stage"] == "ended"
    assert twin not in similar(client, "Acme Oyj")


def test_a_rebuild_lands_on_the_live_directory(world: World) -> None:
    url, projection = world.settings.require_database_url(), by_name("directory")
    with psycopg.connect(url) as conn:
        live = content_hash(
            conn, active_schema(conn, world.settings.db_schema, "directory").as_string(conn).strip('"'), projection
        )
    with StoreHistory(url, world.settings.db_schema) as history:
        _, schema = rebuild_sync(url, world.settings.db_schema, projection, lambda *_: None, source=history)
    with psycopg.connect(url) as conn:
        assert content_hash(conn, schema, projection) == live


def test_erasing_a_person_partner_takes_their_name_and_trigrams_out(app: Verkosto, settings: Settings) -> None:
    assert directory.ERASED == privacy.ERASED
    headers, reader = clients(settings)
    with TestClient(create_app(settings), headers=headers) as client:
        pid = open_partnership(client, "Ville Mäkitalo", "person", ["user"], "research", "bob", 1)
        other = open_partnership(client, "Ville Mäkelä Oy", "organisation", ["user"], "research", "bob", 2)
        project(app, settings)
        assert names(client, "ville makitalo") == ["Ville Mäkitalo", "Ville Mäkelä Oy"]
        erase_subject(settings.require_database_url(), settings.db_schema, f"partnership:{pid}")
        assert names(client, "ville makitalo") == ["Ville Mäkelä Oy"]
        row = [r for r in listing(client)["items"] if r["id"] == pid]
        assert row and row[0]["partner_name"] == "[erased]"
        assert names(client, "erased") == []  # an erased name is not a name to find
        assert similar(client, "Ville Mäkitalo", **reader) == [other]  # read with dashboards:read alone
        assert client.get("/v1/partnerships", headers={"Authorization": "Bearer nope"}).status_code == 401
    with psycopg.connect(settings.require_database_url()) as conn:
        rm = active_schema(conn, settings.db_schema, "directory")
        grams = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.partnership_trigrams WHERE partnership_id = %s").format(rm), (pid,)
        ).fetchone()
        text = conn.execute(sql.SQL("SELECT string_agg(d::text, ' ') FROM {}.partnerships d").format(rm)).fetchone()
    assert grams == (0,) and text is not None
    assert "Mäkitalo" not in text[0] and "makitalo" not in text[0] and "Mäkelä" in text[0]
