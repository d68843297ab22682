"""Segment portfolio: each partnership's segmentations in valid time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from contract.events import Published
from domain.partnership import Partnership
from domain.portfolio import Segmentation
from domain.values import Importance
from projections.documents import DocumentProjection


def fold_portfolio(doc: dict[str, Any] | None, published: Published) -> dict[str, Any] | None:
    event = published.event
    if isinstance(event, Partnership.Opened):
        return {"partner_name": event.partner.name, "segmentations": []}
    if doc is not None and isinstance(event, Partnership.Segmented):
        entry = [published.occurred_at, published.version, event.segment.now.value, event.segment.future.value]
        doc["segmentations"] = sorted([*doc["segmentations"], entry])
    return doc


def histories(docs: Mapping[str, dict[str, Any]]) -> dict[str, list[Segmentation]]:
    return {
        pid: [
            Segmentation(pid, doc["partner_name"], datetime.fromisoformat(at), Importance(now), Importance(future))
            for at, _version, now, future in doc["segmentations"]
        ]
        for pid, doc in docs.items()
    }


def portfolio_projection() -> DocumentProjection:
    return DocumentProjection("portfolio", (Partnership.Opened, Partnership.Segmented), fold_portfolio)
