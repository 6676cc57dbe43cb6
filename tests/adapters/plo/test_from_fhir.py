"""Pasientlogistikk back out: XML -> model -> FHIR -> model -> XML for every official 1.6 logistics
sample, pure (the intake's transaction as the FHIR side) and through the store on both databases (the
sample posted to `POST /$kith-message`, the stay read back through the engine); the XML validates against
the official XSDs and the model keeps every field but those named in NOT_KEPT."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import from_fhir as ff
from app.adapters.kith.apprec import AppRecStatus
from app.adapters.kith.model import Organisation
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.plo import clock
from app.adapters.plo.build import UnbuildableError, build_plo
from app.adapters.plo.from_fhir import (
    hospital_message,
    logistics_from_resources,
    municipality_answer,
    stay_message,
)
from app.adapters.plo.logistics_fhir import logistics_bundle
from app.adapters.plo.model import Logistics, PloMessage
from app.adapters.plo.parse import parse_plo
from app.adapters.plo.store import stored_logistics
from app.fhir.context import RequestContext, SystemPrincipal
from tests.adapters.kith.test_routes_http import post
from tests.adapters.plo.conftest import LOGISTICS, assert_xsd_valid, legacy_files, sample

BASE = "http://test"
GENERATED = datetime(2018, 2, 1, 9, 0)
READER = SystemPrincipal("plo-test", "the PLO tests read what the intake stored")
# Read from the message but deliberately not stored by the intake for Pasientlogistikk (README "Left
# out"): the hospital unit and nurse to contact are not the stay's or the notice's content.
NOT_KEPT = {
    "responsible": "AnsvarForRapport of a logistics message is not stored",
    "contact_units": "TilknyttetEnhet of a logistics message is not stored",
}


def _same_content(before: PloMessage, after: PloMessage) -> None:
    """Field by field; the patient's death date is the stored Patient's (the death message sets it), which
    the MsgHead does not carry, so it is compared without it."""
    assert before.patient is not None
    assert after.patient is not None
    assert replace(after.patient, death_date=None) == before.patient
    for field in fields(PloMessage):
        if field.name in NOT_KEPT or field.name == "patient":
            continue
        assert getattr(after, field.name) == getattr(before, field.name), field.name


def _resource(bundle: dict[str, Any], res_type: str) -> dict[str, Any] | None:
    return next((e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == res_type), None)


@pytest.mark.parametrize("path", legacy_files(LOGISTICS))
def test_every_logistics_sample_maps_back_to_valid_xml(path: Path) -> None:
    before = parse_plo(parse_xml(path.read_bytes()))
    bundle, _ = logistics_bundle(before, None, None)
    encounter, task = _resource(bundle, "Encounter"), _resource(bundle, "Task")
    after = logistics_from_resources(encounter, task, ff.bundle_resolver(bundle))
    _same_content(before, after)
    assert_xsd_valid(build_plo(after))
    again = parse_plo(parse_xml(to_bytes(build_plo(after))))
    assert after.patient is not None
    # what is written reads back as the same message (the MsgHead carries no death date)
    assert again == replace(after, patient=replace(after.patient, death_date=None))


@pytest.mark.parametrize("path", legacy_files(LOGISTICS))
async def test_stored_logistics_maps_back_to_valid_xml(
    path: Path, client: httpx.AsyncClient, app: FastAPI
) -> None:
    data = sample(path.name)
    status, apprec = await post(client, data)
    assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors
    engine = app.state.engine
    ctx = RequestContext(BASE, READER, "plo-test")
    [stay] = await engine.search(ctx, "Encounter", [], 10)
    after = await stored_logistics(engine, ctx, stay)
    _same_content(parse_plo(parse_xml(data)), after)
    assert_xsd_valid(build_plo(after))


def _stored(name: str) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any], ff.Resolve]:
    bundle, _ = logistics_bundle(parse_plo(parse_xml(sample(name))), None, None)
    encounter, task = _resource(bundle, "Encounter"), _resource(bundle, "Task")
    assert encounter is not None
    return encounter, task, bundle, ff.bundle_resolver(bundle)


def test_a_hospital_notice_written_on_fhir_becomes_pasientlogistikk() -> None:
    encounter, task, _, resolve = _stored("Pasientlogistikk_Utskrivningsklar_pasient_v1-6_Ny.xml")
    assert task is not None
    own = Organisation(name="Eget sykehus")
    notice = hospital_message(
        Logistics.DISCHARGE_READY, task, encounter, resolve, msg_id="m1", generated=GENERATED, own=own
    )
    back = parse_plo(assert_xsd_valid(build_plo(notice)))
    assert back.msg_type.code == "LOG_UTSKRIVNINGSKLAR"
    assert [(e.code.code if e.code else None, e.time.isoformat(), e.estimated) for e in back.events] == [
        ("1", "2018-01-29T10:00:00", False),
        ("3", "2018-01-31", True),
    ]
    assert back.receiver.name == "Alvdal Kommune"  # the Task owner
    assert back.sender.name == "ST OLAVS HOSPITAL HF"  # the requester, up its partOf chain

    withdrawn = {**task, "status": "cancelled", "statusReason": {"text": "Ikke lenger utskrivningsklar"}}
    withdrawn["output"] = [{"type": clock.part_type("withdrawn"), "valueDate": "2018-02-01"}]
    msg = hospital_message(
        Logistics.WITHDRAWN, withdrawn, encounter, resolve, msg_id="m2", generated=GENERATED, own=own
    )
    back = parse_plo(assert_xsd_valid(build_plo(msg)))
    assert back.logistics is Logistics.WITHDRAWN
    assert (back.events[-1].time.isoformat(), back.events[-1].remark) == (
        "2018-02-01",
        "Ikke lenger utskrivningsklar",
    )


def test_a_discharge_written_on_fhir_needs_where_the_patient_went() -> None:
    encounter, task, _, resolve = _stored("Pasientlogistikk_Utskrivningsklar_pasient_v1-6_Ny.xml")
    assert task is not None
    finished = {**encounter, "status": "finished", "period": {**encounter["period"], "end": "2018-02-01"}}
    own = Organisation(name="Eget sykehus")
    msg = hospital_message(
        Logistics.DISCHARGED, task, finished, resolve, msg_id="m3", generated=GENERATED, own=own
    )
    with pytest.raises(UnbuildableError, match="UtTil"):
        build_plo(msg)
    to = {"system": "urn:oid:2.16.578.1.12.4.1.1.8408", "code": "1", "display": "Bosted/arbeidssted"}
    finished["hospitalization"] = {"dischargeDisposition": {"coding": [to]}}
    msg = hospital_message(
        Logistics.DISCHARGED, task, finished, resolve, msg_id="m3", generated=GENERATED, own=own
    )
    back = parse_plo(assert_xsd_valid(build_plo(msg)))
    assert [c.code for c in back.discharged_to] == ["1"]
    assert [e.time.isoformat() for e in back.events] == ["2018-02-01"]


def test_the_municipality_answer_goes_back_to_the_hospital_in_the_conversation() -> None:
    _, task, _, resolve = _stored("Pasientlogistikk_Utskrivningsklar_pasient_v1-6_Ny.xml")
    assert task is not None
    answered = {**task, "businessStatus": {"coding": [{"system": clock.CLOCK_SYSTEM, "code": "can-receive"}]}}
    answered["output"] = [{"type": clock.part_type("canReceiveFrom"), "valueDate": "2018-02-02"}]
    msg = municipality_answer(answered, resolve, msg_id="a1", generated=GENERATED)
    back = parse_plo(assert_xsd_valid(build_plo(msg)))
    assert (back.logistics, back.version.value) == (Logistics.ANSWER, "2.0")
    assert (back.sender.name, back.receiver.name) == ("Alvdal Kommune", "ST OLAVS HOSPITAL HF")
    assert back.conversation is not None
    assert back.conversation.parent_id == "79c55ed0-0692-11e8-b566-0800200c9a66"  # the notice's MsgId
    assert [(e.time.isoformat(), e.description) for e in back.events] == [
        ("2018-02-02T00:00:00", "Kommunen kan ta imot pasienten")
    ]


def test_a_stay_written_on_fhir_tells_the_admission_and_the_death() -> None:
    encounter, task, _, resolve = _stored("Pasientlogistikk_Utskrivningsklar_pasient_v1-6_Ny.xml")
    assert task is not None
    own = Organisation(name="Eget sykehus")
    municipality = f.ref_of(task.get("owner"))
    msg = stay_message(
        Logistics.ADMITTED,
        encounter,
        resolve,
        sender=None,
        receiver=municipality,
        msg_id="i1",
        generated=GENERATED,
        own=own,
    )
    back = parse_plo(assert_xsd_valid(build_plo(msg)))
    assert (back.msg_type.code, back.logistics) == ("LOG_INNLAGT", Logistics.ADMITTED)
    assert [(e.code.code if e.code else None, e.time.isoformat()) for e in back.events] == [
        ("1", "2018-01-29T10:00:00")
    ]
    assert (back.receiver.name, back.sender.name) == (
        "Alvdal Kommune",
        "ST OLAVS HOSPITAL HF",
    )  # serviceProvider

    dead = {**encounter, "status": "finished", "period": {**encounter["period"], "end": "2018-02-03"}}
    msg = stay_message(
        Logistics.DEATH,
        dead,
        resolve,
        sender=task.get("requester"),
        receiver=municipality,
        msg_id="d1",
        generated=GENERATED,
        own=own,
        died_at="2018-02-02T23:50:00+01:00",
    )
    back = parse_plo(assert_xsd_valid(build_plo(msg)))
    assert (back.msg_type.code, back.logistics) == ("LOG_DOD", Logistics.DEATH)
    assert [(e.code.code if e.code else None, e.time.isoformat()) for e in back.events] == [
        ("13", "2018-02-02T23:50:00")
    ]
    no_start = {k: v for k, v in encounter.items() if k != "period"}
    msg = stay_message(
        Logistics.ADMITTED,
        no_start,
        resolve,
        sender=None,
        receiver=municipality,
        msg_id="i2",
        generated=GENERATED,
        own=own,
    )
    with pytest.raises(UnbuildableError, match="TidsfestetHendelse"):
        build_plo(msg)
