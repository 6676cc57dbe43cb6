"""Out, on SQLite and PostgreSQL: a discharge-ready notice, its withdrawal and the discharge written on FHIR
by a hospital become Pasientlogistikk 1.6 for a municipality with a HER-id; the municipality's answer on a
notice from a legacy hospital becomes the 2.0 TilbakemeldingUtskrivningsklarPasient back to that hospital.
Each is an outgoing Communication with an XSD-valid payload; what cannot be a message is refused with 422."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from app.adapters.kith.apprec import AppRecStatus
from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.kith.xsd import XsdValidator
from app.adapters.plo import clock
from app.adapters.plo.model import EventCode, Logistics, PloMessage
from app.adapters.plo.parse import parse_plo
from app.resources.no_basis.identifiers import FNR_SYSTEM, HERID_SYSTEM, ORGNR_SYSTEM
from tests.adapters.kith.test_routes_http import post, search
from tests.adapters.plo.conftest import sample
from tests.conftest import app_client
from tests.databases import TestDatabase

FHIR = {"Content-Type": "application/fhir+json"}
OUTGOING = "http://helsebro.no/fhir/CodeSystem/kith-message|outgoing"
KLAR = "Pasientlogistikk_Utskrivningsklar_pasient_v1-6_Ny.xml"
UTSKREVET = "Pasientlogistikk_Melding_om_utskrevet_pasient_v1-6_Ny.xml"
IDS = {
    n: f"00000000-0000-4000-8000-00000000000{i}"
    for i, n in enumerate(("patient", "hospital", "kommune", "stay", "task"))
}
HOME = {"system": "urn:oid:2.16.578.1.12.4.1.1.8408", "code": "1", "display": "Bosted/arbeidssted"}


def _entry(name: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{IDS[name]}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def _ref(name: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{IDS[name]}"}


def notice_bundle(municipality: list[dict[str, str]], patient: list[dict[str, str]]) -> dict[str, Any]:
    """A hospital on FHIR: the patient, the stay and the discharge-ready notice to the municipality."""
    entries = [
        _entry(
            "patient",
            {
                "resourceType": "Patient",
                **({"identifier": patient} if patient else {}),
                "name": [{"family": "Testesen", "given": ["Kari"]}],
                "birthDate": "1957-03-14",
            },
        ),
        _entry(
            "hospital",
            {
                "resourceType": "Organization",
                "name": "Fjordby sykehus",
                "identifier": [{"system": HERID_SYSTEM, "value": "8100001"}],
            },
        ),
        _entry(
            "kommune", {"resourceType": "Organization", "name": "Fjordby kommune", "identifier": municipality}
        ),
        _entry(
            "stay",
            {
                "resourceType": "Encounter",
                "status": "in-progress",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                "subject": _ref("patient"),
                "serviceProvider": _ref("hospital"),
                "period": {"start": "2024-02-27T14:00:00+01:00"},
            },
        ),
        _entry(
            "task",
            {
                "resourceType": "Task",
                "status": "requested",
                "intent": "order",
                "code": {"coding": [clock.TASK_CODE]},
                "for": _ref("patient"),
                "encounter": _ref("stay"),
                "requester": _ref("hospital"),
                "owner": _ref("kommune"),
                "input": [
                    {"type": clock.part_type("noticeDate"), "valueDate": "2024-03-01"},
                    {"type": clock.part_type("estimated"), "valueBoolean": False},
                ],
            },
        ),
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


PATIENT = [{"system": FNR_SYSTEM, "value": "14835712347"}]
KOMMUNE_HER = [{"system": HERID_SYSTEM, "value": "8300001"}]


async def _outgoing(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    records = await search(http, f"/Communication?category={OUTGOING}")
    return sorted(records, key=lambda r: r["meta"]["lastUpdated"])


def _message(record: dict[str, Any], validator: XsdValidator) -> PloMessage:
    assert record["status"] == "preparation"
    root = parse_xml(base64.b64decode(record["payload"][0]["contentAttachment"]["data"]))
    result = validator.validate(root)
    assert not result.skipped
    assert result.valid, result.errors
    return parse_plo(root)


def _codes(msg: PloMessage) -> list[str | None]:
    return [e.code.code if e.code else None for e in msg.events]


@asynccontextmanager
async def written(
    db: TestDatabase, legacy: Path, bundle: dict[str, Any]
) -> AsyncIterator[tuple[httpx.AsyncClient, XsdValidator]]:
    """An app that checks KITH messages against the official XSDs, with `bundle` written to it, and a
    validator for what it sends."""
    async with app_client(db, kith_xsd_dir=str(legacy / "xsd")) as (http, _app):
        response = await http.post("/", json=bundle, headers=FHIR)
        assert response.status_code == 200, response.text
        yield http, XsdValidator(legacy / "xsd")


async def _put(http: httpx.AsyncClient, resource: dict[str, Any]) -> httpx.Response:
    body = {k: v for k, v in resource.items() if k != "meta"}
    return await http.put(f"/{resource['resourceType']}/{resource['id']}", json=body, headers=FHIR)


async def test_a_hospital_on_fhir_tells_the_municipality(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    async with written(session_databases[backend], legacy, notice_bundle(KOMMUNE_HER, PATIENT)) as (
        http,
        validator,
    ):
        (record,) = await _outgoing(http)
        [task] = await search(http, f"/Task?code={clock.TASK_TOKEN}")
        assert record["about"] == [{"reference": f"Task/{task['id']}"}]
        msg = _message(record, validator)
        assert msg.logistics is Logistics.DISCHARGE_READY
        assert _codes(msg) == [EventCode.ADMITTED.value, EventCode.DISCHARGE_READY.value]
        assert (msg.receiver.ident("HER"), msg.sender.ident("HER")) == ("8300001", "8100001")
        assert msg.patient is not None
        assert msg.patient.ident("FNR") == "14835712347"

        assert (await _put(http, task)).status_code == 200  # nothing changed: nothing sent
        assert len(await _outgoing(http)) == 1

        withdrawn = {**task, "status": "cancelled", "statusReason": {"text": "Forverret tilstand"}}
        withdrawn["output"] = [{"type": clock.part_type("withdrawn"), "valueDate": "2024-03-02"}]
        assert (await _put(http, withdrawn)).status_code == 200
        msg = _message((await _outgoing(http))[-1], validator)
        assert msg.logistics is Logistics.WITHDRAWN
        assert (msg.events[-1].code, msg.events[-1].remark) == (
            EventCode.WITHDRAWN.coded,
            "Forverret tilstand",
        )

        [stay] = await search(http, "/Encounter")
        finished = {**stay, "status": "finished", "period": {**stay["period"], "end": "2024-03-04"}}
        refused = await _put(http, finished)  # where the patient went (UtTil) is required
        assert refused.status_code == 422, refused.text
        assert "UtTil" in refused.text
        assert len(await _outgoing(http)) == 2
        finished["hospitalization"] = {"dischargeDisposition": {"coding": [HOME]}}
        assert (await _put(http, finished)).status_code == 200
        msg = _message((await _outgoing(http))[-1], validator)
        assert msg.logistics is Logistics.DISCHARGED
        assert [c.code for c in msg.discharged_to] == ["1"]
        assert [e.time.isoformat() for e in msg.events] == ["2024-03-04"]


async def test_a_municipality_on_fhir_gets_nothing_and_a_patient_without_identifier_is_refused(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    async with app_client(session_databases[backend], kith_xsd_dir=str(legacy / "xsd")) as (http, _app):
        orgnr = [{"system": ORGNR_SYSTEM, "value": "974589095"}]
        response = await http.post("/", json=notice_bundle(orgnr, PATIENT), headers=FHIR)
        assert response.status_code == 200, response.text
        assert await _outgoing(http) == []

        refused = await http.post("/", json=notice_bundle(KOMMUNE_HER, []), headers=FHIR)
        assert refused.status_code == 422, refused.text
        assert "patient identifier" in refused.text
        assert await _outgoing(http) == []


async def test_the_municipality_answers_a_legacy_hospital(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    validator = XsdValidator(legacy / "xsd")
    async with app_client(session_databases[backend], kith_xsd_dir=str(legacy / "xsd")) as (http, _app):
        status, apprec = await post(http, sample(KLAR))
        assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors
        assert await _outgoing(http) == []  # the intake's own write sends nothing
        [task] = await search(http, f"/Task?code={clock.TASK_TOKEN}")
        answer = {
            **task,
            "businessStatus": {"coding": [{"system": clock.CLOCK_SYSTEM, "code": "can-receive"}]},
        }
        answer["output"] = [{"type": clock.part_type("canReceiveFrom"), "valueDate": "2018-02-02"}]
        assert (await _put(http, answer)).status_code == 200
        (record,) = await _outgoing(http)
        msg = _message(record, validator)
        assert (msg.logistics, msg.version.value) == (Logistics.ANSWER, "2.0")
        assert msg.receiver.ident("HER") == "59"  # the hospital that sent the notice
        assert msg.receiver.sub_organisation is not None
        assert msg.receiver.sub_organisation.ident("HER") == "90998"
        assert msg.conversation is not None
        assert msg.conversation.parent_id == "79c55ed0-0692-11e8-b566-0800200c9a66"
        assert [e.time.isoformat() for e in msg.events] == ["2018-02-02T00:00:00"]

        status, apprec = await post(http, sample(UTSKREVET))  # the hospital's next message: nothing back
        assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors
        assert len(await _outgoing(http)) == 1
