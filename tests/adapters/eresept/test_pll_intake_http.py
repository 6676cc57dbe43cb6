"""M912 (Nedlasting av PLL) through `POST /$kith-message` with authentication on, SQLite and PostgreSQL:
Reseptformidleren's PLL kept as a snapshot List, and the drug reactions of the lists it carries reaching
the core journal, where the same reaction from a hospital's FHIR client becomes one entry, two sources."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from app.adapters.eresept.critical_info import ALLERGY_ID_SYSTEM
from app.adapters.eresept.intake import PLL_MESSAGE_SYSTEM
from app.adapters.eresept.legemiddelliste import build_m25
from app.adapters.eresept.lists import parse_m92
from app.adapters.eresept.model_lib import MedicationList
from app.adapters.eresept.pll import build_m912, parse_m912
from app.adapters.kith.apprec import AppRecStatus, parse_apprec
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.resources.core_journal.classify import source_references, sources
from app.resources.medication_list.codes import ATC_SYSTEM
from tests.adapters.eresept.test_critical_info import PENICILLIN as PENICILLIN_REACTION
from tests.resources.core_journal.builders import allergy
from tests.resources.core_journal.test_flow_http import entries, organisations
from tests.security.helpers import World
from tests.security.scenario import HOSPITAL_ORGNR, KARI_FNR

M912 = "samples/eresept/Rekvirent rekvirerer kun resept og leverer ikke PLL/M912 Nedlasting av PLL.xml"
M92 = "samples/eresept/Ekspedering og utlevering/M92 Reseptliste (utleverer).xml"
XML = {"Content-Type": "application/xml"}
PENICILLIN_ATC = {"system": ATC_SYSTEM, "code": "J01CE02", "display": "Fenoksymetylpenicillin"}


def kari_pll(legacy: Path, *lists: MedicationList, msg_id: str | None = None) -> bytes:
    """The official M912 sample for Kari (her fødselsnummer), listing the prescriptions of the official M92
    sample (the M912 sample lists none) and carrying `lists` (VarerIBrukB64)."""
    pll = parse_m912((legacy / M912).read_bytes())
    patient = dataclasses.replace(pll.patient, fnr=KARI_FNR)
    envelope = dataclasses.replace(pll.envelope, msg_id=msg_id or pll.envelope.msg_id)
    prescriptions = parse_m92((legacy / M92).read_bytes()).items
    lists_in_use = tuple(to_bytes(build_m25(lib)) for lib in lists)
    pll = dataclasses.replace(
        pll, envelope=envelope, patient=patient, prescriptions=prescriptions, lists=lists_in_use
    )
    return to_bytes(build_m912(pll))


async def post(world: World, data: bytes) -> bytes:
    response = await world.http.post("/$kith-message", content=data, headers={**world.system, **XML})
    assert response.status_code == 200, response.text
    apprec = parse_apprec(parse_xml(response.content))
    assert apprec.status is AppRecStatus.OK, apprec.errors
    return response.content


async def search(world: World, query: str) -> list[dict[str, Any]]:
    response = await world.http.get(query, headers=world.system)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"]


async def test_the_pll_is_kept_as_a_snapshot_and_a_repeat_changes_nothing(world: World, legacy: Path) -> None:
    message = kari_pll(legacy)
    first = await post(world, message)
    [snapshot] = await search(world, f"/List?identifier={PLL_MESSAGE_SYSTEM}|")
    assert snapshot["mode"] == "snapshot"
    assert snapshot["subject"] == {"reference": "Patient/kari"}  # found by her fødselsnummer
    statements = await search(world, "/MedicationStatement?patient=Patient/kari")
    assert len(statements) == len(snapshot.get("entry", [])) == len(parse_m912(message).prescriptions)
    assert await post(world, message) == first  # the stored AppRec; nothing written again
    assert len(await search(world, f"/List?identifier={PLL_MESSAGE_SYSTEM}|")) == 1

    # the GP reconciles the shared list against it: every medicine of RF's PLL is new to the list
    source = {"name": "source", "valueReference": {"reference": f"List/{snapshot['id']}"}}
    diff = await world.http.post(
        "/Patient/kari/$reconcile",
        json={"resourceType": "Parameters", "parameter": [source]},
        headers=world.gp,
    )
    assert diff.status_code == 200, diff.text
    kinds = [
        part["valueCode"]
        for p in diff.json()["parameter"]
        if p["name"] == "change"
        for part in p["part"]
        if part["name"] == "kind"
    ]
    assert kinds == ["added"] * len(statements)
    assert statements  # the sample lists prescriptions


async def test_a_list_of_another_patient_is_no_source(world: World, legacy: Path) -> None:
    await post(world, kari_pll(legacy))
    [snapshot] = await search(world, f"/List?identifier={PLL_MESSAGE_SYSTEM}|")
    source = {"name": "source", "valueReference": {"reference": f"List/{snapshot['id']}"}}
    response = await world.http.post(
        "/Patient/ola/$reconcile",
        json={"resourceType": "Parameters", "parameter": [source]},
        headers=world.gp,
    )
    assert response.status_code in (403, 422), response.text


async def test_a_drug_reaction_from_e_resept_and_from_the_hospital_is_one_entry_two_sources(
    world: World, legacy: Path
) -> None:
    hospital = await world.http.post(
        "/AllergyIntolerance", json=allergy(PENICILLIN_ATC), headers=world.hospital
    )
    assert hospital.status_code == 201, hospital.text
    await post(world, kari_pll(legacy, MedicationList(variant="M25", allergies=(PENICILLIN_REACTION,))))
    [from_eresept] = await search(world, f"/AllergyIntolerance?identifier={ALLERGY_ID_SYSTEM}|")
    assert from_eresept["patient"] == {"reference": "Patient/kari"}
    [entry] = await entries(world)
    assert source_references(entry) == {
        f"AllergyIntolerance/{hospital.json()['id']}",
        f"AllergyIntolerance/{from_eresept['id']}",
    }
    assert organisations(entry) == [HOSPITAL_ORGNR]  # the hospital's; the message's sender by its system:
    systems = [p["valueString"] for s in sources(entry) for p in s["extension"] if p["url"] == "system"]
    assert any(s.startswith("e-resept:HER:") for s in systems)

    # the sender's next list updates its registration: still one source from e-resept
    next_list = MedicationList(variant="M25.4", allergies=(PENICILLIN_REACTION,))
    await post(world, kari_pll(legacy, next_list, msg_id="2c7f6a1e-0b9d-4e3a-8f21-5d4c3b2a1908"))
    [entry] = await entries(world)
    assert len(sources(entry)) == 2


async def test_a_stranger_organisation_and_another_citizen_are_refused(world: World, legacy: Path) -> None:
    """The intake writes as its caller, and `$reconcile` reads its source as its caller: neither is a way
    around the access policy."""
    message = kari_pll(legacy, MedicationList(variant="M25", allergies=(PENICILLIN_REACTION,)))
    for who in (world.other, world.nils):
        response = await world.http.post("/$kith-message", content=message, headers={**who, **XML})
        assert response.status_code == 403, response.text
    assert await search(world, f"/List?identifier={PLL_MESSAGE_SYSTEM}|") == []
    assert await search(world, f"/AllergyIntolerance?identifier={ALLERGY_ID_SYSTEM}|") == []

    await post(world, message)
    [snapshot] = await search(world, f"/List?identifier={PLL_MESSAGE_SYSTEM}|")
    source = {"name": "source", "valueReference": {"reference": f"List/{snapshot['id']}"}}
    body = {"resourceType": "Parameters", "parameter": [source]}
    for who in (world.other, world.nils):
        response = await world.http.post("/Patient/kari/$reconcile", json=body, headers=who)
        assert response.status_code == 403, response.text
        assert "Legemiddel" not in response.text
        assert "J01CE02" not in response.text
