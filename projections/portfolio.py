"""Segment portfolio: each partnership's segmentations in valid time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from domain.portfolio import Segmentation
from domain.values import Importance
from projections.documents import DocumentProjection, utc


def fold_portfolio(doc: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any] | None:
    kind, data = event["type"], event["data"]
    if kind == "partnership_opened":
        return {"partner_name": data["partner"]["name"], "segmentations": []}
    if doc is not None and kind == "segmented":
        at = utc(event["occurred_at"])
        entry = [at, event["version"], data["segment"]["now"], data["segment"]["future"]]
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
    return DocumentProjection("portfolio", frozenset({"partnership_opened", "segmented"}), fold_portfolio)
