"""Referrals for the FHIR mapping tests: the own fixtures, the official samples (when present) and ones
built here with every field of the model set. Synthetic persons only."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from app.adapters.kith.henvisning import parse_henvisning
from app.adapters.kith.model import (
    OID_ICD10,
    OID_ICPC2,
    OID_ORG_ID_TYPE,
    OID_PERSON_ID_TYPE,
    Address,
    AssessmentDate,
    Attachment,
    CancerPathway,
    ClinicalItem,
    Coded,
    Diagnosis,
    Forwarding,
    HealthProfessional,
    HenvisningVersion,
    HumanName,
    Ident,
    InterpreterNeed,
    Medication,
    MessageKind,
    Organisation,
    OriginalReference,
    Patient,
    Precaution,
    ProfessionalRole,
    Quantity,
    Referral,
    RelatedPerson,
    RelatedProfessional,
    RequestedService,
    RightsAssessment,
    Telecom,
    TextSection,
)
from app.resources.no_basis.identifiers import personal_number_check_digits, synthetic_fnr
from tests.adapters.kith.conftest import FIXTURES, legacy_files

FNR = synthetic_fnr(14, 3, 1957, 123)


def _h_nummer() -> str:
    """A synthetic H-nummer: month + 40, with valid check digits."""
    for serial in range(100, 1000):
        digits = personal_number_check_digits(f"1443{57:02d}{serial:03d}")
        if digits is not None:
            return f"1443{57:02d}{serial:03d}{digits}"
    raise AssertionError("no H-nummer")


HNR = _h_nummer()


def person_type(code: str, display: str) -> Coded:
    return Coded(code=code, system=OID_PERSON_ID_TYPE, display=display)


def org_type(code: str, display: str) -> Coded:
    return Coded(code=code, system=OID_ORG_ID_TYPE, display=display)


HER_ORG = org_type("HER", "HER-id")
ENH = org_type("ENH", "Organisasjonsnummeret i Enhetsregister")
HER_PERSON = person_type("HER", "HER-id")
HPR = person_type("HPR", "HPR-nummer")
MOBILE = Coded(code="MC", display="Mobiltelefon")


def full_referral(kind: MessageKind = MessageKind.NEW) -> Referral:
    """Every field of the model set, including the awkward ones (blank text, aware times, OT values)."""
    gp = HealthProfessional(
        name=HumanName(family="Testlege", given="Solveig", middle="Åsmund"),
        idents=(Ident("8123402", HER_PERSON), Ident("9900123", HPR)),
        type=Coded(code="LE", display="Lege"),
        role_to_patient=Coded(code="6", system="2.16.578.1.12.4.1.1.9034", display="Fastlege"),
        address=Address(type=Coded(code="WP", display="Arbeidsadresse"), street="Legeveien 1"),
        telecoms=(
            Telecom("tel:+4757000000", Coded(code="WP", display="Arbeidsplass")),
            Telecom("fax:+4757000001"),
        ),
    )
    nurse = HealthProfessional(
        name=HumanName(text="Berit Sykepleier"), type=Coded(code="SP", display="Sykepleier")
    )
    return Referral(
        version=HenvisningVersion.V2_0,
        kind=kind,
        msg_id="b7c1e0a2-0000-4000-8000-000000000001",
        message_type=Coded(
            code="HENVISNING_VIDERE", system="2.16.578.1.12.4.1.1.8279", display="Viderehenvisning"
        ),
        generated=datetime(2024, 3, 31, 2, 30),  # in the spring-forward gap: still naive afterwards
        document_id="doc|1,2$3\\4 #5",  # every character a search URL has to escape
        issued=datetime(2024, 10, 27, 2, 30, tzinfo=UTC),
        patient=Patient(
            idents=(
                Ident(FNR, person_type("FNR", "Fødselsnummer")),
                Ident(HNR, person_type("HNR", "H-nummer")),
            ),
            name=HumanName(family="Øvrebø", given="Åse Marit", middle="Ærø"),
            birth_date=date(1957, 3, 14),
            death_date=date(2024, 12, 24),
            sex=Coded(code="2", system="2.16.578.1.12.4.1.1.3101", display="Kvinne"),
            nationality=Coded(code="NO", system="1.0.3166.1.2.2", display="Norge"),
            address=Address(
                type=Coded(code="H", display="Bostedsadresse"),
                street="Testbakken 12",
                postal_code="6899",
                city="Balestrand",
                postbox="Postboks 7",
                county=Coded(code="4640", display="Sogndal"),
                country=Coded(code="NO", display="Norge"),
                city_district=Coded(code="030101", system="2.16.578.1.12.4.1.1.3403", display="Gamle Oslo"),
            ),
            telecoms=(
                Telecom("tel:+4740000001", MOBILE),
                Telecom("mailto:ase@example.no"),
                Telecom("https://example.no/ase"),
                Telecom("40000009"),
            ),
            marital_status=Coded(code="2", display="Gift"),
            lives_alone=False,
            language=Coded(code="nb", display="Norsk bokmål"),
            receives_municipal_services=True,
            additional_info_note="Hjemmesykepleie to ganger i uken",
        ),
        sender=Organisation(
            name="Fjordblikk legesenter",
            idents=(Ident("8123401", HER_ORG), Ident("923456783", ENH)),
            type=Coded(code="LEGESENTER", display="Legesenter"),
            address=Address(type=Coded(code="PST", display="Postadresse"), street="Postboks 17"),
            telecoms=(Telecom("tel:+4757000000"),),
            sub_organisation=Organisation(name="Legekontor 2", idents=(Ident("8123409", HER_ORG),)),
            professional=HealthProfessional(
                name=HumanName(family="Testlege", given="Solveig"), idents=(Ident("8123402", HER_PERSON),)
            ),
        ),
        receiver=Organisation(
            name="Helse Testfjord HF",
            idents=(Ident("8123500", HER_ORG),),
            sub_organisation=Organisation(
                name="Revmatologisk poliklinikk",
                idents=(Ident("8123501", HER_ORG),),
                professional=HealthProfessional(
                    name=HumanName(family="Mottaker", given="Mona"), idents=(Ident("8123502", HER_PERSON),)
                ),
            ),
        ),
        requested_service=RequestedService(
            service_type=Coded(code="N", display="Ny"),
            priority=Coded(code="H", display="Haster"),
            requested_date=date(2024, 11, 1),
            comment="Ønsker time før jul",
        ),
        content_type=Coded(code="10", system="2.16.578.1.12.4.1.1.8455", display="Utredning/behandling"),
        content_type_note="Utredning",
        request_comment="Oppdatert med nye prøvesvar",
        reasons=(
            TextSection(
                heading=Coded(
                    code="PROB", system="2.16.578.1.12.4.1.1.8231", display="Aktuell problemstilling"
                ),
                text="Leddsmerter.\n  Morgenstivhet.",
                codes=(Coded(code="M069", system=OID_ICD10, display="Revmatoid artritt"),),
            ),
            TextSection(heading=Coded(code="UTRED", display="Forventet utredning"), text=None),
            TextSection(heading=None, text="   "),
            TextSection(text=""),
        ),
        diagnoses=(
            Diagnosis(Coded(code="M069", system=OID_ICD10, display="Revmatoid artritt, uspesifisert")),
            Diagnosis(Coded(code="L88", system=OID_ICPC2, display="Reumatoid artritt", original_text="RA")),
        ),
        clinical_items=(
            ClinicalItem(
                type=Coded(code="ANAM", display="Sykehistorie"), description="Hypertensjon", comment="Stabil"
            ),
            ClinicalItem(
                type=Coded(code="MEDB", system="2.16.578.1.12.4.1.1.8233", display="Legemiddel"),
                medication=Medication(
                    drug=Coded(code="M01AE01", system="2.16.578.1.12.4.1.1.7180", display="Ibuprofen"),
                    status=Coded(code="1", display="Fast"),
                    unit_dose=Quantity(value=400.0, unit="mg"),
                    dosage_text="1 tablett 3 ganger daglig",
                    comment="Ved behov",
                ),
                start=datetime(2024, 7, 1, 8, 0, tzinfo=timezone(timedelta(hours=-5))),
                end=datetime(2024, 8, 1, 12, 30, 15, 250000),
            ),
            ClinicalItem(type=Coded(), description="Uten type"),
        ),
        comments=(TextSection(heading=Coded(code="KOM", display="Kommentar"), text="Ring før time"),),
        precautions=(Precaution("Smitte: MRSA"), Precaution("Voldsrisiko", datetime(2024, 1, 2, 8, 0))),
        related_persons=(
            RelatedPerson(
                name=HumanName(family="Øvrebø", given="Bjørn"),
                relationship=Coded(code="EK", display="Ektefelle"),
                care_function=Coded(code="1", display="Omsorgsperson"),
                next_of_kin=True,
                idents=(Ident(synthetic_fnr(1, 2, 1955, 200), person_type("FNR", "Fødselsnummer")),),
                address=Address(street="Testbakken 12", postal_code="6899", city="Balestrand"),
                telecoms=(Telecom("tel:+4740000002", MOBILE),),
                note="Snakker for pasienten",
            ),
            RelatedPerson(name=HumanName(text="Verge Vergesen")),
        ),
        professionals=(
            RelatedProfessional(
                role=ProfessionalRole.REPORT_RESPONSIBLE,
                professional=gp,
                relation=Coded(
                    code="HHE", system="2.16.578.1.12.4.1.1.8254", display="Henvisende helsepersonell"
                ),
                approved_date=date(2024, 10, 26),
                note="Godkjent",
            ),
            RelatedProfessional(
                role=ProfessionalRole.CONTACT, professional=nurse, note="Kontakt ved spørsmål"
            ),
            RelatedProfessional(
                role=ProfessionalRole.PATIENT_RELATION,
                professional=HealthProfessional(
                    name=HumanName(text="Magnar Koman"), idents=(Ident("9144889", HPR),)
                ),
                relation=Coded(code="FLE", display="Fastlege"),
            ),
        ),
        interpreter_needs=(
            InterpreterNeed(
                language=Coded(code="pl", display="Polsk"),
                person=HumanName(family="Øvrebø", given="Bjørn"),
                hearing_impaired=False,
                visually_impaired=True,
                note="Tolk til pårørende",
            ),
            InterpreterNeed(hearing_impaired=True),
        ),
        attachments=(
            Attachment(
                msg_type=Coded(code="A", display="Vedlegg"),
                mime_type="application/pdf",
                description="Røntgensvar",
                issue_date=datetime(2024, 8, 28, 14, 0),
                id="vedlegg-1",
                compression=Coded(code="GZIP", display="gzip"),
                content_base64="JVBERi0xLjQK",
            ),
            Attachment(msg_type=Coded(code="A", display="Vedlegg"), file_reference="del2.pdf"),
        ),
        original=OriginalReference(parent_id="parent-1", conversation_id="conversation-1"),
        forwarding=Forwarding(
            dates=(
                AssessmentDate(Coded(code="MOTTATT", display="Dato henvisning mottatt"), date(2024, 9, 3)),
                AssessmentDate(Coded(code="VURDERT", display="Dato henvisning vurdert"), date(2024, 9, 9)),
                AssessmentDate(Coded(code="FRIST", display="Frist for start helsehjelp"), date(2024, 11, 15)),
            ),
            assessment=RightsAssessment(
                right_to_care=True,
                outcome=Coded(code="1", display="Rett til nødvendig helsehjelp"),
                pathway_id="FORLOP-2024-000123",
                free_hospital_choice=False,
                waiting_end_code=Coded(code="X", display="Annet"),
            ),
            pathways=(CancerPathway(Coded(code="PF01", display="Pakkeforløp"), note="Mistanke"),),
        ),
        processing_status=Coded(code="TEST", display="Melding til testformål"),
    )


def minimal_referral() -> Referral:
    """A 1.x referral from a lone professional (no organisation), without any optional part."""
    return Referral(
        version=HenvisningVersion.V1_1,
        kind=MessageKind.NEW,
        msg_id="m-1",
        message_type=Coded(code="HENVISNING", display="Henvisning"),
        generated=datetime(2024, 1, 2, 3, 4),
        document_id="d-1",
        issued=datetime(2024, 1, 2, 3, 0),
        patient=Patient(idents=(Ident(FNR, Coded(code="FNR")),), name=HumanName(text="Nordmann Kari")),
        sender=Organisation(
            professional=HealthProfessional(
                name=HumanName(text="Lege Lone"), idents=(Ident("9900777", Coded(code="HPR")),)
            )
        ),
        receiver=Organisation(name="Sykehuset"),
    )


def fixture_paths() -> list[Any]:
    own = [pytest.param(p, id=p.name) for p in sorted(FIXTURES.glob("henvisning_*.xml"))]
    return own + legacy_files("samples/Henvisning/*/*.xml")


def parsed(path: Path) -> Referral:
    return parse_henvisning(path.read_bytes())


def fhir_model(resource_type: str) -> Any:
    """The fhir.resources R4B model class of a resource type (R4B models serve R4 content here)."""
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)
