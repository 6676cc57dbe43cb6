"""A compartment search of a patient the caller was allowed: its matches are judged without the per-row
test of the caller's patients (Policy.in_allowed_compartment), everything else as before."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects import postgresql

from app.resources.core_journal import CORE_JOURNAL_TYPES
from app.security.policy import Policy, PolicyConfig
from app.security.principal import Principal
from app.security.scopes import parse_scopes
from app.store.tables import resource
from tests.security.helpers import World, ids

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SUBJECT = resource.alias("subject")


def _sql(condition: Any) -> str:
    compiled = condition.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    constants = " ".join(str(v) for v in compiled.params.values() if isinstance(v, str))
    return f"{compiled} {constants}"


def _gp() -> Policy:
    principal = Principal(
        kind="personnel",
        subject="s",
        client_id="c",
        issuer="i",
        scopes=parse_scopes("user/*.rs"),
        hpr="565505933",
        orgnr="987654321",
    )
    return Policy(PolicyConfig.standard(CORE_JOURNAL_TYPES), principal, NOW)


def test_the_compartment_filter_leaves_out_the_care_test_and_keeps_blocks_and_reservations() -> None:
    gp = _gp()
    whole = _sql(gp.condition(SUBJECT, frozenset({"AllergyIntolerance"})))
    rows = gp.in_allowed_compartment()
    within = _sql(rows.condition(SUBJECT, frozenset({"AllergyIntolerance"})))
    assert "care" in whole
    assert "care" not in within
    for kept in ("block", "reservation"):  # the patient's own limits against others still apply per row
        assert kept in whole
        assert kept in within
    # statements holding it are cached apart from those holding the whole filter, with the same values
    assert rows.shape != gp.shape
    assert rows.parameters == gp.parameters


async def test_a_compartment_search_shows_the_patients_rows_and_hides_blocked_ones(world: World) -> None:
    found = await world.http.get("/Patient/kari/DocumentReference?_total=accurate", headers=world.hospital)
    assert found.status_code == 200
    assert ids(found.json()) == {"DocumentReference/kari-discharge"}  # not the blocked note
    assert found.json()["total"] == 1
    counted = await world.http.get("/Patient/kari/DocumentReference?_summary=count", headers=world.hospital)
    assert counted.json()["total"] == 1
    gp = await world.http.get("/Patient/kari/DocumentReference", headers=world.gp)
    assert "DocumentReference/kari-psych-note" in ids(gp.json())


async def test_includes_of_a_compartment_search_keep_the_whole_filter(world: World) -> None:
    """Kari's Observation names one of Nils's as a member: the GP (no care relation with Nils) gets Kari's
    and not the member, though the search is in a compartment the GP was allowed."""
    panel = {
        "resourceType": "Observation",
        "id": "kari-panel",
        "status": "final",
        "code": {"text": "Panel"},
        "subject": {"reference": "Patient/kari"},
        "hasMember": [{"reference": "Observation/nils-bp"}],
    }
    assert (await world.put(panel)).status_code in (200, 201)
    found = await world.http.get(
        "/Patient/kari/Observation?_id=kari-panel&_include=Observation:has-member", headers=world.gp
    )
    assert found.status_code == 200
    assert ids(found.json()) == {"Observation/kari-panel"}
    assert ids(found.json(), "include") == set()
    system = await world.http.get(
        "/Patient/kari/Observation?_id=kari-panel&_include=Observation:has-member", headers=world.system
    )
    assert ids(system.json(), "include") == {"Observation/nils-bp"}


async def test_a_write_in_a_batch_makes_its_later_searches_decide_again(world: World) -> None:
    """The hospital owns a Task for Nils (a care relation), searches his data, hands the Task on (ending
    the relation) and searches again, in one batch: the second search is refused, not answered from the
    request's earlier decision about Nils (which a compartment search's filter would rely on)."""
    task = {
        "resourceType": "Task",
        "id": "nils-task",
        "status": "in-progress",
        "intent": "order",
        "for": {"reference": "Patient/nils"},
        "owner": {"reference": "Organization/hospital"},
    }
    assert (await world.put(task)).status_code in (200, 201)
    handed_on = {**task, "owner": {"reference": "Organization/other-clinic"}}
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Observation?patient=Patient/nils"}},
            {"resource": handed_on, "request": {"method": "PUT", "url": "Task/nils-task"}},
            {"request": {"method": "GET", "url": "Observation?patient=Patient/nils"}},
        ],
    }
    response = await world.http.post("/", json=batch, headers=world.hospital)
    assert response.status_code == 200, response.text
    first, written, second = response.json()["entry"]
    assert first["response"]["status"].startswith("200"), first
    assert ids(first["resource"]) == {"Observation/nils-bp"}
    assert written["response"]["status"].startswith("200")
    assert second["response"]["status"].startswith("403")
