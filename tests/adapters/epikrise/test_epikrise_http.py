"""Epikrise 1.0, 1.1 and 1.2 through `POST /$kith-message` on SQLite and PostgreSQL: a positive AppRec naming
the MsgId; Composition, DocumentReference, Encounter, Conditions, proposed MedicationStatements and
follow-up Tasks in the patient's compartment; a repeat stores nothing new; a change updates and revokes what
it no longer has; a cancellation revokes; an invalid Epikrise is refused to its sender, in Norwegian."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.adapters.epikrise.parse import parse_epikrise
from app.adapters.epikrise.to_fhir import DISCHARGE_SUMMARY, FOLLOW_UP, PROPOSAL
from app.adapters.kith.apprec import AppRecStatus
from app.adapters.kith.xmlsafe import parse_xml
from app.resources.no_basis.identifiers import FNR_SYSTEM
from tests.adapters.kith.conftest import fixture_bytes, legacy_files
from tests.adapters.kith.test_routes_http import post, search, stored_count
from tests.conftest import app_client
from tests.databases import TestDatabase

SAMPLES = "samples/Epikrise/Epikrise_v1-2/*.xml"
V1_0 = "epikrise_v1_0_ny.xml"
V1_1 = "epikrise_v1_1_ny.xml"
FIXTURE_FNR = "14835712347"


async def compartment(client: httpx.AsyncClient, fnr: str, res_type: str) -> list[dict[str, Any]]:
    (patient,) = await search(client, f"/Patient?identifier={FNR_SYSTEM}|{fnr}")
    if res_type == "Task":  # not in the Patient compartment in R4: by Task.for
        return await search(client, f"/Task?patient=Patient/{patient['id']}&_count=100")
    return await search(client, f"/Patient/{patient['id']}/{res_type}?_count=100")


def samples(legacy: Path) -> list[Path]:
    return sorted(legacy.glob(SAMPLES))


def message(source: Path | str) -> bytes:
    return source.read_bytes() if isinstance(source, Path) else fixture_bytes(source)


@pytest.mark.parametrize("source", [V1_0, V1_1, *legacy_files(SAMPLES)])
async def test_epikrise_is_stored_in_the_patients_compartment(
    client: httpx.AsyncClient, app: FastAPI, source: Path | str
) -> None:
    data = message(source)
    msg = parse_epikrise(parse_xml(data))
    fnr = msg.patient.idents[0].id
    status, apprec = await post(client, data)
    assert status == 200, apprec
    assert apprec.status is AppRecStatus.OK
    assert apprec.original_id == msg.msg_id
    assert apprec.receiver.ident("HER") == msg.sender.ident("HER")
    (composition,) = await compartment(client, fnr, "Composition")
    assert composition["type"]["coding"] == [DISCHARGE_SUMMARY]
    assert composition["status"] == "final"
    (document,) = await compartment(client, fnr, "DocumentReference")
    assert document["content"][0]["attachment"]["contentType"] == "application/xml"
    encounters = await compartment(client, fnr, "Encounter")
    assert len(encounters) == len(msg.stays)
    conditions = await compartment(client, fnr, "Condition")
    assert sorted(c["code"]["coding"][0]["code"] for c in conditions) == sorted(
        d.concept.code or "" for s in msg.stays for d in s.diagnoses
    )
    statements = await compartment(client, fnr, "MedicationStatement")
    assert len(statements) == sum(len(s.medications) for s in msg.stays)
    assert all(s["status"] == "intended" and s["category"]["coding"] == [PROPOSAL] for s in statements)
    tasks = [t for t in await compartment(client, fnr, "Task") if t["code"]["coding"] == [FOLLOW_UP]]
    assert len(tasks) == 1
    assert tasks[0]["status"] == "requested"
    owner = await client.get(f"/{tasks[0]['owner']['reference']}")
    # (the official sample gives the GP's office the hospital's HER-id: the Organization is shared)
    assert msg.receiver.ident("HER") in [i["value"] for i in owner.json()["identifier"]]
    count = await stored_count(app)
    again_status, again = await post(client, data)
    assert (again_status, again.id) == (200, apprec.id)
    assert await stored_count(app) == count


# --- changes and cancellations --------------------------------------------------------------------------------

NEW_KIND = b'<ServType V="N" DN="Ny"/>\n\t\t<IssueDate V="2024-03-04T09:00:00"/>'
MSG_ID = b"<MsgId>3d1c6a52-0c4f-4a51-9b7e-1f0e2a7d1101</MsgId>"
SECOND_DIAGNOSIS = b"""			<InfItem>
				<Observation>
					<CodedDescr>
						<Concept V="I10" DN="Essensiell hypertensjon" S="2.16.578.1.12.4.1.1.7110"/>
					</CodedDescr>
				</Observation>
				<Type V="B" DN="Bidiagnose"/>
			</InfItem>
"""
FOLLOW_UP_TEXT = b"Fastlege bes kontrollere blodtrykk og lipider om 6 uker."


def version_of(kind: bytes, msg_id: bytes, *changes: tuple[bytes, bytes]) -> bytes:
    data = fixture_bytes(V1_1)
    assert NEW_KIND in data
    assert MSG_ID in data
    data = data.replace(NEW_KIND, NEW_KIND.replace(b'V="N" DN="Ny"', kind)).replace(MSG_ID, msg_id)
    for old, new in changes:
        assert old in data
        data = data.replace(old, new)
    return data


CHANGE = version_of(
    b'V="M" DN="Endring"',
    b"<MsgId>3d1c6a52-0c4f-4a51-9b7e-1f0e2a7d1102</MsgId>",
    (SECOND_DIAGNOSIS, b""),
    (FOLLOW_UP_TEXT, b"Fastlege bes kontrollere blodtrykk om 4 uker."),
)
CANCEL = version_of(b'V="C" DN="Kansellering"', b"<MsgId>3d1c6a52-0c4f-4a51-9b7e-1f0e2a7d1103</MsgId>")


def _verification(condition: dict[str, Any]) -> str:
    return str(condition["verificationStatus"]["coding"][0]["code"])


async def test_a_change_updates_and_revokes_what_it_no_longer_has(client: httpx.AsyncClient) -> None:
    assert (await post(client, fixture_bytes(V1_1)))[0] == 200
    status, apprec = await post(client, CHANGE)
    assert (status, apprec.status, apprec.original_id) == (
        200,
        AppRecStatus.OK,
        "3d1c6a52-0c4f-4a51-9b7e-1f0e2a7d1102",
    )
    (composition,) = await compartment(client, FIXTURE_FNR, "Composition")
    assert composition["status"] == "amended"
    conditions = {
        c["code"]["coding"][0]["code"]: c for c in await compartment(client, FIXTURE_FNR, "Condition")
    }
    assert {code: _verification(c) for code, c in conditions.items()} == {
        "I214": "confirmed",
        "I10": "entered-in-error",
    }
    (task,) = await compartment(client, FIXTURE_FNR, "Task")
    assert (task["status"], task["description"]) == (
        "requested",
        "Fastlege bes kontrollere blodtrykk om 4 uker.",
    )
    assert len(await compartment(client, FIXTURE_FNR, "DocumentReference")) == 1


async def test_a_change_keeps_what_the_gp_has_done_with_the_follow_up(client: httpx.AsyncClient) -> None:
    assert (await post(client, fixture_bytes(V1_1)))[0] == 200
    (task,) = await compartment(client, FIXTURE_FNR, "Task")
    task["status"] = "in-progress"
    response = await client.put(
        f"/Task/{task['id']}", json=task, headers={"Content-Type": "application/fhir+json"}
    )
    assert response.status_code == 200, response.text
    assert (await post(client, CHANGE))[0] == 200
    (task,) = await compartment(client, FIXTURE_FNR, "Task")
    assert (task["status"], task["description"]) == (
        "in-progress",
        "Fastlege bes kontrollere blodtrykk om 4 uker.",
    )


async def test_a_cancellation_revokes_what_the_first_made(client: httpx.AsyncClient) -> None:
    assert (await post(client, fixture_bytes(V1_1)))[0] == 200
    status, apprec = await post(client, CANCEL)
    assert (status, apprec.status) == (200, AppRecStatus.OK)
    (composition,) = await compartment(client, FIXTURE_FNR, "Composition")
    assert composition["status"] == "entered-in-error"
    assert {_verification(c) for c in await compartment(client, FIXTURE_FNR, "Condition")} == {
        "entered-in-error"
    }
    statements = await compartment(client, FIXTURE_FNR, "MedicationStatement")
    assert {s["status"] for s in statements} == {"entered-in-error"}
    assert [t["status"] for t in await compartment(client, FIXTURE_FNR, "Task")] == ["cancelled"]
    for res_type in ("Encounter", "DocumentReference"):
        assert {r["status"] for r in await compartment(client, FIXTURE_FNR, res_type)} == {"entered-in-error"}


async def test_a_cancellation_of_an_unknown_epikrise_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    status, apprec = await post(client, CANCEL)
    assert (status, apprec.status, [e.code for e in apprec.errors]) == (422, AppRecStatus.REJECTED, ["X99"])
    assert apprec.original_id == "3d1c6a52-0c4f-4a51-9b7e-1f0e2a7d1103"
    assert apprec.errors[0].description is not None
    assert await stored_count(app) == 0


# --- refusals: named to the message and its sender, in Norwegian ----------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "code", "text"),
    [
        pytest.param(
            b'<IssueDate V="2024-03-04T09:00:00"/>',
            b"",
            "T02",
            "obligatorisk element <GenDate> eller <IssueDate> mangler",
            id="no-issue-date",
        ),
        pytest.param(
            b'<TypeOffId V="FNR"', b'<TypeOffId V="XYZ"', "E36", "pasientens identifikator", id="bad-id-type"
        ),
        pytest.param(
            b"xmlstds/epikrise/2006-09-23",
            b"xmlstds/epikrise/2099-01-01",
            "T10",
            "ikke en Epikrise 1.0/1.1/1.2",
            id="unknown-version",
        ),
        pytest.param(
            b'<GenDate V="2024-03-04T10:15:00"/>',
            b'<GenDate V="4. mars"/>',
            "T02",
            "ugyldig dato/tid",
            id="bad-gendate",
        ),
    ],
)
async def test_an_invalid_epikrise_is_refused_naming_its_msg_id_and_sender(
    client: httpx.AsyncClient, app: FastAPI, old: bytes, new: bytes, code: str, text: str
) -> None:
    data = fixture_bytes(V1_1)
    assert old in data
    status, apprec = await post(client, data.replace(old, new, 1))
    assert status == 422
    assert apprec.status is AppRecStatus.REJECTED
    assert [e.code for e in apprec.errors] == [code]
    assert text in (apprec.errors[0].details or "")
    assert apprec.original_id == "3d1c6a52-0c4f-4a51-9b7e-1f0e2a7d1101"
    assert apprec.receiver.ident("HER") == "8100001"
    assert apprec.receiver.name == "Fjordby sykehus"
    assert await stored_count(app) == 0


async def test_an_xsd_invalid_epikrise_is_refused_to_its_sender(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    data = fixture_bytes(V1_0).replace(b"<MsgDescr>Epikrise fra medisinsk avdeling</MsgDescr>", b"")
    async with app_client(session_databases[backend], kith_xsd_dir=str(legacy / "xsd")) as (http, app):
        status, apprec = await post(http, data)
        assert (status, [e.code for e in apprec.errors]) == (422, ["T02"])
        assert apprec.original_id == "3d1c6a52-0c4f-4a51-9b7e-1f0e2a7d1001"
        assert apprec.receiver.ident("HER") == "8100001"
        assert await stored_count(app) == 0
        sources: list[Path | str] = [V1_0, V1_1, *samples(legacy)]
        for source in sources:
            status, apprec = await post(http, message(source))
            assert (status, apprec.status) == (200, AppRecStatus.OK), source
