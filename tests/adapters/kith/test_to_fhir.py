"""referral_to_bundle: round trip, FHIR validity, identifiers and conditional requests (dedup), change and
cancel, and the forwarded referral in the workflow's own vocabulary."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from app.adapters.kith import _fhir_referral as r
from app.adapters.kith.from_fhir import referral_from_bundle
from app.adapters.kith.model import MessageKind, Referral
from app.adapters.kith.to_fhir import referral_identifier, referral_key, referral_to_bundle
from app.resources.no_basis.identifiers import (
    FNR_SYSTEM,
    HERID_SYSTEM,
    HPR_SYSTEM,
    ID_TYPE_SYSTEM,
    MUNICIPALITY_SYSTEM,
)
from app.resources.no_basis.search import MIDDLENAME_EXTENSION, MUNICIPALITY_EXTENSION
from app.resources.referrals import workflow
from app.resources.referrals.codes import (
    FORWARDING_EXTENSION,
    ICD10_SYSTEM,
    ICPC2_SYSTEM,
    REFERRAL_CATEGORY,
    Output,
)
from app.resources.referrals.taskjson import output
from app.resources.referrals.transitions import validate_create
from tests.adapters.kith.fhir_referrals import (
    FNR,
    HNR,
    fhir_model,
    fixture_paths,
    full_referral,
    minimal_referral,
    parsed,
)

Json = dict[str, Any]
BUILT = {
    "full": full_referral,
    "full-cancel": lambda: full_referral(MessageKind.CANCEL),
    "minimal": minimal_referral,
}


def _of_type(bundle: Json, resource_type: str) -> list[Json]:
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def _one(bundle: Json, resource_type: str) -> Json:
    [entry] = _of_type(bundle, resource_type)
    return entry


def _resolve(bundle: Json, ref: Json) -> Json:
    return next(e["resource"] for e in bundle["entry"] if e.get("fullUrl") == ref["reference"])


def _check(ref: Referral) -> None:
    bundle = referral_to_bundle(ref)
    assert referral_from_bundle(bundle) == ref
    fhir_model("Bundle").model_validate(bundle)
    for entry in bundle["entry"]:
        fhir_model(entry["resource"]["resourceType"]).model_validate(entry["resource"])


@pytest.mark.parametrize("path", fixture_paths())
def test_parsed_referral_round_trips_and_validates(path: Path) -> None:
    _check(parsed(path))


@pytest.mark.parametrize("name", sorted(BUILT))
def test_built_referral_with_every_field_round_trips_and_validates(name: str) -> None:
    _check(BUILT[name]())


def test_bundle_is_deterministic_with_urn_uuid_references_that_resolve() -> None:
    bundle = referral_to_bundle(full_referral())
    assert bundle == referral_to_bundle(full_referral())
    assert bundle["type"] == "transaction"
    urls = [e["fullUrl"] for e in bundle["entry"] if "fullUrl" in e]
    assert len(urls) == len(set(urls)) == len(bundle["entry"])
    assert all(u.startswith("urn:uuid:") for u in urls)
    refs = list(_references(bundle))
    assert refs
    assert all(ref in urls for ref in refs if ref.startswith("urn:uuid:"))
    assert all(ref.startswith("urn:uuid:") for ref in refs)


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def test_patient_is_created_once_by_fnr_with_no_basis_elements() -> None:
    entry = _one(referral_to_bundle(full_referral()), "Patient")
    patient = entry["resource"]
    assert entry["request"] == {
        "method": "POST",
        "url": "Patient",
        "ifNoneExist": f"identifier={FNR_SYSTEM}|{FNR}",
    }
    fnr, hnr = patient["identifier"]
    assert (fnr["system"], fnr["value"]) == (FNR_SYSTEM, FNR)
    assert "system" not in hnr
    assert hnr["value"] == HNR
    assert {"system": ID_TYPE_SYSTEM, "code": "HNR", "display": "H-nummer"} in hnr["type"]["coding"]
    assert hnr["assigner"]["display"] == "Fjordblikk legesenter"
    name = patient["name"][0]
    assert name["given"] == ["Åse Marit"]
    assert name["extension"] == [{"url": MIDDLENAME_EXTENSION, "valueString": "Ærø"}]
    assert patient["gender"] == "female"
    assert patient["birthDate"] == "1957-03-14"
    home = patient["address"][0]
    assert home["use"] == "home"
    municipality = home["_district"]["extension"][0]
    assert municipality["url"] == MUNICIPALITY_EXTENSION
    assert municipality["valueCoding"]["system"] == MUNICIPALITY_SYSTEM
    assert municipality["valueCoding"]["code"] == "4640"
    assert patient["telecom"][0] == {
        "system": "phone",
        "value": "+4740000001",
        "use": "mobile",
        "extension": patient["telecom"][0]["extension"],
    }


def test_patient_with_only_an_h_nummer_is_found_by_its_type() -> None:
    ref = full_referral()
    ref = dataclasses.replace(ref, patient=dataclasses.replace(ref.patient, idents=ref.patient.idents[1:]))
    request = _one(referral_to_bundle(ref), "Patient")["request"]
    assert unquote(request["ifNoneExist"]) == f"identifier:of-type={ID_TYPE_SYSTEM}|HNR|{HNR}"


def test_organisations_departments_and_people_are_deduplicated_by_national_ids() -> None:
    bundle = referral_to_bundle(full_referral())
    orgs = {e["resource"]["name"]: e for e in _of_type(bundle, "Organization")}
    assert orgs["Fjordblikk legesenter"]["request"]["ifNoneExist"] == f"identifier={HERID_SYSTEM}|8123401"
    department = orgs["Revmatologisk poliklinikk"]
    assert department["resource"]["partOf"]["reference"] == orgs["Helse Testfjord HF"]["fullUrl"]
    roles = _of_type(bundle, "PractitionerRole")
    assert [e["request"]["ifNoneExist"] for e in roles] == [
        f"identifier={HERID_SYSTEM}|8123402",
        f"identifier={HERID_SYSTEM}|8123502",
    ]
    sender_role = roles[0]["resource"]
    assert sender_role["organization"]["reference"] == orgs["Fjordblikk legesenter"]["fullUrl"]
    referrer = _resolve(bundle, sender_role["practitioner"])
    # the HPR of the referrer (from AnsvarForRapport HHE) joins the HER-id of the sender's person
    assert {(i["system"], i["value"]) for i in referrer["identifier"]} == {
        (HERID_SYSTEM, "8123402"),
        (HPR_SYSTEM, "9900123"),
    }
    practitioners = _of_type(bundle, "Practitioner")
    assert f"identifier={HPR_SYSTEM}|9900123" in [e["request"].get("ifNoneExist") for e in practitioners]
    # a professional without national ids is kept up to date per referral instead of duplicated
    nurse = next(e for e in practitioners if e["resource"]["name"][0].get("text") == "Berit Sykepleier")
    assert nurse["request"]["method"] == "PUT"
    assert nurse["request"]["url"].startswith(
        "Practitioner?identifier=http://helsebro.no/fhir/NamingSystem/kith-document-part|"
    )


def test_service_request_and_task() -> None:
    ref = full_referral()
    bundle = referral_to_bundle(ref)
    sr_entry, task_entry = _one(bundle, "ServiceRequest"), _one(bundle, "Task")
    sr, task = sr_entry["resource"], task_entry["resource"]
    identifier = referral_identifier(ref)
    assert identifier == {
        "system": "http://helsebro.no/fhir/NamingSystem/kith-document-id",
        "value": referral_key(ref),
    }
    assert referral_key(ref) == "HER:8123401/doc|1,2$3\\4 #5"
    assert sr["identifier"] == [identifier] == task["identifier"]
    assert sr_entry["request"]["method"] == "PUT"
    escaped = sr_entry["request"]["url"].removeprefix(f"ServiceRequest?identifier={identifier['system']}|")
    assert unquote(escaped) == "HER:8123401/doc\\|1\\,2\\$3\\\\4 #5"
    assert task_entry["request"] == {
        "method": "POST",
        "url": "Task",
        "ifNoneExist": sr_entry["request"]["url"].removeprefix("ServiceRequest?"),
    }
    assert (sr["status"], sr["intent"], sr["priority"]) == ("active", "order", "urgent")
    assert sr["category"] == [{"coding": [REFERRAL_CATEGORY]}]
    assert sr["authoredOn"] == "2024-10-27T02:30:00+00:00"
    assert [c["coding"][0]["system"] for c in sr["reasonCode"]] == [ICD10_SYSTEM, ICPC2_SYSTEM]
    assert sr["reasonCode"][1]["text"] == "RA"
    assert _resolve(bundle, sr["performer"][0])["name"] == "Revmatologisk poliklinikk"
    assert _resolve(bundle, sr["requester"])["resourceType"] == "PractitionerRole"
    kinds = [_resolve(bundle, s)["resourceType"] for s in sr["supportingInfo"]]
    assert kinds == ["RelatedPerson", "RelatedPerson", "DocumentReference", "DocumentReference"]
    document = _resolve(bundle, sr["supportingInfo"][2])
    assert document["status"] == "current"
    assert document["context"]["related"] == [{"reference": sr_entry["fullUrl"]}]
    assert document["content"][0]["attachment"]["data"] == "JVBERi0xLjQK"
    assert (task["status"], task["intent"]) == ("requested", "order")
    assert task["focus"]["reference"] == sr_entry["fullUrl"]
    assert task["for"] == sr["subject"]
    assert task["owner"] == sr["performer"][0]
    assert task["requester"] == sr["requester"]
    assert task["extension"][0] == next(e for e in sr["extension"] if e["url"] == r.EXT_MESSAGE)


def test_change_updates_the_same_resources() -> None:
    new = referral_to_bundle(full_referral())
    change = referral_to_bundle(dataclasses.replace(full_referral(MessageKind.CHANGE), msg_id="m-2"))
    for resource_type in ("ServiceRequest", "Task", "Patient", "RelatedPerson", "DocumentReference"):
        requests = [e["request"] for e in _of_type(new, resource_type)]
        assert requests == [e["request"] for e in _of_type(change, resource_type)], resource_type
    assert _one(change, "ServiceRequest")["resource"]["status"] == "active"
    assert _one(change, "ServiceRequest")["request"]["method"] == "PUT"


def test_cancel_revokes_the_service_request_and_cancels_the_task_by_patch() -> None:
    new = referral_to_bundle(full_referral())
    cancel = referral_to_bundle(full_referral(MessageKind.CANCEL))
    assert _one(cancel, "ServiceRequest")["resource"]["status"] == "revoked"
    assert _one(cancel, "ServiceRequest")["request"] == _one(new, "ServiceRequest")["request"]
    assert not _of_type(cancel, "Task")
    [patch] = _of_type(cancel, "Parameters")
    assert patch["request"] == {
        "method": "PATCH",
        "url": "Task?" + _one(new, "Task")["request"]["ifNoneExist"],
    }
    first = patch["resource"]["parameter"][0]["part"]
    assert first == [
        {"name": "type", "valueCode": "replace"},
        {"name": "path", "valueString": "Task.status"},
        {"name": "value", "valueCode": "cancelled"},
    ]
    reason = patch["resource"]["parameter"][2]["part"][-1]
    assert reason == {
        "name": "value",
        "part": [{"name": "text", "valueString": "Oppdatert med nye prøvesvar"}],
    }
    fhir_model("Parameters").model_validate(patch["resource"])


def test_forwarded_referral_speaks_the_workflow_vocabulary() -> None:
    bundle = referral_to_bundle(full_referral())
    task = _one(bundle, "Task")["resource"]
    assert task["businessStatus"]["coding"][0]["code"] == "videresendt"
    assert task["restriction"] == {"period": {"end": "2024-11-15"}}
    assert output(task, Output.FIRST_RECEIVED) == "2024-09-03"
    assert output(task, Output.ASSESSED) == "2024-09-09"
    assert output(task, Output.DECISION)["coding"][0]["code"] == "rett"
    assert output(task, Output.CARE_DEADLINE) == "2024-11-15"
    forwarding = next(e for e in task["extension"] if e["url"] == FORWARDING_EXTENSION)
    parts = {p["url"]: p for p in forwarding["extension"]}
    assert _resolve(bundle, parts["from"]["valueReference"])["name"] == "Legekontor 2"
    assert parts["to"]["valueReference"] == task["owner"]
    validate_create(task)
    received = workflow.receive(task, at=datetime(2024, 10, 28, 9, tzinfo=UTC))
    assert output(received, Output.FIRST_RECEIVED) == "2024-09-03"  # ansiennitet kept across forwarding


def test_referral_without_organisation_or_options() -> None:
    bundle = referral_to_bundle(minimal_referral())
    sr = _one(bundle, "ServiceRequest")["resource"]
    assert _resolve(bundle, sr["requester"])["resourceType"] == "PractitionerRole"
    assert "organization" not in _resolve(bundle, sr["requester"])
    assert referral_key(minimal_referral()) == "HPR:9900777/d-1"
    assert not {"code", "priority", "reasonCode"} & sr.keys()
