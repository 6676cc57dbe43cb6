"""Out, on SQLite and PostgreSQL: a PLO report written on FHIR (a Composition `plo-message#<report>` with a
`kith-recipient` that has a HER-id) becomes the PLO 1.6 report, XSD-valid, in an outgoing Communication;
made `amended` it is an Endring and `entered-in-error` a Kansellering in the report's conversation, each
record `partOf` the one before. A receiver on FHIR gets nothing; what cannot be the report is a 422."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from app.adapters.epikrise.to_fhir import EXT_RECIPIENT
from app.adapters.kith import _fhir_referral as r
from app.adapters.kith.apprec import AppRecStatus
from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.kith.xsd import XsdValidator
from app.adapters.plo._common import EXT_PLO
from app.adapters.plo.model import Family, Kind
from app.adapters.plo.parse import parse_plo
from app.resources.no_basis.identifiers import HERID_SYSTEM, ORGNR_SYSTEM
from tests.adapters.kith.test_routes_http import post, search
from tests.adapters.plo.conftest import sample
from tests.adapters.plo.test_outgoing_http import FHIR, _message, _outgoing, _put
from tests.conftest import app_client
from tests.databases import TestDatabase

NY = "Innleggelsesrapport_v1-6_Ny.xml"


async def _organisation(http: httpx.AsyncClient, identifier: dict[str, str]) -> str:
    org = {"resourceType": "Organization", "name": "Fjordby kommune", "identifier": [identifier]}
    response = await http.post("/Organization", json=org, headers=FHIR)
    assert response.status_code == 201, response.text
    return f"Organization/{response.json()['id']}"


def _report_on_fhir(kept: dict[str, Any], recipient: str) -> dict[str, Any]:
    """The report the intake kept, as a writer on FHIR would write it: no `ext:plo-message`, no
    `kith-party`, no document identifier; the receiver as `kith-recipient`."""
    comp = {k: v for k, v in kept.items() if k not in ("id", "meta", "identifier")}
    drop = (EXT_PLO, r.EXT_PARTY)
    comp["extension"] = [e for e in kept.get("extension", []) if e["url"] not in drop]
    comp["extension"].append({"url": EXT_RECIPIENT, "valueReference": {"reference": recipient}})
    comp["status"] = "final"
    return comp


async def test_a_report_written_on_fhir_is_sent_changed_and_cancelled(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    validator = XsdValidator(legacy / "xsd")
    received = parse_plo(parse_xml(sample(NY)))
    async with app_client(session_databases[backend], kith_xsd_dir=str(legacy / "xsd")) as (http, _app):
        status, apprec = await post(http, sample(NY))
        assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors
        assert await _outgoing(http) == []  # the intake's own report sends nothing
        [kept] = await search(http, "/Composition")
        kommune = await _organisation(http, {"system": HERID_SYSTEM, "value": "8300001"})
        response = await http.post("/Composition", json=_report_on_fhir(kept, kommune), headers=FHIR)
        assert response.status_code == 201, response.text
        comp = response.json()
        (record,) = await _outgoing(http)
        assert record["basedOn"] == [{"reference": f"Composition/{comp['id']}"}]
        assert record["payload"][0]["contentAttachment"]["title"] == "PLO: Innleggelsesrapport"
        sent = _message(record, validator)
        assert (sent.family, sent.kind, sent.msg_type.code, sent.document) == (
            Family.ADMISSION_REPORT,
            Kind.NEW,
            "INNLEGGELSESRAPPORT",
            "Innleggelsesrapport",
        )
        assert sent.receiver.ident("HER") == "8300001"
        assert sent.sender.ident("HER") == received.sender.ident("HER")  # the custodian
        assert sent.diagnoses == received.diagnoses
        assert [s.element for s in sent.sections] == [s.element for s in received.sections]
        assert [s.fields for s in sent.sections] == [s.fields for s in received.sections]

        assert (await _put(http, comp)).status_code == 200  # nothing the report carries changed
        assert len(await _outgoing(http)) == 1
        assert (await _put(http, {**comp, "status": "amended"})).status_code == 200
        change = _message((await _outgoing(http))[-1], validator)
        assert change.kind is Kind.CHANGE
        assert change.conversation is not None
        assert (change.conversation.parent_id, change.conversation.conversation_id) == (
            sent.msg_id,
            sent.msg_id,
        )

        assert (await _put(http, {**comp, "status": "entered-in-error"})).status_code == 200
        records = await _outgoing(http)
        cancel = _message(records[-1], validator)
        assert cancel.kind is Kind.CANCEL
        assert cancel.conversation is not None
        assert (cancel.conversation.parent_id, cancel.conversation.conversation_id) == (
            change.msg_id,
            sent.msg_id,
        )
        assert [(x.get("partOf") or [{}])[0].get("reference") for x in records] == [
            None,
            f"Communication/{records[0]['id']}",
            f"Communication/{records[1]['id']}",
        ]
        assert (await _put(http, {**comp, "status": "entered-in-error"})).status_code == 200
        assert len(await _outgoing(http)) == 3  # cancelled already


async def test_a_receiver_on_fhir_gets_nothing_and_a_report_that_cannot_be_one_is_refused(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    async with app_client(session_databases[backend], kith_xsd_dir=str(legacy / "xsd")) as (http, _app):
        status, apprec = await post(http, sample(NY))
        assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors
        [kept] = await search(http, "/Composition")
        on_fhir = await _organisation(http, {"system": ORGNR_SYSTEM, "value": "974589095"})
        response = await http.post("/Composition", json=_report_on_fhir(kept, on_fhir), headers=FHIR)
        assert response.status_code == 201, response.text
        assert await _outgoing(http) == []

        kommune = await _organisation(http, {"system": HERID_SYSTEM, "value": "8300001"})
        anonymous = await http.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR)
        assert anonymous.status_code == 201, anonymous.text
        report = _report_on_fhir(kept, kommune)
        report["subject"] = {"reference": f"Patient/{anonymous.json()['id']}"}
        refused = await http.post("/Composition", json=report, headers=FHIR)
        assert refused.status_code == 422, refused.text
        assert "patient identifier" in refused.text
        assert await _outgoing(http) == []
