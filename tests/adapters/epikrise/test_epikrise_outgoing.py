"""Out: a discharge summary written on FHIR (Composition LOINC 18842-5 with its Encounter, Conditions and
MedicationStatements) for a GP's Organization with a HER-id becomes an Epikrise 1.2 in an outgoing
Communication, XSD-valid; its change goes out as an Endring (M) and its cancellation as a Kansellering (C);
one for an organisation on FHIR (no HER-id) sends nothing."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx

from app.adapters.epikrise.model import Epikrise, EpikriseVersion
from app.adapters.epikrise.parse import parse_epikrise
from app.adapters.epikrise.to_fhir import DISCHARGE_SUMMARY, EXT_RECIPIENT
from app.adapters.kith.model import MessageKind
from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.kith.xsd import XsdValidator
from app.resources.no_basis.identifiers import FNR_SYSTEM, HERID_SYSTEM, HPR_SYSTEM
from tests.adapters.kith.test_routes_http import search
from tests.conftest import app_client
from tests.databases import TestDatabase

FHIR = {"Content-Type": "application/fhir+json"}
OUTGOING = "http://helsebro.no/fhir/CodeSystem/kith-message|outgoing"
XHTML = "http://www.w3.org/1999/xhtml"


def _entry(name: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{name}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def _ref(name: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{name}"}


def discharge_summary(gp_identifier: list[dict[str, str]]) -> dict[str, Any]:
    ids = {
        n: f"00000000-0000-4000-8000-00000000000{i}"
        for i, n in enumerate(("patient", "hospital", "gp", "doctor", "encounter", "dx", "med", "comp"))
    }
    entries = [
        _entry(
            ids["patient"],
            {
                "resourceType": "Patient",
                "identifier": [{"system": FNR_SYSTEM, "value": "14835712347"}],
                "name": [{"family": "Testesen", "given": ["Ola"]}],
                "gender": "male",
                "birthDate": "1957-03-14",
            },
        ),
        _entry(
            ids["hospital"],
            {
                "resourceType": "Organization",
                "name": "Fjordby sykehus",
                "identifier": [{"system": HERID_SYSTEM, "value": "8100001"}],
            },
        ),
        _entry(
            ids["gp"],
            {"resourceType": "Organization", "name": "Fjordby legesenter", "identifier": gp_identifier},
        ),
        _entry(
            ids["doctor"],
            {
                "resourceType": "Practitioner",
                "identifier": [{"system": HPR_SYSTEM, "value": "9000456"}],
                "name": [{"family": "Overlege", "given": ["Per"]}],
            },
        ),
        _entry(
            ids["encounter"],
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                "subject": _ref(ids["patient"]),
                "period": {"start": "2024-02-27T14:00:00+01:00", "end": "2024-03-03T11:00:00+01:00"},
            },
        ),
        _entry(
            ids["dx"],
            {
                "resourceType": "Condition",
                "code": {
                    "coding": [
                        {
                            "system": "urn:oid:2.16.578.1.12.4.1.1.7110",
                            "code": "I214",
                            "display": "Akutt subendokardielt hjerteinfarkt",
                        }
                    ]
                },
                "subject": _ref(ids["patient"]),
                "encounter": _ref(ids["encounter"]),
            },
        ),
        _entry(
            ids["med"],
            {
                "resourceType": "MedicationStatement",
                "status": "active",
                "medicationCodeableConcept": {
                    "coding": [
                        {
                            "system": "urn:oid:2.16.578.1.12.4.1.1.7180",
                            "code": "B01AC06",
                            "display": "Albyl-E",
                        }
                    ]
                },
                "subject": _ref(ids["patient"]),
                "dosage": [{"text": "1 tablett daglig"}],
            },
        ),
        _entry(
            ids["comp"],
            {
                "resourceType": "Composition",
                "extension": [{"url": EXT_RECIPIENT, "valueReference": _ref(ids["gp"])}],
                "status": "final",
                "type": {"coding": [DISCHARGE_SUMMARY]},
                "subject": _ref(ids["patient"]),
                "encounter": _ref(ids["encounter"]),
                "date": "2024-03-04T09:00:00+01:00",
                "author": [_ref(ids["hospital"]), _ref(ids["doctor"])],
                "custodian": _ref(ids["hospital"]),
                "title": "Epikrise",
                "section": [
                    {"title": "Diagnoser", "entry": [_ref(ids["dx"])]},
                    {"title": "Legemidler", "entry": [_ref(ids["med"])]},
                    {
                        "title": "Forløp og behandling",
                        "code": {"coding": [{"code": "FO", "display": "Forløp og behandling"}]},
                        "text": {
                            "status": "generated",
                            "div": f'<div xmlns="{XHTML}"><p>PCI av RCA dag 2.</p></div>',
                        },
                    },
                ],
            },
        ),
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def _outgoing(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    return await search(http, f"/Communication?category={OUTGOING}")


def _message(record: dict[str, Any], validator: XsdValidator) -> Epikrise:
    root = parse_xml(base64.b64decode(record["payload"][0]["contentAttachment"]["data"]))
    result = validator.validate(root)
    assert result.valid, result.errors
    return parse_epikrise(root)


async def _put(http: httpx.AsyncClient, resource: dict[str, Any]) -> None:
    response = await http.put(f"/Composition/{resource['id']}", json=resource, headers=FHIR)
    assert response.status_code == 200, response.text


async def test_a_discharge_summary_on_fhir_becomes_an_epikrise(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    validator = XsdValidator(legacy / "xsd")
    async with app_client(session_databases[backend], kith_xsd_dir=str(legacy / "xsd")) as (http, _app):
        response = await http.post(
            "/", json=discharge_summary([{"system": HERID_SYSTEM, "value": "8200001"}]), headers=FHIR
        )
        assert response.status_code == 200, response.text
        (record,) = await _outgoing(http)
        assert record["status"] == "preparation"
        assert record["about"][0]["reference"].startswith("Composition/")
        msg = _message(record, validator)
        assert msg.version is EpikriseVersion.V1_2
        assert msg.receiver.ident("HER") == "8200001"
        assert msg.sender.ident("HER") == "8100001"
        assert msg.patient.ident("FNR") == "14835712347"
        (stay,) = msg.stays
        assert [d.concept.code for d in stay.diagnoses] == ["I214"]
        assert [m.drug.code for m in stay.medications] == ["B01AC06"]
        assert [(c.heading.code if c.heading else None) for c in stay.comments] == ["FO"]
        assert msg.responsible[0].professional.ident("HPR") == "9000456"


async def test_a_discharge_summary_for_an_organisation_on_fhir_sends_nothing(
    session_databases: dict[str, TestDatabase], backend: str
) -> None:
    async with app_client(session_databases[backend]) as (http, _app):
        orgnr = [{"system": "urn:oid:2.16.578.1.12.4.1.4.101", "value": "974589095"}]
        response = await http.post("/", json=discharge_summary(orgnr), headers=FHIR)
        assert response.status_code == 200, response.text
        assert await _outgoing(http) == []


async def test_a_change_and_a_cancellation_go_out_as_m_and_c(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    """create → N; amended → M naming the same document; an update of nothing the Epikrise carries → nothing;
    entered-in-error → C; each record `partOf` the one before."""
    validator = XsdValidator(legacy / "xsd")
    async with app_client(session_databases[backend], kith_xsd_dir=str(legacy / "xsd")) as (http, _app):
        response = await http.post(
            "/", json=discharge_summary([{"system": HERID_SYSTEM, "value": "8200001"}]), headers=FHIR
        )
        assert response.status_code == 200, response.text
        (first,) = await _outgoing(http)
        composition = (await http.get(f"/{first['about'][0]['reference']}")).json()
        new = _message(first, validator)
        assert (new.kind, new.document_id) == (MessageKind.NEW, composition["id"])

        composition |= {"status": "amended", "title": "Epikrise (rettet)"}
        await _put(http, composition)
        records = {r["id"]: r for r in await _outgoing(http)}
        (second,) = [r for r in records.values() if r["id"] != first["id"]]
        change = _message(second, validator)
        assert (change.kind, change.document_id, change.description) == (
            MessageKind.CHANGE,
            composition["id"],
            "Epikrise (rettet)",
        )
        assert change.msg_id != new.msg_id
        assert second["partOf"] == [{"reference": f"Communication/{first['id']}"}]

        composition = (await http.get(f"/Composition/{composition['id']}")).json()
        composition["meta"] = {**composition.get("meta", {}), "tag": [{"code": "sett"}]}
        await _put(http, composition)  # nothing the Epikrise carries
        assert len(await _outgoing(http)) == 2

        composition = (await http.get(f"/Composition/{composition['id']}")).json()
        composition["status"] = "entered-in-error"
        await _put(http, composition)
        (third,) = [r for r in await _outgoing(http) if r["id"] not in records]
        cancel = _message(third, validator)
        assert (cancel.kind, cancel.document_id) == (MessageKind.CANCEL, composition["id"])
        assert third["partOf"] == [{"reference": f"Communication/{second['id']}"}]

        await _put(http, (await http.get(f"/Composition/{composition['id']}")).json())
        assert len(await _outgoing(http)) == 3  # cancelled once
