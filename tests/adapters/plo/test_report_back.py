"""The PLO reports back out: XML -> model -> FHIR -> model -> XML for every official 1.6 report sample
(Innleggelsesrapport, Utskrivningsrapport, Helseopplysninger til lege, Helseopplysninger, Medisinske
opplysninger, Orientering om tjenestetilbud), pure (the intake's transaction as the FHIR side) and through
the store on both databases (the sample posted to `POST /$kith-message`, the Composition read back through
the engine). The XML validates against the official XSDs and the model is the same field by field: none
is left out. A diagnosis or a function changed on FHIR is what is written."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.adapters.kith import from_fhir as ff
from app.adapters.kith._fhir_referral import EXT_PARTY
from app.adapters.kith.apprec import AppRecStatus
from app.adapters.kith.model import Coded, Organisation
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.plo._common import EXT_PLO
from app.adapters.plo.build import UnbuildableError, build_plo
from app.adapters.plo.model import Family, Kind, PloMessage, PloVersion
from app.adapters.plo.parse import parse_plo
from app.adapters.plo.report_fhir import family_coding, report_bundle, section_element
from app.adapters.plo.report_from_fhir import native_report, report_family, report_from_resources
from app.adapters.plo.store import stored_report
from app.fhir.context import RequestContext, SystemPrincipal
from tests.adapters.kith.test_routes_http import post
from tests.adapters.legacy import legacy_dir
from tests.adapters.plo.conftest import assert_xsd_valid, legacy_files, sample

BASE = "http://test"
SD = "http://helsebro.no/fhir/StructureDefinition"
READER = SystemPrincipal("plo-test", "the PLO tests read what the intake stored")
REPORTS = "samples/plo/1_6/[!p]*/*.xml"  # every 1.6 sample folder but pasientlogistikk
NY = "Innleggelsesrapport_v1-6_Ny.xml"
GENERATED = datetime(2024, 3, 1, 12, 0)
OWN = Organisation(name="Eget sykehus")


def _same_content(before: PloMessage, after: PloMessage) -> None:
    for field in fields(PloMessage):
        assert getattr(after, field.name) == getattr(before, field.name), field.name


def _composition(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Composition")


def _round_trip(before: PloMessage) -> PloMessage:
    bundle, _ = report_bundle(before)
    return report_from_resources(_composition(bundle), ff.bundle_resolver(bundle))


def test_the_report_samples_are_all_here() -> None:
    root = legacy_dir()
    if root is None:
        pytest.skip("legacy reference data not found: set HELSEBRO_LEGACY_DIR")
    paths = sorted(root.glob(REPORTS))
    assert len(paths) == 15
    assert len({parse_plo(parse_xml(p.read_bytes())).family for p in paths}) == 6


@pytest.mark.parametrize("path", legacy_files(REPORTS))
def test_every_report_sample_maps_back_to_valid_xml(path: Path) -> None:
    before = parse_plo(parse_xml(path.read_bytes()))
    assert before.family.is_report
    after = _round_trip(before)
    _same_content(before, after)
    written = assert_xsd_valid(build_plo(after))
    assert parse_plo(written) == after


@pytest.mark.parametrize("path", legacy_files(REPORTS))
async def test_stored_report_maps_back_to_valid_xml(
    path: Path, client: httpx.AsyncClient, app: FastAPI
) -> None:
    data = sample(path.name)
    status, apprec = await post(client, data)
    assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors
    engine = app.state.engine
    ctx = RequestContext(BASE, READER, "plo-test")
    [composition] = await engine.search(ctx, "Composition", [], 10)
    after = await stored_report(engine, ctx, composition)
    _same_content(parse_plo(parse_xml(data)), after)
    assert_xsd_valid(build_plo(after))


def test_a_diagnosis_and_a_function_changed_on_fhir_are_what_is_written() -> None:
    bundle, _ = report_bundle(parse_plo(parse_xml(sample(NY))))
    resources = [e["resource"] for e in bundle["entry"]]
    condition = next(r for r in resources if r["resourceType"] == "Condition")
    condition["code"]["coding"][0].update(code="I21", display="Akutt hjerteinfarkt")
    condition["note"] = [{"text": "Mistenkt infarkt"}]
    observation = next(r for r in resources if r["resourceType"] == "Observation")
    observation["valueInteger"] = 5
    after = report_from_resources(_composition(bundle), ff.bundle_resolver(bundle))
    back = parse_plo(assert_xsd_valid(build_plo(after)))
    assert [(d.code.code, d.description) for d in back.diagnoses] == [("I21", "Mistenkt infarkt")]
    assert back.functions[0].level is not None
    assert (back.functions[0].variable.display, back.functions[0].level.code) == ("Sosial deltakelse", "5")
    # the narrative of the part is the written document's, so it says the new code
    [diagnoses] = [s for s in back.sections if s.element == "InfoMedisinskDiagnose"]
    assert "Diagnosekode: Akutt hjerteinfarkt" in diagnoses.text


def test_a_part_edited_in_its_fields_is_written_as_edited() -> None:
    """A section's elements (`ext:plo-field`) are FHIR data: a changed note goes out."""
    bundle, _ = report_bundle(parse_plo(parse_xml(sample(NY))))
    composition = _composition(bundle)
    [section] = [s for s in composition["section"] if section_element(s) == "OpplysningerAndreFaggrupper"]
    note = section["extension"][0]["extension"][1]["extension"][1]["extension"][1]
    assert note["extension"][0] == {"url": "element", "valueString": "epj2:Notat"}
    note["extension"][1]["valueString"] = "Fysioterapi to ganger i uka."
    back = parse_plo(
        assert_xsd_valid(build_plo(report_from_resources(composition, ff.bundle_resolver(bundle))))
    )
    [part] = [s for s in back.sections if s.element == "OpplysningerAndreFaggrupper"]
    assert part.text == "Notat: Fysioterapi to ganger i uka."


def test_a_diagnosis_without_its_part_or_a_2_0_report_is_refused() -> None:
    msg = parse_plo(parse_xml(sample(NY)))
    without = replace(msg, sections=tuple(s for s in msg.sections if s.element != "InfoMedisinskDiagnose"))
    with pytest.raises(UnbuildableError, match="diagnoses"):
        build_plo(without)
    with pytest.raises(UnbuildableError, match=r"2\.0"):
        build_plo(replace(msg, version=PloVersion.V2_0))
    assert to_bytes(build_plo(msg)).startswith(b"<?xml")


def test_a_service_changed_on_fhir_is_what_is_written() -> None:
    """Orientering om tjenestetilbud: an existing service ends and another is added, on its ServiceRequests."""
    bundle, _ = report_bundle(parse_plo(parse_xml(sample("Orientering_om_tjenestetilbud_v1-6_Ny.xml"))))
    requests = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
    assert [(r["intent"], r["quantityQuantity"]) for r in requests][:2] == [
        ("plan", {"value": 2, "unit": "timer hver fredag"}),
        ("plan", {"value": 0.5, "unit": "time hver dag"}),
    ]
    requests[1]["occurrencePeriod"]["end"] = "2018-02-28"
    requests[1]["note"] = [{"text": "Avsluttes, pasienten flytter"}]
    added = {**requests[0], "performer": [{"display": "Frivilligsentralen"}], "extension": []}
    bundle["entry"].append({"fullUrl": "urn:uuid:added-service", "resource": added})
    composition = _composition(bundle)
    [section] = [s for s in composition["section"] if section_element(s) == "EksisterendeTjeneste"]
    section["entry"].append({"reference": "urn:uuid:added-service"})
    back = parse_plo(
        assert_xsd_valid(build_plo(report_from_resources(composition, ff.bundle_resolver(bundle))))
    )
    assert [(s.amount, s.end, s.remark) for s in back.services][1] == (
        "0.5",
        date(2018, 2, 28),
        "Avsluttes, pasienten flytter",
    )
    assert len(back.services) == 5
    # the added one said nothing about being private (required: written false) and has no name
    assert (back.services[-1].provider, back.services[-1].private, back.services[-1].text) == (
        "Frivilligsentralen",
        False,
        None,
    )


def test_a_medicine_changed_on_fhir_is_what_is_written() -> None:
    """Utskrivningsrapport: a dose changed and a medicine stopped on its MedicationStatement, an ATC code
    added; the multidose flag and the EPJ component id stay as received."""
    msg = parse_plo(parse_xml(sample("Utskrivningsrapport_v1-6_Ny.xml")))
    bundle, _ = report_bundle(msg)
    statements = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationStatement"
    ]
    assert len(statements) == len(msg.medications) == 7
    first = statements[0]
    first["dosage"] = [{"text": "1 tablett morgen"}]
    first["effectivePeriod"]["end"] = "2018-03-01"
    atc = {"system": "urn:oid:2.16.578.1.12.4.1.1.7180", "code": "C03CA02", "display": "Bumetanid"}
    first["medicationCodeableConcept"]["coding"] = [atc]
    back = parse_plo(
        assert_xsd_valid(build_plo(report_from_resources(_composition(bundle), ff.bundle_resolver(bundle))))
    )
    changed = back.medications[0]
    assert (changed.dosage_text, changed.end, changed.atc) == (
        "1 tablett morgen",
        date(2018, 3, 1),
        Coded(code="C03CA02", display="Bumetanid"),  # Atc is a kith:CS: it has no system attribute
    )
    assert (changed.name, changed.multidose, changed.component_id) == (
        msg.medications[0].name,
        msg.medications[0].multidose,
        msg.medications[0].component_id,
    )
    assert back.medications[1:] == msg.medications[1:]


def test_next_of_kin_changed_on_fhir_is_what_is_written() -> None:
    """Innleggelsesrapport: a son's note and mobile number changed on his RelatedPerson."""
    msg = parse_plo(parse_xml(sample(NY)))
    bundle, _ = report_bundle(msg)
    related = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "RelatedPerson"]
    assert len(related) == len(msg.related_persons) == 2
    per = related[1]
    per["telecom"] = [{"system": "phone", "use": "mobile", "value": "99887733"}]
    per["extension"] = [e for e in per["extension"] if not e["url"].endswith("kith-note")]
    back = parse_plo(
        assert_xsd_valid(build_plo(report_from_resources(_composition(bundle), ff.bundle_resolver(bundle))))
    )
    assert back.related_persons[0] == msg.related_persons[0]
    changed = back.related_persons[1]
    assert (changed.name.given, changed.note) == ("Per", None)
    assert [t.address for t in changed.telecoms] == ["tel:99887733"]


def test_sections_carry_their_part_and_loinc_codes() -> None:
    bundle, _ = report_bundle(parse_plo(parse_xml(sample(NY))))
    codes = {
        section_element(s): [c["code"] for c in s["code"]["coding"][1:]]
        for s in _composition(bundle)["section"]
    }
    assert codes["Legemiddelinfo"] == ["10160-0"]
    assert codes["InfoMedisinskDiagnose"] == ["11450-4"]
    assert codes["InfoKartleggingFunksjonsniva"] == ["47420-5"]
    assert codes["Sykepleierdokumentasjon"] == []  # no LOINC section code: the part's own code only


def test_the_contact_person_and_the_responsible_changed_on_fhir_are_what_is_written() -> None:
    """Utskrivningsrapport's contact doctor gets a note; Innleggelsesrapport's responsible nurse a new
    approval day and a note, on the CareTeam participant and the attester."""
    bundle, _ = report_bundle(parse_plo(parse_xml(sample("Utskrivningsrapport_v1-6_Ny.xml"))))
    [team] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CareTeam"]
    [contact] = [p for p in team["participant"] if p["extension"][0]["valueCode"] == "contact"]
    contact["extension"].append({"url": f"{SD}/kith-note", "valueString": "Treffes best før kl 10"})
    back = parse_plo(
        assert_xsd_valid(build_plo(report_from_resources(_composition(bundle), ff.bundle_resolver(bundle))))
    )
    [doctor] = back.contacts
    assert (doctor.professional.name.family, doctor.note) == ("Koman", "Treffes best før kl 10")

    bundle, _ = report_bundle(parse_plo(parse_xml(sample(NY))))
    composition = _composition(bundle)
    composition["attester"][0]["time"] = "2018-01-31"
    [team] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CareTeam"]
    [nurse] = [p for p in team["participant"] if p["extension"][0]["valueCode"] == "responsible"]
    nurse["extension"].append({"url": f"{SD}/kith-note", "valueString": "Ring avdelingen"})
    back = parse_plo(
        assert_xsd_valid(build_plo(report_from_resources(composition, ff.bundle_resolver(bundle))))
    )
    assert back.responsible is not None
    assert (back.responsible.name.given, back.approved, back.responsible_note) == (
        "Gunn",
        date(2018, 1, 31),
        "Ring avdelingen",
    )


@pytest.mark.parametrize("family", ["Innleggelsesrapport", "Utskrivningsrapport"])
async def test_a_stored_report_after_its_endring_maps_back_to_the_endring(
    family: str, client: httpx.AsyncClient, app: FastAPI
) -> None:
    """The Ny and then its Endring through the intake: the one Composition read back is the Endring."""
    for kind in ("Ny", "Endring"):
        status, apprec = await post(client, sample(f"{family}_v1-6_{kind}.xml"))
        assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors
    engine = app.state.engine
    ctx = RequestContext(BASE, READER, "plo-test")
    [composition] = await engine.search(ctx, "Composition", [], 10)
    after = await stored_report(engine, ctx, composition)
    _same_content(parse_plo(parse_xml(sample(f"{family}_v1-6_Endring.xml"))), after)
    assert_xsd_valid(build_plo(after))


CONTENT = ("document", "sections", "diagnoses", "functions", "medications", "services", "contacts")


@pytest.mark.parametrize("path", legacy_files(REPORTS))
def test_a_report_written_on_fhir_is_the_same_report_as_a_ny(path: Path) -> None:
    """The Composition as a writer on FHIR keeps it (no `ext:plo-message`, no `kith-party`): the envelope
    is made (1.6, the report's MsgHead type and document element, the custodian as sender), the content
    is the same as the sample's, and the XML is valid."""
    before = parse_plo(parse_xml(path.read_bytes()))
    bundle, _ = report_bundle(before)
    kept = _composition(bundle)
    drop = (EXT_PLO, EXT_PARTY)
    comp = {**kept, "extension": [e for e in kept["extension"] if e["url"] not in drop]}
    assert report_family(comp) is before.family
    custodian = comp["custodian"]["reference"]
    msg = native_report(
        comp, ff.bundle_resolver(bundle), recipient=custodian, msg_id="r1", generated=GENERATED, own=OWN
    )
    written = parse_plo(assert_xsd_valid(build_plo(msg)))
    assert (written.kind, written.version, written.msg_type.code) == (
        Kind.NEW,
        PloVersion.V1_6,
        before.msg_type.code,
    )
    assert {k: getattr(written, k) for k in CONTENT} == {k: getattr(before, k) for k in CONTENT}
    assert written.sender.name == written.receiver.name == before.sender.name  # the custodian, both here


def test_only_a_report_written_as_1_6_is_one() -> None:
    summary = {"type": {"coding": [family_coding(Family.SUMMARY)]}}
    assert report_family(summary) is None
    assert report_family({"type": {"coding": [family_coding(Family.LOGISTICS)]}}) is None
    with pytest.raises(UnbuildableError, match="not a PLO report"):
        native_report(
            summary, lambda _r: None, recipient="Organization/x", msg_id="r", generated=GENERATED, own=OWN
        )
