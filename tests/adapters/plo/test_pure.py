"""PLO parse and map (pure): every official sample parses by namespace and version, the mapping keeps
the clinical content it maps, and the discharge-ready clock counts as documented."""

from __future__ import annotations

import base64
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from app.adapters.kith.errors import KithError
from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.kith.xsd import get_validator
from app.adapters.plo import clock
from app.adapters.plo.logistics_fhir import logistics_bundle
from app.adapters.plo.model import EventCode, Family, Kind, Logistics, PloVersion
from app.adapters.plo.parse import is_plo, parse_plo
from app.adapters.plo.report import discharge_ready_parameters
from app.adapters.plo.report_fhir import report_bundle
from tests.adapters.legacy import legacy_dir
from tests.adapters.plo.conftest import SAMPLES, legacy_files, sample


def _resources(bundle: dict[str, Any], res_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == res_type]


@pytest.mark.parametrize("path", legacy_files(SAMPLES))
def test_every_sample_parses_and_maps(path: Path) -> None:
    root = parse_xml(path.read_bytes(), max_bytes=10_000_000)
    assert is_plo(root)
    msg = parse_plo(root)
    assert msg.version is PloVersion.V1_6
    assert msg.patient is not None
    expected_kind = {"Ny": Kind.NEW, "Endring": Kind.CHANGE, "Kansellering": Kind.CANCEL}
    assert msg.kind is next(k for word, k in expected_kind.items() if word in path.name)
    if msg.family is Family.LOGISTICS:
        assert msg.logistics is not None
        assert msg.events
        bundle, anchor = logistics_bundle(msg, None, None)
        [encounter] = _resources(bundle, "Encounter")
        assert encounter["subject"] == anchor.subject
    else:
        assert msg.sections
        bundle, anchor = report_bundle(msg)
        [composition] = _resources(bundle, "Composition")
        [document] = _resources(bundle, "DocumentReference")
        assert anchor.about == next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is document)
        assert [s["title"] for s in composition["section"]] == [s.title for s in msg.sections]
        text = base64.b64decode(document["content"][0]["attachment"]["data"]).decode()
        for section in msg.sections:
            assert section.text in text


def test_admission_report_keeps_diagnoses_functions_medicines_and_services() -> None:
    msg = parse_plo(parse_xml(sample("Innleggelsesrapport_v1-6_Ny.xml")))
    assert msg.family is Family.ADMISSION_REPORT
    bundle, _ = report_bundle(msg)
    [condition] = _resources(bundle, "Condition")
    assert condition["code"]["coding"][0]["code"] == "I50"
    observations = _resources(bundle, "Observation")
    assert len(observations) == len(msg.functions) > 0
    assert observations[0]["code"]["coding"][0]["display"] == "Sosial deltakelse"
    assert observations[0]["valueInteger"] == 3
    statements = _resources(bundle, "MedicationStatement")
    assert [s["medicationCodeableConcept"]["text"] for s in statements][:3] == [
        "Burinex 1 mg",
        "Triatec 2.5 mg",
        "Lipitor 40 mg",
    ]
    assert statements[0]["dosage"] == [{"text": "2 tabl kl 08 og 13"}]
    [task] = _resources(bundle, "Task")  # the proposal: the medication list itself is not touched
    assert task["intent"] == "proposal"
    assert len(task["input"]) == 1 + len(statements)
    [snapshot] = _resources(bundle, "List")  # the sender's list, not the shared medication list
    assert snapshot["mode"] == "snapshot"
    assert task["input"][0]["valueReference"]["reference"] == next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"] is snapshot
    )
    assert len(snapshot["entry"]) == len(statements)
    [service] = _resources(bundle, "ServiceRequest")
    assert service["code"]["text"] == "Korttidsopphold"
    [team] = _resources(bundle, "CareTeam")
    roles = [p["role"][0] for p in team["participant"]]
    assert roles[0]["coding"][0]["display"] == "Primærkontakt"  # the responsible nurse
    assert {"text": "Kontaktenhet"} in roles
    related = _resources(bundle, "RelatedPerson")
    assert [r["name"][0]["given"] for r in related] == [["Ole"], ["Per"]]
    assert related[0]["relationship"][0]["coding"][0]["code"] == "SO"
    assert {"reference": f"{related[1]['patient']['reference']}"} == team["subject"]
    [composition] = _resources(bundle, "Composition")
    assert composition["status"] == "final"
    assert "Årsak til innleggelse" in str(composition["section"]) or "erysipelas" in str(
        composition["section"]
    )


def test_notice_event_and_clock() -> None:
    msg = parse_plo(parse_xml(sample("Pasientlogistikk_Utskrivningsklar_pasient_v1-6_Ny.xml")))
    assert msg.logistics is Logistics.DISCHARGE_READY
    ready = msg.event(EventCode.DISCHARGE_READY)
    assert ready is not None
    assert ready.time == date(2018, 1, 31)
    bundle, _ = logistics_bundle(msg, None, None)
    [task] = _resources(bundle, "Task")
    notice = clock.notice_of(task)
    assert notice is not None
    assert notice.notice == date(2018, 1, 31)
    assert notice.days_waiting(date(2018, 1, 31)) == 0
    assert notice.payable_days(date(2018, 1, 31)) == 0
    assert notice.days_waiting(date(2018, 2, 4)) == 4
    assert notice.payable_days(date(2018, 2, 4)) == 4  # 1.-4. February
    params = discharge_ready_parameters([{**task, "id": "t1"}], date(2018, 2, 4), None)
    [municipality] = [p for p in params["parameter"] if p["name"] == "municipality"]
    figures = {p["name"]: p.get("valueInteger") for p in municipality["part"]}
    assert (figures["notices"], figures["open"], figures["payableDays"]) == (1, 1, 4)


def test_clock_days() -> None:
    base = clock.Notice(None, "requested", None, None, date(2024, 3, 1))
    assert base.days_waiting(date(2024, 3, 11)) == 10
    assert base.payable_days(date(2024, 3, 11)) == 10
    discharged = clock.Notice(None, "completed", None, None, date(2024, 3, 1), ended=date(2024, 3, 5))
    assert discharged.days_waiting(date(2024, 3, 11)) == 4
    assert discharged.payable_days(date(2024, 3, 11)) == 3  # 2.-4. March: the day of discharge is not one
    answered = clock.Notice(
        None, "requested", None, None, date(2024, 3, 1), can_receive_from=date(2024, 3, 3)
    )
    assert answered.payable_days(date(2024, 3, 11)) == 1  # 2. March only
    assert clock.relevant(discharged, date(2024, 3, 6), date(2024, 3, 11)) is False
    assert clock.relevant(base, date(2024, 3, 6), date(2024, 3, 11)) is True


def test_not_plo_and_gaps_are_refused() -> None:
    data = sample("Pasientlogistikk_Innlagt_pasient_v1-6_Ny.xml")
    broken = data.replace(b"p1:MeldingInnlagtPasient", b"p1:MeldingUkjent")
    with pytest.raises(KithError) as refused:
        parse_plo(parse_xml(broken))
    assert refused.value.code.value == "T02"
    no_time = data.replace(b'<TidspunktForHendelse V="2018-01-29T10:00:00"/>', b"")
    with pytest.raises(KithError):
        parse_plo(parse_xml(no_time))


@pytest.mark.parametrize("path", legacy_files(SAMPLES))
def test_every_sample_is_valid_against_the_official_xsds(path: Path) -> None:
    root = legacy_dir()
    assert root is not None
    result = get_validator(str(root / "xsd")).validate(parse_xml(path.read_bytes(), max_bytes=10_000_000))
    assert (result.valid, result.skipped) == (True, False), result.errors


def test_version_is_the_namespace() -> None:
    data = sample("Innleggelsesrapport_v1-6_Ny.xml")
    v1_5 = data.replace(
        b"http://www.kith.no/xmlstds/po/Innleggelsesrapport/2012-04-01",
        b"http://www.kith.no/xmlstds/po/Innleggelsesrapport/2009-06-30",
    )
    msg = parse_plo(parse_xml(v1_5))
    assert (msg.version, msg.family) == (PloVersion.V1_5, Family.ADMISSION_REPORT)
    assert msg.diagnoses == parse_plo(parse_xml(data)).diagnoses
    unknown = data.replace(b"po/Innleggelsesrapport/2012-04-01", b"po/Innleggelsesrapport/2099-01-01")
    assert not is_plo(parse_xml(unknown))
