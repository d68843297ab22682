"""The aggregate cache's copies are as private as deep copies, and the recorder's meta
rows from a domain event equal those parsed from its stored JSON."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from domain.base import DomainEvent
from domain.values import Channel, Direction, Tenure
from services.aggregate_cache import private_copy
from services.event_meta import meta_row, row_from
from services.eventstore import PydanticMapper
from tests.unit.builders import T0, joined, meta, opened


def test_a_private_copy_equals_a_deep_copy_and_shares_no_mutable_state() -> None:
    network: Any = joined()
    network.members.add(uuid.uuid4())
    clone: Any = private_copy(network)
    assert vars(clone) == vars(copy.deepcopy(network))
    clone.members.add(uuid.uuid4())
    assert len(network.members) == 1
    partnership = opened()
    twin: Any = private_copy(partnership)
    assert vars(twin) == vars(partnership) and type(twin) is type(partnership)
    twin.tenures.append(Tenure(owner_unit="x", steward="y", since=T0))
    twin._pending_events.append(object())  # type: ignore[arg-type]
    assert len(partnership.tenures) == 1 and partnership.pending_events == []


def test_meta_rows_from_the_domain_event_equal_those_parsed_from_its_stored_json() -> None:
    partnership = opened()
    partnership.log_contact(Channel("call"), Direction("inbound"), ("alice",), meta(3, actor="bob"))
    for event in partnership.collect_events():
        assert isinstance(event, DomainEvent)
        stored = PydanticMapper(transcoder=None).to_stored_event(event)  # type: ignore[arg-type]
        assert row_from(7, event.meta) == meta_row(7, stored.state)
        assert row_from(7, event.meta).occurred_at == event.meta.occurred_at


def test_odd_meta_is_left_to_sql_or_read_as_nothing() -> None:
    odd = meta_row(1, b'{"meta": {"actor": "a\\u0000b", "occurred_at": "yesterday", "recorded_at": 5}}')
    assert odd.actor == "a\ufffdb"
    assert (odd.occurred_at, odd.occurred_text) == (None, "yesterday")
    assert (odd.recorded_at, odd.recorded_text) == (None, "5")
    assert meta_row(2, b"not json") == (2, None, None, None, None, None, None)
    naive = meta_row(3, b'{"meta": {"occurred_at": "2025-01-01T10:00:00"}}')
    assert naive.occurred_text == "2025-01-01T10:00:00"  # SQL's meta_time reads it as UTC
