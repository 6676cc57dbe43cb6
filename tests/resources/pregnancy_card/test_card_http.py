"""`GET /Patient/{id}/$pregnancy-card` through the REST API, on SQLite and PostgreSQL (authentication
off: what the document holds; the secured walk is in test_walk_http.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.resources.pregnancy_card.card import CARD_TYPE, SECTIONS
from app.resources.pregnancy_card.codes import CARD_SYSTEM
from tests.fhir.bundles import put_each, send
from tests.resources.pregnancy_card.builders import registered_pregnancy


async def stored(client: httpx.AsyncClient, resources: list[dict[str, Any]]) -> None:
    response = await send(client, put_each(*resources))
    assert response.status_code == 200, response.text


def section(composition: dict[str, Any], code: str) -> dict[str, Any]:
    return next(s for s in composition["section"] if s["code"]["coding"][0]["code"] == code)


def text(part: dict[str, Any]) -> str:
    return str(part["text"]["div"])


async def test_the_card_is_a_document_in_the_paper_cards_order(client: httpx.AsyncClient) -> None:
    await stored(client, registered_pregnancy("mari", "preg1"))
    response = await client.get("/Patient/mari/$pregnancy-card")
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["resourceType"] == "Bundle"
    assert document["type"] == "document"
    composition = document["entry"][0]["resource"]
    assert composition["type"]["coding"][0] == CARD_TYPE
    assert composition["subject"] == {"reference": "Patient/mari"}
    assert [s["code"]["coding"][0] for s in composition["section"]] == [
        {"system": CARD_SYSTEM, "code": s.code, "display": s.title} for s in SECTIONS
    ]
    # The ultrasound's due date wins over the one by LMP (2026-07-01 + 280 + 2 days of a 30-day cycle: 2027-04-09).
    dating = text(section(composition, "datering"))
    assert "Termin etter siste menstruasjon: 2027-04-09" in dating
    assert "Termin: 2027-04-06 (fastsatt etter ultralyd)" in dating
    consultations = section(composition, "konsultasjon")
    refs = [e["reference"] for e in consultations["entry"]]
    assert refs[:2] == ["Encounter/preg1-c1", "Encounter/preg1-c2"]  # in the order they took place
    assert "Blodtrykk: 112/70 mmHg" in text(consultations)
    assert "uke 17+0" in text(consultations)  # 2026-10-27 is 17+0 by the due date in force
    notes = section(composition, "notater")
    assert notes["entry"] == [{"reference": "Communication/preg1-q1"}]
    assert "Kan jeg fortsette å løpe?" in text(notes)
    pregnancy = section(composition, "svangerskapet")
    assert {"reference": "EpisodeOfCare/preg1"} in pregnancy["entry"]
    assert "Fastlege Kari Lege (Fastlege)" in text(pregnancy)
    assert "Følges opp av: Fastlege og jordmor" in text(pregnancy)
    # Every entry a section names is in the Bundle, once.
    urls = [
        e["fullUrl"].rsplit("/", 2)[-2] + "/" + e["fullUrl"].rsplit("/", 1)[-1] for e in document["entry"]
    ]
    assert len(urls) == len(set(urls))
    for part in composition["section"]:
        for sub in [part, *part.get("section", [])]:
            for entry in sub.get("entry", []):
                assert entry["reference"] in urls


async def test_the_same_data_gives_the_same_card(client: httpx.AsyncClient) -> None:
    await stored(client, registered_pregnancy("mari", "preg1"))
    first, second = [(await client.get("/Patient/mari/$pregnancy-card")).json() for _ in range(2)]
    for document in (first, second):
        for key in ("id", "identifier", "timestamp"):
            document.pop(key)
        document["entry"][0].pop("fullUrl")
        document["entry"][0]["resource"].pop("id")
        document["entry"][0]["resource"].pop("date")
    assert first == second


async def test_the_printable_card_renders_the_same_document(client: httpx.AsyncClient) -> None:
    await stored(client, registered_pregnancy("mari", "preg1"))
    response = await client.get("/Patient/mari/$pregnancy-card", params={"_format": "html"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<h1>Helsekort for gravide</h1>" in page
    assert "Mari Testesen, født 1994-05-17" in page
    assert "Termin: 2027-04-06 (fastsatt etter ultralyd)" in page
    assert (
        page.index("Termin og svangerskapslengde")
        < page.index("Konsultasjoner")
        < page.index("Kvinnens notater")
    )
    browser = await client.get("/Patient/mari/$pregnancy-card", headers={"Accept": "text/html,*/*"})
    assert browser.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("query", ["", "?episode=nope"])
async def test_no_pregnancy_is_404(client: httpx.AsyncClient, query: str) -> None:
    await stored(client, [r for r in registered_pregnancy("mari", "preg1") if r["resourceType"] == "Patient"])
    response = await client.get(f"/Patient/mari/$pregnancy-card{query}")
    assert response.status_code == 404, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_an_unknown_woman_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/Patient/nobody/$pregnancy-card")
    assert response.status_code == 404
