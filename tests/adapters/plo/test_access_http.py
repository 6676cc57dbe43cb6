"""PLO paths to Kari's data in the secured care setting of tests/security: `GET /Task/$discharge-ready`
reads through the engine as the caller, and a report or a stay written on FHIR goes out only for a
write the policy allowed; a stranger organisation and another citizen find and send nothing."""

from __future__ import annotations

from app.adapters.epikrise.to_fhir import EXT_RECIPIENT
from app.adapters.kith.intake import OUTGOING_CATEGORY
from app.adapters.plo.clock import CLOCK_SYSTEM, TASK_CODE
from app.adapters.plo.model import Family
from app.adapters.plo.report_fhir import FAMILY_SYSTEM
from app.resources.no_basis.identifiers import HERID_SYSTEM
from tests.security.conftest import world
from tests.security.helpers import World

__all__ = ["world"]


def notice() -> dict[str, object]:
    return {
        "resourceType": "Task",
        "id": "kari-discharge-ready",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [TASK_CODE]},
        "for": {"reference": "Patient/kari"},
        "owner": {"reference": "Organization/gp-office"},
        "input": [
            {"type": {"coding": [{"system": CLOCK_SYSTEM, "code": "noticeDate"}]}, "valueDate": "2026-12-01"}
        ],
    }


async def test_a_stranger_organisation_and_another_citizen_find_no_notice(world: World) -> None:
    assert (await world.put(notice())).status_code == 201
    url = "/Task/$discharge-ready?today=2026-12-07"
    seen = await world.http.get(url, headers=world.gp)
    assert seen.status_code == 200, seen.text
    assert "Patient/kari" in seen.text  # the care relation's organisation sees the notice
    for stranger in (world.other, world.nils):
        answer = await world.http.get(url, headers=stranger)
        assert answer.status_code == 200, answer.text
        assert "kari" not in answer.text


def report(comp_id: str) -> dict[str, object]:
    """An Innleggelsesrapport written on FHIR for Kari, to a municipality reached by PLO (a HER-id)."""
    return {
        "resourceType": "Composition",
        "id": comp_id,
        "extension": [
            {"url": EXT_RECIPIENT, "valueReference": {"reference": "Organization/fjordby-kommune"}}
        ],
        "status": "final",
        "type": {"coding": [{"system": FAMILY_SYSTEM, "code": Family.ADMISSION_REPORT.value}]},
        "subject": {"reference": "Patient/kari"},
        "date": "2026-12-07T10:00:00+01:00",
        "author": [{"reference": "Organization/gp-office"}],
        "title": "Innleggelsesrapport",
    }


async def _sent_from(world: World) -> list[str]:
    """What each outgoing message was made from (basedOn)."""
    category = f"{OUTGOING_CATEGORY['system']}|{OUTGOING_CATEGORY['code']}"
    found = await world.http.get(f"/Communication?category={category}", headers=world.system)
    assert found.status_code == 200, found.text
    return [e["resource"]["basedOn"][0]["reference"] for e in found.json().get("entry", [])]


async def test_a_report_goes_out_only_for_a_writer_the_policy_lets_write_it(world: World) -> None:
    """The outgoing hook runs on a write the engine has allowed: the care relation's organisation sends
    Kari's report; a stranger organisation and another citizen are refused, and nothing goes out for them."""
    municipality = {
        "resourceType": "Organization",
        "id": "fjordby-kommune",
        "name": "Fjordby kommune",
        "identifier": [{"system": HERID_SYSTEM, "value": "8300001"}],
    }
    assert (await world.put(municipality)).status_code == 201
    sent = await world.put(report("kari-report-gp"), world.gp)
    assert sent.status_code == 201, sent.text
    assert await _sent_from(world) == ["Composition/kari-report-gp"]
    for who, comp_id in ((world.other, "kari-report-other"), (world.nils, "kari-report-nils")):
        refused = await world.put(report(comp_id), who)
        assert refused.status_code == 403, refused.text
    assert await _sent_from(world) == ["Composition/kari-report-gp"]


def stay(enc_id: str) -> dict[str, object]:
    """An inpatient stay of Kari's written on FHIR, which tells her municipality of the admission."""
    return {
        "resourceType": "Encounter",
        "id": enc_id,
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/kari"},
        "serviceProvider": {"reference": "Organization/hospital"},
        "period": {"start": "2026-12-07T08:00:00+01:00"},
    }


async def test_an_admission_goes_out_only_for_a_writer_the_policy_lets_write_it(world: World) -> None:
    """The stay hook (MeldingInnlagtPasient to the municipality of Kari's active EpisodeOfCare) runs on a
    write the engine has allowed: the hospital's is sent; a stranger organisation's and another citizen's
    are refused, and nothing goes out for them."""
    municipality = {
        "resourceType": "Organization",
        "id": "fjordby-kommune",
        "name": "Fjordby kommune",
        "identifier": [{"system": HERID_SYSTEM, "value": "8300001"}],
    }
    home_care = {
        "resourceType": "EpisodeOfCare",
        "id": "kari-home-care",
        "status": "active",
        "patient": {"reference": "Patient/kari"},
        "managingOrganization": {"reference": "Organization/fjordby-kommune"},
        "period": {"start": "2023-01-01"},
    }
    for resource in (municipality, home_care):
        assert (await world.put(resource)).status_code == 201
    sent = await world.put(stay("kari-stay-hospital"), world.hospital)
    assert sent.status_code == 201, sent.text
    assert await _sent_from(world) == ["Encounter/kari-stay-hospital"]
    for who, enc_id in ((world.other, "kari-stay-other"), (world.nils, "kari-stay-nils")):
        refused = await world.put(stay(enc_id), who)
        assert refused.status_code == 403, refused.text
    assert await _sent_from(world) == ["Encounter/kari-stay-hospital"]
