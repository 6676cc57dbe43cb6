"""referral_from_resources / referral_from_bundle: referrals made natively in FHIR, time zones, resolving
server-style references, and writing the rebuilt referral as Henvisning 1.1 and 2.0."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from app.adapters.kith import _fhir_common as f
from app.adapters.kith.from_fhir import bundle_resolver, referral_from_bundle, referral_from_resources
from app.adapters.kith.henvisning import parse_henvisning, serialize_henvisning
from app.adapters.kith.model import HenvisningVersion, MessageKind
from app.adapters.kith.to_fhir import referral_to_bundle
from app.resources.no_basis.identifiers import FNR_SYSTEM, HERID_SYSTEM, HPR_SYSTEM
from app.resources.referrals.codes import ICD10_SYSTEM, REFERRAL_CATEGORY
from tests.adapters.kith.fhir_referrals import FNR, full_referral, minimal_referral

Json = dict[str, Any]


def _native() -> dict[str, Json]:
    """A referral as a FHIR client would write it: no KITH extensions at all."""
    return {
        "Patient/p": {
            "resourceType": "Patient",
            "id": "p",
            "identifier": [{"system": FNR_SYSTEM, "value": FNR}],
            "name": [{"family": "Nordmann", "given": ["Kari", "Anne"]}],
            "gender": "female",
            "birthDate": "1957-03-14",
            "maritalStatus": {"coding": [{"code": "2", "display": "Gift"}]},
        },
        "Organization/hospital": {
            "resourceType": "Organization",
            "id": "hospital",
            "identifier": [{"system": HERID_SYSTEM, "value": "8123500"}],
            "name": "Helse Testfjord HF",
        },
        "Organization/dept": {
            "resourceType": "Organization",
            "id": "dept",
            "identifier": [{"system": HERID_SYSTEM, "value": "8123501"}],
            "name": "Revmatologisk poliklinikk",
            "partOf": {"reference": "Organization/hospital"},
        },
        "Organization/gp": {"resourceType": "Organization", "id": "gp", "name": "Fjordblikk legesenter"},
        "Practitioner/doc": {
            "resourceType": "Practitioner",
            "id": "doc",
            "identifier": [{"system": HPR_SYSTEM, "value": "9900123"}],
            "name": [{"family": "Testlege", "given": ["Solveig"]}],
        },
        "PractitionerRole/role": {
            "resourceType": "PractitionerRole",
            "id": "role",
            "identifier": [{"system": HERID_SYSTEM, "value": "8123402"}],
            "practitioner": {"reference": "Practitioner/doc"},
            "organization": {"reference": "Organization/gp"},
        },
    }


def _native_request(status: str = "active") -> Json:
    return {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "status": status,
        "intent": "order",
        "category": [{"coding": [REFERRAL_CATEGORY]}],
        "subject": {"reference": "Patient/p"},
        "authoredOn": "2024-09-02T10:10:00+02:00",
        "requester": {"reference": "PractitionerRole/role"},
        "performer": [{"reference": "Organization/dept"}],
        "reasonCode": [
            {"coding": [{"system": ICD10_SYSTEM, "code": "M069", "display": "Revmatoid artritt"}]}
        ],
        "note": [{"text": "Leddsmerter i seks uker."}],
    }


def test_native_fhir_referral_is_read_from_standard_elements() -> None:
    resources = _native()
    ref = referral_from_resources(_native_request(), None, resources.get)
    assert (ref.version, ref.kind, ref.document_id) == (HenvisningVersion.V2_0, MessageKind.NEW, "sr-1")
    assert ref.message_type.code == "HENVISNING_NYTILSTAND"
    assert ref.issued == datetime(2024, 9, 2, 10, 10)  # Oslo time, naive as KITH writes it
    assert ref.patient.ident("FNR") == FNR
    assert ref.patient.name.given == "Kari Anne"
    assert ref.patient.sex is not None
    assert ref.patient.sex.code == "2"
    assert ref.patient.marital_status is not None
    assert ref.patient.marital_status.display == "Gift"
    assert ref.receiver.name == "Helse Testfjord HF"
    assert ref.receiver.sub_organisation is not None
    assert ref.receiver.sub_organisation.ident("HER") == "8123501"
    assert ref.sender.name == "Fjordblikk legesenter"
    assert ref.sender.professional is not None
    assert ref.sender.professional.ident("HPR") == "9900123"
    assert [d.concept.code for d in ref.diagnoses] == ["M069"]
    assert [c.text for c in ref.comments] == ["Leddsmerter i seks uker."]
    assert ref.referrer is not None
    out = serialize_henvisning(ref, HenvisningVersion.V2_0)
    assert parse_henvisning(out).patient.ident("FNR") == FNR


def test_revoked_native_request_is_a_cancellation() -> None:
    ref = referral_from_resources(_native_request("revoked"), None, _native().get)
    assert ref.kind is MessageKind.CANCEL


def test_forwarded_task_without_extensions_names_the_message_type() -> None:
    task = {"resourceType": "Task", "businessStatus": {"coding": [{"code": "videresendt"}]}}
    ref = referral_from_resources(_native_request(), task, _native().get)
    assert ref.message_type.code == "HENVISNING_VIDERE"


def test_unresolvable_references_still_give_a_referral() -> None:
    ref = referral_from_resources(_native_request(), None, lambda _: None)
    assert ref.receiver.name is None
    assert ref.patient.idents == ()


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 1, 15, 9, 30),
        datetime(2024, 7, 15, 9, 30),
        datetime(2024, 10, 27, 2, 30),  # the hour that repeats when summer time ends
        datetime(2024, 7, 15, 9, 30, tzinfo=UTC),
        datetime(2024, 7, 15, 9, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ],
)
def test_times_keep_their_kind(moment: datetime) -> None:
    text = f.fhir_datetime(moment)
    assert datetime.fromisoformat(text).tzinfo is not None  # FHIR needs the offset with a time
    back = f.from_fhir_datetime(text)
    assert back == moment
    assert back is not None
    assert (back.tzinfo is None) == (moment.tzinfo is None)


def test_server_style_bundle_resolves_type_and_id() -> None:
    """A searchset from the server: absolute fullUrls, relative references."""
    resources = {**_native(), "ServiceRequest/sr-1": _native_request()}
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"fullUrl": f"http://fhir.test/{k}", "resource": v} for k, v in resources.items()],
    }
    assert bundle_resolver(bundle)("Organization/dept") == resources["Organization/dept"]
    assert referral_from_bundle(bundle).receiver.name == "Helse Testfjord HF"


def test_bundle_without_service_request_is_refused() -> None:
    with pytest.raises(ValueError, match="no ServiceRequest"):
        referral_from_bundle({"resourceType": "Bundle", "type": "transaction", "entry": []})


@pytest.mark.parametrize("version", [HenvisningVersion.V1_1, HenvisningVersion.V2_0])
def test_rebuilt_referral_is_written_for_a_legacy_receiver(version: HenvisningVersion) -> None:
    for ref in (full_referral(), minimal_referral()):
        rebuilt = referral_from_bundle(referral_to_bundle(ref))
        again = parse_henvisning(serialize_henvisning(rebuilt, version))
        assert again.document_id == ref.document_id
        assert again.patient.idents[0].id == ref.patient.idents[0].id
        assert again.diagnoses == ref.diagnoses


def test_change_of_fields_is_visible_after_the_round_trip() -> None:
    ref = dataclasses.replace(full_referral(), request_comment="Ny kommentar", precautions=())
    assert referral_from_bundle(referral_to_bundle(ref)) == ref
