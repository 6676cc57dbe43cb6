"""The KITH routes through HTTP on SQLite and PostgreSQL: `POST /$kith-message` answers every message with an
AppRec and stores accepted referrals once; refused messages store nothing; `$kith-henvisning` writes the
stored referral back as a Henvisning."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.adapters.kith.apprec import NS_V1_0, AppRec, AppRecStatus, parse_apprec
from app.adapters.kith.henvisning import parse_henvisning
from app.adapters.kith.model import HenvisningVersion, Referral
from app.adapters.kith.xmlsafe import parse_xml
from app.resources.no_basis.identifiers import HPR_SYSTEM
from tests.adapters.kith.conftest import FIXTURES, fixture_bytes
from tests.conftest import app_client
from tests.databases import TestDatabase

XML = {"Content-Type": "application/xml"}
V2 = "henvisning_v2_nytilstand.xml"
V1 = "henvisning_v1_1_ny.xml"
BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2006-05-24">&lol3;</MsgHead>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><MsgHead>&x;</MsgHead>"""


async def post(client: httpx.AsyncClient, data: bytes, path: str = "/$kith-message") -> tuple[int, AppRec]:
    response = await client.post(path, content=data, headers=XML)
    assert response.headers["content-type"].startswith("application/xml"), response.text
    return response.status_code, parse_apprec(parse_xml(response.content))


async def stored_count(app: FastAPI) -> int:
    async with app.state.database.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM resource"))).scalar_one())


async def search(client: httpx.AsyncClient, query: str) -> list[dict[str, Any]]:
    response = await client.get(query)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", [])]


def variant(name: str, old: bytes, new: bytes) -> bytes:
    data = fixture_bytes(name)
    assert old in data
    return data.replace(old, new)


async def test_referral_is_stored_once_and_answered_with_the_same_apprec(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    message = fixture_bytes(V2)
    first = await client.post("/$kith-message", content=message, headers=XML)
    assert first.status_code == 200, first.text
    apprec = parse_apprec(parse_xml(first.content))
    ref = parse_henvisning(message)
    assert apprec.status is AppRecStatus.OK
    assert apprec.errors == ()
    assert apprec.original_id == ref.msg_id
    assert apprec.original_msg_type.code == "HENVISNING_NYTILSTAND"
    assert apprec.receiver.ident("HER") == ref.sender.ident("HER")  # back to the sender
    assert apprec.sender.name == ref.receiver.name
    count = await stored_count(app)

    again = await client.post("/$kith-message", content=message, headers=XML)
    assert again.status_code == 200
    assert again.content == first.content  # the first answer, byte for byte
    assert await stored_count(app) == count
    (service_request,) = await search(client, "/ServiceRequest")
    assert service_request["meta"]["versionId"] == "1"
    (task,) = await search(client, "/Task")
    assert task["status"] == "requested"
    assert task["focus"] == {"reference": f"ServiceRequest/{service_request['id']}"}
    (record,) = await search(
        client, "/Communication?category=http://helsebro.no/fhir/CodeSystem/kith-message|received"
    )
    assert record["about"] == [{"reference": f"ServiceRequest/{service_request['id']}"}]
    assert record["subject"] == service_request["subject"]


async def test_henvisning_1_1_is_accepted_and_apprec_version_follows_the_setting(
    session_databases: dict[str, TestDatabase], backend: str
) -> None:
    async with app_client(session_databases[backend], kith_apprec_version="1.0") as (http, _app):
        response = await http.post("/$kith-message", content=fixture_bytes(V1), headers=XML)
        assert response.status_code == 200, response.text
        assert parse_xml(response.content).tag == f"{{{NS_V1_0}}}AppRec"
        assert len(await search(http, "/Task")) == 1


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        (V2, (b"6f1c2a8e-5b1d-4c3e-9a77-0d2f3b4c5d6e", b"0b7e8f10-2a3b-4c5d-8e9f-a0b1c2d3e4f5")),
        (V1, (b"1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f", b"7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d")),
    ],
)
async def test_second_referral_from_the_same_doctor_shares_the_people(
    client: httpx.AsyncClient, name: str, ids: tuple[bytes, bytes]
) -> None:
    """The referrer is named twice in each message (sender and AnsvarForRapport/PatRelHCP): one
    Practitioner per person, found again by the next message instead of a conflict."""
    msg_id, document_id = ids
    first = fixture_bytes(name)
    second = first.replace(msg_id, b"second-message").replace(document_id, b"second-document")
    for message in (first, second):
        status, apprec = await post(client, message)
        assert (status, apprec.status) == (200, AppRecStatus.OK)
    assert len(await search(client, "/ServiceRequest")) == 2
    practitioners = await search(client, "/Practitioner")
    hprs = [
        i["value"] for p in practitioners for i in p.get("identifier", []) if i.get("system") == HPR_SYSTEM
    ]
    assert len(hprs) == len(set(hprs)), "one Practitioner per HPR number"


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        pytest.param(BOMB, 400, "T99", id="entity-bomb"),
        pytest.param(EXTERNAL_ENTITY, 400, "T99", id="external-entity"),
        pytest.param(b"this is not xml", 400, "T01", id="not-xml"),
        pytest.param(b"", 400, "T01", id="empty"),
        pytest.param(b"<Message xmlns='urn:other'/>", 422, "T10", id="unknown-message"),
    ],
)
async def test_unreadable_messages_get_an_error_apprec_and_store_nothing(
    client: httpx.AsyncClient, app: FastAPI, data: bytes, status: int, code: str
) -> None:
    got, apprec = await post(client, data)
    assert got == status
    assert apprec.status is AppRecStatus.REJECTED
    assert [e.code for e in apprec.errors] == [code]
    assert apprec.original_id == "UKJENT"
    assert apprec.sender.name == "Helsebro"
    assert await stored_count(app) == 0


async def test_wrong_business_namespace_is_answered_to_its_sender(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    data = variant(
        V2, b"http://ehelse.no/xmlstds/henvisning/2017-11-30", b"http://ehelse.no/xmlstds/henvisning/1999"
    )
    status, apprec = await post(client, data)
    assert status == 422
    assert [e.code for e in apprec.errors] == ["T10"]
    assert apprec.original_id == parse_henvisning(fixture_bytes(V2)).msg_id
    assert apprec.receiver.ident("HER") == "8123401"  # the GP's office
    assert await stored_count(app) == 0


async def test_unknown_patient_identifier_type_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    data = variant(V2, b'<TypeId V="FNR" DN="F\xc3\xb8dselsnummer"', b'<TypeId V="XYZ" DN="Ukjent"')
    status, apprec = await post(client, data)
    assert status == 422
    assert [e.code for e in apprec.errors] == ["E36"]
    assert "14835712347" not in (apprec.errors[0].details or "")  # no patient data in the receipt
    assert await stored_count(app) == 0


async def test_oversized_message_gets_413(session_databases: dict[str, TestDatabase], backend: str) -> None:
    async with app_client(session_databases[backend], kith_max_message_bytes=1000) as (http, app):
        status, apprec = await post(http, fixture_bytes(V2))
        assert status == 413
        assert [e.code for e in apprec.errors] == ["T99"]
        assert await stored_count(app) == 0


async def test_json_is_not_a_kith_message(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/$kith-message", content=b"{}", headers={"Content-Type": "application/fhir+json"}
    )
    assert response.status_code == 415
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("headers", [{"Content-Type": "text/plain"}, {}])
async def test_a_body_not_declared_as_xml_is_415_and_stores_nothing(
    client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
) -> None:
    response = await client.post("/$kith-message", content=fixture_bytes(V2), headers=headers)
    assert response.status_code == 415
    assert response.json()["resourceType"] == "OperationOutcome"
    assert await stored_count(app) == 0


async def test_text_xml_is_read_as_a_message(client: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    response = await client.post("/$kith-message", content=fixture_bytes(V2), headers=headers)
    assert response.status_code == 200, response.text


async def test_change_to_an_unknown_referral_is_refused_and_rolled_back(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    cancel = variant(V2, b'<ServType V="N" DN="Ny"/>', b'<ServType V="C" DN="Kansellering"/>')
    status, apprec = await post(client, cancel)
    assert status == 422
    assert [e.code for e in apprec.errors] == ["X99"]
    assert await stored_count(app) == 0  # not even the Patient or the Organizations
    status, apprec = await post(client, fixture_bytes(V2))  # a refused MsgId is not remembered
    assert (status, apprec.status) == (200, AppRecStatus.OK)


# --- XSD validation -----------------------------------------------------------------------------------------

INVALID_V2 = (b"</MsgInfo>", b"</MsgInfo><Unexpected/>")


async def test_xsd_invalid_message_is_refused_with_stand_in_schemas(
    session_databases: dict[str, TestDatabase], backend: str
) -> None:
    """Stand-in schemas (tests/adapters/kith/fixtures/xsd) show the wiring wherever the official ones are
    absent; the next test uses the official ones."""
    async with app_client(session_databases[backend], kith_xsd_dir=str(FIXTURES / "xsd")) as (http, app):
        status, apprec = await post(http, variant(V2, *INVALID_V2))
        assert status == 422
        assert [e.code for e in apprec.errors] == ["T02"]
        assert await stored_count(app) == 0
        status, apprec = await post(http, fixture_bytes(V2))
        assert (status, apprec.status) == (200, AppRecStatus.OK)


async def test_xsd_invalid_message_is_refused_with_official_schemas(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    async with app_client(session_databases[backend], kith_xsd_dir=str(legacy / "xsd")) as (http, app):
        status, apprec = await post(http, variant(V2, *INVALID_V2))
        assert status == 422
        assert [e.code for e in apprec.errors] == ["T02"]
        assert await stored_count(app) == 0
        for name in (V2, "henvisning_v2_videre.xml"):
            status, apprec = await post(http, fixture_bytes(name))
            assert (status, apprec.status) == (200, AppRecStatus.OK), name
        (sr, *_) = await search(http, "/ServiceRequest?_count=1")
        for version in ("2.0", "1.1"):  # 1.1 with the stand-in for its missing poKomponent v1.5
            response = await http.get(f"/ServiceRequest/{sr['id']}/$kith-henvisning?version={version}")
            assert response.status_code == 200, response.text


async def test_messages_read_in_a_worker_process_are_answered_as_those_read_here(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    """With CPU_PROCESSES=1 the message is read (and checked against its XSD) in a worker process: an
    accepted message is stored, and a refusal keeps its code, its status and its addressee."""
    settings = {"cpu_processes": 1, "kith_xsd_dir": str(legacy / "xsd")}
    async with app_client(session_databases[backend], **settings) as (http, app):
        try:
            assert app.state.engine.svc.cpu is not None
            for data, status, code in (
                (BOMB, 400, "T99"),
                (b"this is not xml", 400, "T01"),
                (variant(V2, *INVALID_V2), 422, "T02"),
                (
                    variant(V2, b'<TypeId V="FNR" DN="F\xc3\xb8dselsnummer"', b'<TypeId V="XYZ" DN="Ukjent"'),
                    422,
                    "E36",
                ),
            ):
                got, apprec = await post(http, data)
                assert (got, [e.code for e in apprec.errors]) == (status, [code]), code
            assert apprec.original_id == parse_henvisning(fixture_bytes(V2)).msg_id
            assert apprec.receiver.ident("HER") == "8123401"  # the sender, read in the worker
            assert await stored_count(app) == 0
            status, apprec = await post(http, fixture_bytes(V2))
            assert (status, apprec.status) == (200, AppRecStatus.OK)
            assert len(await search(http, "/ServiceRequest")) == 1
        finally:
            app.state.engine.svc.cpu.close()


# --- $kith-henvisning ---------------------------------------------------------------------------------------


def _same_referral(back: Referral, original: Referral) -> None:
    """Every field survives the store; only the message's own id and time are new."""
    assert back.msg_id != original.msg_id
    assert dataclasses.replace(back, msg_id=original.msg_id, generated=original.generated) == original


@pytest.mark.parametrize(("name", "version"), [(V2, HenvisningVersion.V2_0), (V1, HenvisningVersion.V1_1)])
async def test_stored_referral_is_written_back_as_henvisning(
    client: httpx.AsyncClient, name: str, version: HenvisningVersion
) -> None:
    message = fixture_bytes(name)
    assert (await client.post("/$kith-message", content=message, headers=XML)).status_code == 200
    (sr,) = await search(client, "/ServiceRequest")
    response = await client.get(f"/ServiceRequest/{sr['id']}/$kith-henvisning?version={version.value}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    _same_referral(parse_henvisning(response.content), parse_henvisning(message))


async def test_kith_henvisning_errors(client: httpx.AsyncClient) -> None:
    missing = await client.get("/ServiceRequest/nope/$kith-henvisning")
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    assert (await client.post("/$kith-message", content=fixture_bytes(V2), headers=XML)).status_code == 200
    (sr,) = await search(client, "/ServiceRequest")
    bad = await client.get(f"/ServiceRequest/{sr['id']}/$kith-henvisning?version=3.0")
    assert bad.status_code == 400
