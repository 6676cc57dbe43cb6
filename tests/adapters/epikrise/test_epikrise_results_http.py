"""Lab results and attachments of an Epikrise through `POST /$kith-message` on SQLite and PostgreSQL: stored as
Observations, a DiagnosticReport and DocumentReferences in the patient's compartment; a change rewrites them
and revokes what it no longer has; a cancellation revokes them; a part the model does not hold gives status
3 naming it, and the rest is stored."""

from __future__ import annotations

import re

import httpx

from app.adapters.kith.apprec import AppRecStatus
from tests.adapters.epikrise.test_epikrise_http import compartment
from tests.adapters.kith.conftest import fixture_bytes
from tests.adapters.kith.test_routes_http import post

LAB = fixture_bytes("epikrise_v1_2_lab_vedlegg.xml")
FNR = "22896112302"
_GROUP = re.compile(rb"\t\t\t<Event>.*?</Event>\n", re.DOTALL)  # the nested Event: the grouped results
_FILE_REF = re.compile(rb"\t\t<RefDoc>\n\t\t\t<MsgType.*?</RefDoc>\n", re.DOTALL)


def _version(kind: bytes, n: int, data: bytes = LAB) -> bytes:
    new = data.replace(b'<ServType V="N" DN="Ny"/>\n\t\t<IssueDate', kind + b"\n\t\t<IssueDate", 1)
    return new.replace(b"2a1f3b8e2201</MsgId>", b"2a1f3b8e220%d</MsgId>" % n)


def _statuses(resources: list[dict[str, object]]) -> dict[str, str]:
    out = {}
    for r in resources:
        code = r["code"]
        assert isinstance(code, dict)
        out[str(code["coding"][0]["code"])] = str(r["status"])
    return out


async def test_results_and_attachments_are_stored(client: httpx.AsyncClient) -> None:
    status, apprec = await post(client, LAB)
    assert (status, apprec.status) == (200, AppRecStatus.OK)
    observations = await compartment(client, FNR, "Observation")
    assert _statuses(observations) == {
        "NPU02192": "final",
        "NPU02593": "final",
        "NPU19748": "final",
        "BLODKULTUR": "final",
    }
    (report,) = await compartment(client, FNR, "DiagnosticReport")
    grouped = {o["id"] for o in observations if o["code"]["coding"][0]["code"] in ("NPU02192", "NPU02593")}
    assert {m["reference"].split("/")[1] for m in report["result"]} == grouped
    lab = await client.get(f"/{report['performer'][0]['reference']}")
    assert lab.json()["name"] == "Fjordby sykehus, Avdeling for medisinsk biokjemi"
    documents = await compartment(client, FNR, "DocumentReference")
    types = sorted(d["content"][0]["attachment"].get("contentType") for d in documents)
    assert types == ["application/pdf", "application/xml", "image/jpeg"]
    (composition,) = await compartment(client, FNR, "Composition")
    listed = [e["reference"] for s in composition["section"] for e in s.get("entry", [])]
    assert f"DiagnosticReport/{report['id']}" in listed
    assert all(
        f"DocumentReference/{d['id']}" in listed for d in documents if d["type"]["coding"][0]["code"] == "A"
    )


async def test_a_change_rewrites_results_and_revokes_what_it_no_longer_has(client: httpx.AsyncClient) -> None:
    assert (await post(client, LAB))[0] == 200
    change = _version(b'<ServType V="M" DN="Endring"/>', 2)
    change = _FILE_REF.sub(b"", _GROUP.sub(b"", change, count=1), count=1)
    change = change.replace(b'<NumResultValue V="5" U="mg/L"/>', b'<NumResultValue V="3" U="mg/L"/>')
    status, apprec = await post(client, change)
    assert (status, apprec.status) == (200, AppRecStatus.OK)
    observations = await compartment(client, FNR, "Observation")
    assert _statuses(observations) == {
        "NPU02192": "entered-in-error",
        "NPU02593": "entered-in-error",
        "NPU19748": "final",
        "BLODKULTUR": "final",
    }
    (crp,) = [o for o in observations if o["code"]["coding"][0]["code"] == "NPU19748"]
    assert crp["valueQuantity"]["value"] == 3
    (report,) = await compartment(client, FNR, "DiagnosticReport")
    assert report["status"] == "entered-in-error"
    documents = await compartment(client, FNR, "DocumentReference")
    by_type = sorted((d["content"][0]["attachment"].get("contentType"), d["status"]) for d in documents)
    assert by_type == [
        ("application/pdf", "current"),
        ("application/xml", "current"),
        ("image/jpeg", "entered-in-error"),
    ]


async def test_a_cancellation_revokes_results_and_attachments(client: httpx.AsyncClient) -> None:
    assert (await post(client, LAB))[0] == 200
    status, apprec = await post(client, _version(b'<ServType V="C" DN="Kansellering"/>', 3))
    assert (status, apprec.status) == (200, AppRecStatus.OK)
    for res_type in ("Observation", "DiagnosticReport", "DocumentReference"):
        assert {r["status"] for r in await compartment(client, FNR, res_type)} == {"entered-in-error"}


async def test_a_part_that_cannot_be_mapped_is_named_in_a_status_3_receipt(client: httpx.AsyncClient) -> None:
    diag = b'</ClinInv>\n<DiagComment><Concept V="R739" S="2.16.578.1.12.4.1.1.7110"/></DiagComment>'
    status, apprec = await post(client, LAB.replace(b"</ClinInv>", diag, 1))
    assert (status, apprec.status) == (200, AppRecStatus.OK_PARTIAL_ERROR)
    (error,) = apprec.errors
    assert error.code == "X99"
    assert "ServRprt/Event/Event/InfItem/ResultItem/DiagComment" in (error.details or "")
    assert len(await compartment(client, FNR, "Observation")) == 4
