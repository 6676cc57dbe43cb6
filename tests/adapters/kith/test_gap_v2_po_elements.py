"""Issue 16, gap 3 (the rest): Henvisning 2.0 po:TilknyttetEnhet, po:SendtDokument,
po:PasientrelatertKontaktperson, po:Legemiddelgjennomgang and Consent are read, mapped to FHIR, stored and
written back, instead of being named in an AppRec with status 3."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path
from typing import Any

from app.adapters.kith import _fhir_v2_parts as v2
from app.adapters.kith._fhir_common import DOCUMENT_PART_SYSTEM, EXT_NOTE
from app.adapters.kith.apprec import AppRecStatus, parse_apprec
from app.adapters.kith.from_fhir import referral_from_bundle
from app.adapters.kith.henvisning import parse_henvisning, serialize_henvisning
from app.adapters.kith.henvisning_v2 import unmapped_v2
from app.adapters.kith.model import (
    Coded,
    ContactPerson,
    HenvisningVersion,
    HumanName,
    MedicationReview,
    ReferralConsent,
    SentDocument,
    Telecom,
)
from app.adapters.kith.msghead import parse_msghead
from app.adapters.kith.to_fhir import referral_to_bundle
from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.kith.xsd import XsdValidator
from app.resources.no_basis.identifiers import HERID_SYSTEM, ORGNR_SYSTEM
from tests.adapters.kith.conftest import fixture_bytes
from tests.adapters.kith.test_routes_http import XML, search
from tests.conftest import app_client
from tests.databases import TestDatabase

NAME = "henvisning_v2_samtykke_kontakter.xml"
VOLVEN_8329 = "2.16.578.1.12.4.1.1.8329"


def _resources(bundle: dict[str, Any], res_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == res_type]


def test_the_five_elements_are_read() -> None:
    ref = parse_henvisning(fixture_bytes(NAME))
    (unit,) = ref.associated_units
    assert unit.note == "Hjemmesykepleie morgen og kveld"
    assert unit.organisation.name == "Testvik kommune"
    assert unit.organisation.ident("ENH") == "928765431"
    assert unit.organisation.type == Coded(code="KOMM", display="Kommunal helse- og omsorgstjeneste")
    assert unit.organisation.address is not None
    assert unit.organisation.address.street == "Postboks 40"
    department = unit.organisation.sub_organisation
    assert department is not None
    assert department.name == "Hjemmetjenesten Testvik"
    assert department.ident("HER") == "8123601"
    assert department.telecoms == (Telecom("tel:+4757000100", Coded(code="WP", display="Arbeidsplass")),)
    assert ref.sent_documents == (
        SentDocument(
            information=Coded(code="1", system=VOLVEN_8329, display="Egensøknad"),
            sent=True,
            date=date(2024, 8, 30),
            recipient_type=Coded(code="K", display="Kommune"),
            recipient_name="Tildelingskontoret i Testvik",
            note="Søknad om praktisk bistand",
        ),
        SentDocument(information=Coded(code="2", display="Tidligere epikrise"), sent=False),
    )
    contact, teacher = ref.contact_persons
    assert (contact.position, contact.workplace, contact.note) == (
        "Saksbehandler",
        "NAV Testvik",
        "Kontakt om sykmelding",
    )
    assert contact.name == HumanName(family="Kontaktsen", given="Ørjan")
    assert contact.address is not None
    assert contact.address.city == "Balestrand"
    assert contact.telecoms == (Telecom("tel:+4757000200", Coded(code="WP", display="Arbeidsplass")),)
    assert teacher == ContactPerson(name=HumanName(family="Lærersen"))
    assert ref.medication_review == MedicationReview(
        date(2024, 8, 15), date(2024, 8, 20), "Ibuprofen vurdert mot blodtrykk"
    )
    assert ref.consents == (
        ReferralConsent(
            Coded(code="1", display="Samtykke gitt"),
            date(2024, 9, 1),
            "Muntlig samtykke ved konsultasjon",
            "Pasienten",
        ),
        ReferralConsent(
            Coded(code="2", display="Samtykke ikke gitt", original_text="Ikke til kopi til kommunen")
        ),
    )
    assert unmapped_v2(parse_msghead(parse_xml(fixture_bytes(NAME)))) == ()


def test_what_the_model_does_not_keep_of_a_contact_person_is_named() -> None:
    data = fixture_bytes(NAME)
    marker = b"<fk1:FamilyName>Kontaktsen</fk1:FamilyName>"
    assert marker in data
    data = data.replace(marker, marker + b"<fk1:DateOfBirth>1980-01-01</fk1:DateOfBirth>", 1)
    found = unmapped_v2(parse_msghead(parse_xml(data)))
    assert found == ("Henvisning/PasientrelatertKontaktperson/Referanseperson/DateOfBirth",)


def test_fhir_resources_and_extensions() -> None:
    bundle = referral_to_bundle(parse_henvisning(fixture_bytes(NAME)))
    (sr,) = _resources(bundle, "ServiceRequest")
    urls = {e["fullUrl"]: e["resource"] for e in bundle["entry"] if "fullUrl" in e}
    supporting = [urls[s["reference"]] for s in sr["supportingInfo"]]
    # the relative, the two contact persons, the associated unit's department, the attachment
    assert [s["resourceType"] for s in supporting] == [
        "RelatedPerson",
        "RelatedPerson",
        "RelatedPerson",
        "Organization",
        "DocumentReference",
    ]
    contact = supporting[1]
    assert v2.is_contact_person(contact)
    assert not v2.is_contact_person(supporting[0])
    assert contact["relationship"] == [{"text": "Saksbehandler"}]
    assert contact["name"] == [{"family": "Kontaktsen", "given": ["Ørjan"]}]
    assert {"url": EXT_NOTE, "valueString": "Kontakt om sykmelding"} in contact["extension"]
    department = supporting[3]
    assert department["identifier"] == [
        {"system": HERID_SYSTEM, "value": "8123601", "type": department["identifier"][0]["type"]}
    ]
    municipality = urls[department["partOf"]["reference"]]
    assert municipality["name"] == "Testvik kommune"
    assert municipality["identifier"][0]["system"] == ORGNR_SYSTEM
    (unit,) = [e for e in sr["extension"] if e["url"] == v2.EXT_ASSOCIATED_UNIT]
    assert unit["extension"] == [
        {"url": "organization", "valueReference": {"reference": sr["supportingInfo"][3]["reference"]}},
        {"url": "note", "valueString": "Hjemmesykepleie morgen og kveld"},
    ]
    (review,) = [e for e in sr["extension"] if e["url"] == v2.EXT_MEDICATION_REVIEW]
    assert [(p["url"], p.get("valueDate")) for p in review["extension"]] == [
        ("reviewed", "2024-08-15"),
        ("reconciled", "2024-08-20"),
        ("note", None),
    ]
    sent = [e for e in sr["extension"] if e["url"] == v2.EXT_SENT_DOCUMENT]
    assert [next(p["valueBoolean"] for p in e["extension"] if p["url"] == "sent") for e in sent] == [
        True,
        False,
    ]
    consents = [e for e in sr["extension"] if e["url"] == v2.EXT_CONSENT]
    assert [c["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] for c in consents] == ["1", "2"]
    assert not _resources(bundle, "Consent")  # the referral's consent grants no access on this server


def test_round_trip_keeps_every_element_and_is_valid(validator: XsdValidator) -> None:
    ref = parse_henvisning(fixture_bytes(NAME))
    back = referral_from_bundle(referral_to_bundle(ref))
    assert back == ref
    xml = serialize_henvisning(back, HenvisningVersion.V2_0)
    result = validator.validate(parse_xml(xml))
    assert not result.skipped
    assert result.valid, result.errors
    assert parse_henvisning(xml) == ref


async def test_stored_through_the_intake_and_written_back(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    message = fixture_bytes(NAME)
    async with app_client(session_databases[backend], kith_xsd_dir=str(legacy / "xsd")) as (http, _):
        response = await http.post("/$kith-message", content=message, headers=XML)
        assert response.status_code == 200, response.text
        apprec = parse_apprec(parse_xml(response.content))
        assert (apprec.status, apprec.errors) == (AppRecStatus.OK, ())
        (sr,) = await search(http, "/ServiceRequest")
        assert [e["url"] for e in sr["extension"] if e["url"].startswith(v2.EXT_CONSENT)] == [
            v2.EXT_CONSENT
        ] * 2
        persons = await search(http, f"/RelatedPerson?patient={sr['subject']['reference']}")
        contacts = sorted(p["name"][0]["family"] for p in persons if v2.is_contact_person(p))
        assert contacts == ["Kontaktsen", "Lærersen"]
        assert all(i["system"] == DOCUMENT_PART_SYSTEM for p in persons for i in p["identifier"])
        (department,) = await search(http, f"/Organization?identifier={HERID_SYSTEM}|8123601")
        assert {"reference": f"Organization/{department['id']}"} in sr["supportingInfo"]
        (municipality,) = await search(http, f"/Organization?identifier={ORGNR_SYSTEM}|928765431")
        assert department["partOf"] == {"reference": f"Organization/{municipality['id']}"}

        written = await http.get(f"/ServiceRequest/{sr['id']}/$kith-henvisning?version=2.0")
        assert written.status_code == 200, written.text  # XSD-checked on the way out
        back = parse_henvisning(written.content)
        original = parse_henvisning(message)
        assert back.msg_id != original.msg_id
        assert dataclasses.replace(back, msg_id=original.msg_id, generated=original.generated) == original
