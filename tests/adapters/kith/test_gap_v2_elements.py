"""Issue 16, gap 3 (in part): Henvisning 2.0 PatientPrecaution periods survive the round trip, and the 2.0
elements still not modelled are named in an AppRec with status 3 instead of being dropped silently."""

from __future__ import annotations

from datetime import date, datetime

import httpx

from app.adapters.kith.apprec import AppRecStatus, parse_apprec
from app.adapters.kith.from_fhir import referral_from_bundle
from app.adapters.kith.henvisning import parse_henvisning, serialize_henvisning
from app.adapters.kith.henvisning_v2 import unmapped_v2
from app.adapters.kith.model import Coded, HenvisningVersion, HumanName, Precaution
from app.adapters.kith.msghead import parse_msghead
from app.adapters.kith.to_fhir import referral_to_bundle
from app.adapters.kith.xmlsafe import parse_xml
from tests.adapters.kith.conftest import fixture_bytes

XML = {"Content-Type": "application/xml"}
PRECAUTIONS = "henvisning_v2_forsiktighet.xml"


def test_precaution_periods_survive_every_round_trip() -> None:
    ref = parse_henvisning(fixture_bytes(PRECAUTIONS))
    assert ref.precautions == (
        Precaution("Gravid", datetime(2024, 3, 1), datetime(2024, 12, 6)),
        Precaution("Smitte: MRSA-bærer", datetime(2023, 11, 20)),
    )
    assert referral_from_bundle(referral_to_bundle(ref)) == ref
    for version in (HenvisningVersion.V2_0, HenvisningVersion.V1_1):
        back = parse_henvisning(serialize_henvisning(ref, version))
        assert back.precautions == ref.precautions


# Individual plan information (po:OpplysningerOmIndividuellPlan) is not modelled (yet): in its schema place
INDIVIDUAL_PLAN = b"<po:OpplysningerOmIndividuellPlan><po:IndividuellPlanForeligger>true</po:IndividuellPlanForeligger></po:OpplysningerOmIndividuellPlan>"


def _with_individual_plan() -> bytes:
    data = fixture_bytes(PRECAUTIONS)
    end = b"</po:InfoAssistertKommunikasjon>"
    assert end in data
    return data.replace(end, end + INDIVIDUAL_PLAN, 1)


def test_payment_category_and_basis_for_health_services_are_kept() -> None:
    ref = parse_henvisning(fixture_bytes(PRECAUTIONS))
    assert ref.payment_category == Coded(code="1", display="Folketrygden")
    assert ref.basis_for_health_services == Coded(code="1", display="Bosatt i Norge")
    assert referral_from_bundle(referral_to_bundle(ref)) == ref
    for version in (HenvisningVersion.V2_0, HenvisningVersion.V1_1):
        back = parse_henvisning(serialize_henvisning(ref, version))
        assert (back.payment_category, back.basis_for_health_services) == (
            ref.payment_category,
            ref.basis_for_health_services,
        )


def test_unmapped_2_0_elements_are_named() -> None:
    assert unmapped_v2(parse_msghead(parse_xml(fixture_bytes(PRECAUTIONS)))) == ()
    found = unmapped_v2(parse_msghead(parse_xml(_with_individual_plan())))
    assert found == ("Henvisning/OpplysningerOmIndividuellPlan",)


async def test_a_2_0_referral_with_unmapped_elements_gets_status_3(client: httpx.AsyncClient) -> None:
    response = await client.post("/$kith-message", content=_with_individual_plan(), headers=XML)
    assert response.status_code == 200, response.text
    apprec = parse_apprec(parse_xml(response.content))
    assert apprec.status is AppRecStatus.OK_PARTIAL_ERROR
    (error,) = apprec.errors
    assert error.details is not None
    assert "Henvisning/OpplysningerOmIndividuellPlan" in error.details


def test_dropped_children_of_mapped_elements_are_named() -> None:
    data = fixture_bytes(PRECAUTIONS)
    marker = b"</Diagnosis>"
    assert marker in data
    modifier = b'<Modifier><Name V="SIDE" DN="Side"/><Value V="H" DN="Hoyre"/></Modifier>'
    found = unmapped_v2(parse_msghead(parse_xml(data.replace(marker, modifier + marker, 1))))
    assert found == ("Henvisning/Diagnosis/Modifier",)


INTERPRETER = "henvisning_v2_tolk_parorende.xml"


def test_preferred_interpreter_and_minor_relative_survive_the_round_trip() -> None:
    ref = parse_henvisning(fixture_bytes(INTERPRETER))
    (need,) = ref.interpreter_needs
    assert need.preferred_interpreter == HumanName(family="Tolkesen", given="Amira")
    assert need.ended == date(2025, 6, 30)
    (relative,) = ref.related_persons
    assert relative.minor_birth_year == 2011
    assert unmapped_v2(parse_msghead(parse_xml(fixture_bytes(INTERPRETER)))) == ()
    assert referral_from_bundle(referral_to_bundle(ref)) == ref
    assert parse_henvisning(serialize_henvisning(ref, HenvisningVersion.V2_0)) == ref
