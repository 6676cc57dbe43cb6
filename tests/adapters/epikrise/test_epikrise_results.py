"""Lab results and attachments of an Epikrise without a database: ResultItems as Observations (grouped by a
nested Event in a DiagnosticReport), RefDocs as DocumentReferences, both listed in Composition sections;
back to a 1.2 that validates; results and attachments written on FHIR; the parts the model does not hold
named for the receipt."""

from __future__ import annotations

import dataclasses
from typing import Any

from app.adapters.epikrise.build import build_epikrise
from app.adapters.epikrise.from_fhir import epikrise_from_bundle, epikrise_from_resources
from app.adapters.epikrise.parse import parse_epikrise, unmapped_epikrise
from app.adapters.epikrise.results import ATTACHMENTS_SECTION, LAB_REPORT, LABORATORY, RESULTS_SECTION
from app.adapters.epikrise.to_fhir import epikrise_to_bundle
from app.adapters.kith.model import Coded, MessageKind, Quantity, ResultKind
from app.adapters.kith.ucum import UCUM
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.kith.xsd import XsdValidator
from app.resources.no_basis.identifiers import FNR_SYSTEM
from tests.adapters.kith.conftest import fixture_bytes

LAB = "epikrise_v1_2_lab_vedlegg.xml"
NLK = "urn:oid:2.16.578.1.12.4.1.1.7280"
Json = dict[str, Any]


def _resources(bundle: Json, res_type: str) -> list[Json]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == res_type]


def _by_url(bundle: Json) -> dict[str, Json]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def _lab_bundle() -> Json:
    bundle, _ = epikrise_to_bundle(parse_epikrise(parse_xml(fixture_bytes(LAB))))
    return bundle


def test_results_become_laboratory_observations() -> None:
    bundle = _lab_bundle()
    observations = {o["code"]["coding"][0]["code"]: o for o in _resources(bundle, "Observation")}
    assert set(observations) == {"NPU02192", "NPU02593", "NPU19748", "BLODKULTUR"}
    assert all(o["category"] == [{"coding": [LABORATORY]}] for o in observations.values())
    glucose = observations["NPU02192"]
    assert glucose["code"]["coding"][0]["system"] == NLK
    assert glucose["valueQuantity"] == {"value": 7.4, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}
    assert glucose["effectiveDateTime"].startswith("2024-04-29T08:15:00")
    assert [c["code"] for c in glucose["interpretation"][0]["coding"]] == ["H", "H"]
    assert glucose["note"] == [{"text": "Fastende"}]
    lab = _by_url(bundle)[glucose["performer"][0]["reference"]]
    assert (lab["resourceType"], lab["identifier"][0]["value"]) == ("Organization", "8100003")
    # 10^9/l is how the lab wrote it, not UCUM: the unit stays text
    assert observations["NPU02593"]["valueQuantity"] == {"value": 8.2, "unit": "10^9/l"}
    assert observations["NPU19748"]["valueQuantity"]["comparator"] == "<"
    assert observations["BLODKULTUR"]["valueString"] == "Ingen vekst etter 48 timer."


def test_a_nested_event_groups_its_results_in_a_diagnostic_report() -> None:
    bundle = _lab_bundle()
    (report,) = _resources(bundle, "DiagnosticReport")
    assert report["code"] == {"coding": [LAB_REPORT]}
    members = [_by_url(bundle)[m["reference"]] for m in report["result"]]
    assert [m["code"]["coding"][0]["code"] for m in members] == ["NPU02192", "NPU02593"]
    assert len(report["performer"]) == 1  # one lab for both results
    (composition,) = _resources(bundle, "Composition")
    (section,) = [s for s in composition["section"] if s.get("code") == {"coding": [RESULTS_SECTION]}]
    listed = {_by_url(bundle)[e["reference"]]["resourceType"] for e in section["entry"]}
    assert (len(section["entry"]), listed) == (3, {"Observation", "DiagnosticReport"})


def test_attachments_become_document_references_of_the_composition() -> None:
    bundle = _lab_bundle()
    (composition,) = _resources(bundle, "Composition")
    (section,) = [s for s in composition["section"] if s.get("code") == {"coding": [ATTACHMENTS_SECTION]}]
    pdf, image = (_by_url(bundle)[e["reference"]] for e in section["entry"])
    assert pdf["content"][0]["attachment"]["contentType"] == "application/pdf"
    assert pdf["content"][0]["attachment"]["title"] == "EKG 29.04.2024"
    assert pdf["content"][0]["attachment"]["data"].startswith("JVBERi0")
    url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is composition)
    assert pdf["context"]["related"] == [{"reference": url}]
    assert "data" not in image["content"][0]["attachment"]
    assert image["content"][0]["attachment"]["contentType"] == "image/jpeg"


def test_results_and_attachments_round_trip_through_fhir(validator: XsdValidator) -> None:
    msg = parse_epikrise(parse_xml(fixture_bytes(LAB)))
    back = epikrise_from_bundle(_lab_bundle())
    assert back == msg
    out = build_epikrise(back)
    result = validator.validate(out)
    assert result.valid, result.errors
    assert parse_epikrise(parse_xml(to_bytes(out))) == msg


def test_a_cancellation_withdraws_results_and_attachments() -> None:
    msg = parse_epikrise(parse_xml(fixture_bytes(LAB)))
    bundle, _ = epikrise_to_bundle(dataclasses.replace(msg, kind=MessageKind.CANCEL))
    for res_type in ("Observation", "DiagnosticReport", "DocumentReference"):
        assert {r["status"] for r in _resources(bundle, res_type)} == {"entered-in-error"}


def test_results_and_documents_written_on_fhir_go_out(validator: XsdValidator) -> None:
    """A discharge summary written on FHIR: its Observations, DiagnosticReport and DocumentReference."""
    resources: list[Json] = [
        {
            "url": "Patient/p",
            "resourceType": "Patient",
            "id": "p",
            "identifier": [{"system": FNR_SYSTEM, "value": "22896112302"}],
            "name": [{"family": "Testesen", "given": ["Kari"]}],
        },
        {
            "url": "Observation/hba1c",
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": NLK, "code": "NPU27300", "display": "B-HbA1c"}]},
            "effectiveDateTime": "2024-05-02T08:00:00+02:00",
            "valueQuantity": {"value": 61, "unit": "mmol/mol", "system": UCUM, "code": "mmol/mol"},
            "interpretation": [{"coding": [{"code": "H", "display": "Høy"}]}],
        },
        {
            "url": "Observation/range",
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "FEV1/FVC"},
            "valueRange": {"low": {"value": 62, "unit": "%"}, "high": {"value": 68, "unit": "%"}},
        },
        {
            "url": "DiagnosticReport/r",
            "resourceType": "DiagnosticReport",
            "status": "final",
            "code": {"coding": [LAB_REPORT]},
            "effectiveDateTime": "2024-05-02T08:00:00+02:00",
            "result": [{"reference": "Observation/range"}],
        },
        {
            "url": "DocumentReference/d",
            "resourceType": "DocumentReference",
            "status": "current",
            "content": [
                {"attachment": {"contentType": "application/pdf", "data": "JVBERi0xLjQK", "title": "EKG"}}
            ],
        },
    ]
    composition: Json = {
        "resourceType": "Composition",
        "id": "c",
        "status": "final",
        "subject": {"reference": "Patient/p"},
        "date": "2024-05-06T09:00:00+02:00",
        "title": "Epikrise",
        "section": [
            {
                "title": "Prøvesvar",
                "entry": [{"reference": "Observation/hba1c"}, {"reference": "DiagnosticReport/r"}],
            },
            {"title": "Vedlegg", "entry": [{"reference": "DocumentReference/d"}]},
        ],
    }
    by_ref = {r["url"]: r for r in resources}
    msg = epikrise_from_resources(composition, by_ref.get, msg_id="m-1")
    (stay,) = msg.stays
    (hba1c,) = stay.results
    assert hba1c.result.kind is ResultKind.NUMERIC
    assert hba1c.result.value == Quantity(value=61, unit="mmol/mol")
    assert hba1c.result.deviation == Coded(code="H", display="Høy")
    (group,) = stay.result_groups
    assert group.results[0].result.kind is ResultKind.INTERVAL
    (attachment,) = msg.attachments
    assert (attachment.mime_type, attachment.msg_type.code) == ("application/pdf", "A")
    out = build_epikrise(msg)
    result = validator.validate(out)
    assert result.valid, result.errors
    again = parse_epikrise(parse_xml(to_bytes(out)))
    assert again.stays[0].results == stay.results
    assert again.attachments == msg.attachments


def test_parts_the_model_does_not_hold_are_named() -> None:
    data = fixture_bytes(LAB)
    diag = (
        b'</ClinInv>\n\t\t\t\t\t\t<DiagComment><Concept V="R739" S="2.16.578.1.12.4.1.1.7110"/></DiagComment>'
    )
    data = data.replace(b"</ClinInv>", diag, 1)
    comment = b'<Comment><Heading V="FO"/><TextResultValue>x</TextResultValue></Comment>\n\t\t\t</Event>'
    data = data.replace(b"\t\t\t\t</InfItem>\n\t\t\t</Event>", b"\t\t\t\t</InfItem>\n\t\t\t" + comment, 1)
    assert unmapped_epikrise(parse_xml(data)) == (
        "ServRprt/Event/Event/InfItem/ResultItem/DiagComment",
        "ServRprt/Event/Event/Comment",
    )
    assert unmapped_epikrise(parse_xml(fixture_bytes(LAB))) == ()
