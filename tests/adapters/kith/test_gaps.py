"""Issue 16: referral adapter gaps found with messages from the field, each with its own fixture."""

from __future__ import annotations

from typing import Any

import httpx

from app.adapters.kith.apprec import AppRecStatus, parse_apprec
from app.adapters.kith.henvisning import parse_henvisning
from app.adapters.kith.model import ProfessionalRole
from app.adapters.kith.to_fhir import referral_to_bundle
from app.adapters.kith.xmlsafe import parse_xml
from app.resources.no_basis.identifiers import HERID_SYSTEM, HPR_SYSTEM
from tests.adapters.kith.conftest import fixture_bytes

XML = {"Content-Type": "application/xml"}
SIGNED_BY_OTHER = "henvisning_v1_1_signert_av_annen.xml"


async def _search(client: httpx.AsyncClient, query: str) -> list[dict[str, Any]]:
    response = await client.get(query)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", [])]


def _ids(resource: dict[str, Any], system: str) -> list[str]:
    return [i["value"] for i in resource.get("identifier", []) if i.get("system") == system]


# --- 1. the referrer's HPR is merged only onto the same person ---------------------------------------------


def test_referrer_is_not_merged_with_another_sending_doctor() -> None:
    ref = parse_henvisning(fixture_bytes(SIGNED_BY_OTHER))
    assert ref.sender.professional is not None
    assert ref.sender.professional.ident("HER") == "8123702"
    referrer = ref.referrer
    assert referrer is not None
    assert referrer.ident("HPR") == "9900789"
    assert referrer.ident("HER") is None  # the sender's HER-id is another person's
    bundle = referral_to_bundle(ref)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Practitioner" and _ids(resource, HERID_SYSTEM) == ["8123702"]:
            assert _ids(resource, HPR_SYSTEM) == []
            assert entry["request"]["ifNoneExist"].startswith("identifier=urn")
            assert "9900789" not in entry["request"]["ifNoneExist"]


def test_referrer_is_merged_with_the_same_sending_doctor() -> None:
    ref = parse_henvisning(fixture_bytes("henvisning_v1_1_ny.xml"))
    referrer = ref.referrer
    assert referrer is not None
    assert (referrer.ident("HPR"), referrer.ident("HER")) == ("9900789", "8123701")


async def test_referral_signed_by_one_doctor_and_sent_by_another(client: httpx.AsyncClient) -> None:
    message = fixture_bytes(SIGNED_BY_OTHER)
    response = await client.post("/$kith-message", content=message, headers=XML)
    assert response.status_code == 200, response.text
    assert parse_apprec(parse_xml(response.content)).status is AppRecStatus.OK
    (signer,) = await _search(client, f"/Practitioner?identifier={HPR_SYSTEM}|9900789")
    assert signer["name"][0]["family"] == "Lege"
    (sender,) = await _search(client, f"/Practitioner?identifier={HERID_SYSTEM}|8123702")
    assert sender["name"][0]["family"] == "Vikar"
    assert _ids(sender, HPR_SYSTEM) == []
    (sr,) = await _search(client, "/ServiceRequest")
    back = await client.get(f"/ServiceRequest/{sr['id']}/$kith-henvisning?version=2.0")
    assert back.status_code == 200, back.text
    written = parse_henvisning(back.content)
    (responsible,) = [p for p in written.professionals if p.role is ProfessionalRole.REPORT_RESPONSIBLE]
    assert responsible.professional.ident("HPR") == "9900789"
    assert responsible.professional.name.family == "Lege"
    assert written.sender.professional is not None
    assert written.sender.professional.name.family == "Vikar"
    assert written.referrer is not None
    assert written.referrer.ident("HPR") == "9900789"
