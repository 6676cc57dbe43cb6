"""Without authentication (AUTH_MODE=off, the local demo) the flow and $summary work the same, on SQLite
and PostgreSQL: the source system is then the server's unauthenticated principal."""

from __future__ import annotations

import httpx

from app.resources.core_journal.classify import source_references, sources
from app.resources.core_journal.codes import is_entry
from tests.resources.core_journal.builders import PENICILLIN, allergy


async def test_the_flow_and_the_summary_without_authentication(client: httpx.AsyncClient) -> None:
    patient = {"resourceType": "Patient", "id": "kari"}
    assert (await client.put("/Patient/kari", json=patient)).status_code == 201
    written = await client.post("/AllergyIntolerance", json=allergy(PENICILLIN))
    assert written.status_code == 201, written.text
    doc = (await client.get("/Patient/kari/$summary")).json()
    assert doc["type"] == "document"
    allergies = [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "AllergyIntolerance"]
    [entry] = allergies
    assert is_entry(entry)
    assert source_references(entry) == {f"AllergyIntolerance/{written.json()['id']}"}
    [source] = sources(entry)
    assert {"url": "system", "valueString": "helsebro/unauthenticated"} in source["extension"]
