"""The outgoing records made from one resource, in the order sent (pure): each later one `partOf` the one
before; records that do not form one chain are taken as nothing sent."""

from __future__ import annotations

from typing import Any

from app.adapters.kith.outgoing import chain


def _record(rid: str, after: str | None = None) -> dict[str, Any]:
    return {"id": rid, **({"partOf": [{"reference": f"Communication/{after}"}]} if after else {})}


def test_records_in_the_order_sent_whatever_order_they_are_found_in() -> None:
    records = [_record("c", "b"), _record("a"), _record("b", "a")]
    assert [r["id"] for r in chain(records)] == ["a", "b", "c"]
    assert chain([]) == []
    assert [r["id"] for r in chain([_record("a")])] == ["a"]


def test_two_heads_are_not_one_chain() -> None:
    assert chain([_record("a"), _record("b", "a"), _record("c", "a")]) == []
