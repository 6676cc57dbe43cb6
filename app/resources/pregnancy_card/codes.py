"""The pack's identifiers and codes: what marks a pregnancy, its plan and the woman's notes.

Shared by every module of the pack (and by the security layer's pilot switch), so that a code is stated
once. The clinical observation codes (LOINC) follow below the identifiers; README.md says why each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

BASE = "http://helsebro.no/fhir"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

# The pack's own CodeSystem: sections of the card, the woman's follow-up choice, note categories.
CARD_SYSTEM = f"{BASE}/CodeSystem/pregnancy-card"

# The consultations of the basic programme (programme.json ids): PlanDefinition.action.code and
# CarePlan.activity.detail.code, which is how a CarePlan's programme activities are told from extra ones.
CONSULTATION_SYSTEM = f"{BASE}/CodeSystem/pregnancy-consultation"
# Who performs a consultation (PlanDefinition.action.participant.role, CARD_SYSTEM codes).
PERFORMERS = {"fastlege": "Fastlege", "jordmor": "Jordmor", "sykehus": "Spesialisthelsetjenesten (sykehus)"}

# The pregnancy as an EpisodeOfCare: type "antenatal care" (SNOMED CT) and the pack's own code.
EPISODE_TYPE_SNOMED = {"system": SNOMED, "code": "424525001", "display": "Antenatal care"}
EPISODE_TYPE_CARD = {"system": CARD_SYSTEM, "code": "svangerskap", "display": "Svangerskap"}
# The pregnancy Condition (EpisodeOfCare.diagnosis).
PREGNANCY_CONDITION = {"system": SNOMED, "code": "77386006", "display": "Pregnancy"}

# The basic programme (basisprogrammet) as a PlanDefinition, and the woman's CarePlan instantiating it.
PROGRAMME_URL = f"{BASE}/PlanDefinition/basisprogram-svangerskap"

# Any resource of the card that is not an Encounter (which has episodeOfCare) names its pregnancy with
# the R5 backport extension (hl7.org/fhir/extensions: workflow-episodeOfCare).
EPISODE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare"

# Who follows her up (EpisodeOfCare extension, valueCode from CARD_SYSTEM): fastlege, jordmor or begge.
FOLLOW_UP_EXTENSION = f"{BASE}/StructureDefinition/pregnancy-follow-up"
FOLLOW_UP_CODES = {"fastlege": "Fastlege", "jordmor": "Jordmor", "begge": "Fastlege og jordmor"}

# The woman's own notes and questions for the next consultation: Communication.category (CARD_SYSTEM).
NOTE_CATEGORIES = {"notat": "Kvinnens notat", "sporsmal": "Spørsmål til neste konsultasjon"}

# What the audit records the card's reads under (RequestContext.service).
PREGNANCY_CARD_SERVICE = ("pregnancy-card", "Helsekort for gravide")


# ---------------------------------------------------------------------------------------------------
# The clinical codes of the card, as data. One entry per thing the paper card records; `key` is the
# pack's stable name for it (programme.json and the card's sections refer to keys, never to raw codes).
# LOINC first; SNOMED CT where LOINC has none; the pack's own CARD_SYSTEM where neither could be
# verified (README.md, "Codes", says which and why). `display_no` is the wording of the paper card.


class Section(StrEnum):
    """The card's sections: a code belongs to exactly one."""

    DATING = "datering"  # Termin og svangerskapslengde
    HISTORY = "anamnese"  # Anamnese og risiko
    CONSULTATION = "konsultasjon"  # Det som måles ved hver konsultasjon
    TESTS = "prover"  # Blodprøver, fosterdiagnostikk og ultralyd


SECTION_TITLES: dict[Section, str] = {
    Section.DATING: "Termin og svangerskapslengde",
    Section.HISTORY: "Anamnese og risiko",
    Section.CONSULTATION: "Konsultasjoner",
    Section.TESTS: "Prøver og undersøkelser",
}


@dataclass(frozen=True)
class ClinicalCode:
    key: str
    section: Section
    system: str
    code: str
    display: str  # the code system's own display (English for LOINC and SNOMED CT)
    display_no: str  # as on the paper card
    resource: str = "Observation"  # ServiceRequest for what is ordered (ultrasound, NIPT)
    unit: str | None = None  # UCUM code of an Observation's valueQuantity
    verified: bool = True  # False: no public source confirmed the code (README.md says so)

    def coding(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}

    def concept(self) -> dict[str, Any]:
        """A CodeableConcept with the Norwegian display as its text (what the card prints)."""
        return {"coding": [self.coding()], "text": self.display_no}


_D, _H, _C, _T = Section.DATING, Section.HISTORY, Section.CONSULTATION, Section.TESTS

_TABLE: tuple[ClinicalCode, ...] = (
    # Dating: the due date is computed (dates.py) and recorded as Observations with these codes.
    ClinicalCode(
        "lmp", _D, LOINC, "8665-2", "Last menstrual period start date", "Siste menstruasjon (1. dag)"
    ),
    ClinicalCode(
        "cycle_length", _D, LOINC, "64700-8", "Menstrual cycle typical days", "Syklus (dager)", unit="d"
    ),
    ClinicalCode(
        "edd_lmp",
        _D,
        LOINC,
        "11779-6",
        "Delivery date Estimated from last menstrual period",
        "Termin etter siste menstruasjon",
    ),
    ClinicalCode(
        "edd_ultrasound", _D, LOINC, "11781-2", "Delivery date US composite estimate", "Termin etter ultralyd"
    ),
    ClinicalCode("edd", _D, LOINC, "11778-8", "Delivery date Estimated", "Termin"),
    ClinicalCode("ga", _D, LOINC, "18185-9", "Gestational age", "Svangerskapslengde", unit="d"),
    ClinicalCode(
        "ga_lmp",
        _D,
        LOINC,
        "11885-1",
        "Gestational age Estimated from last menstrual period",
        "Svangerskapslengde etter siste menstruasjon",
        unit="d",
    ),
    ClinicalCode(
        "ga_ultrasound",
        _D,
        LOINC,
        "11888-5",
        "Gestational age US composite estimate",
        "Svangerskapslengde etter ultralyd",
        unit="d",
    ),
    # History and risk (first consultation).
    ClinicalCode("gravida", _H, LOINC, "11996-6", "[#] Pregnancies", "Gravida (antall svangerskap)"),
    ClinicalCode("para", _H, LOINC, "11977-6", "[#] Parity", "Para (antall fødsler)"),
    ClinicalCode("height", _H, LOINC, "8302-2", "Body height", "Høyde", unit="cm"),
    ClinicalCode(
        "weight_before",
        _H,
        LOINC,
        "56077-1",
        "Body weight --pre current pregnancy",
        "Vekt før svangerskapet",
        unit="kg",
    ),
    ClinicalCode("tobacco", _H, LOINC, "72166-2", "Tobacco smoking status", "Røyk/snus"),
    ClinicalCode("alcohol", _H, LOINC, "11331-6", "History of Alcohol use", "Alkohol"),
    ClinicalCode(
        "mood_interest",
        _H,
        LOINC,
        "44250-9",
        "Little interest or pleasure in doing things",
        "Psykisk helse: lite interesse eller glede (Whooley 2)",
    ),
    ClinicalCode(
        "mood_down",
        _H,
        LOINC,
        "44255-8",
        "Feeling down, depressed, or hopeless",
        "Psykisk helse: nedstemt eller håpløs (Whooley 1)",
    ),
    ClinicalCode(
        "epds", _H, LOINC, "71354-5", "Edinburgh Postnatal Depression Scale [EPDS]", "EPDS (ved behov)"
    ),
    ClinicalCode(
        "violence_asked",
        _H,
        CARD_SYSTEM,
        "vold-spurt",
        "Asked about violence",
        "Spurt om vold",
        verified=False,
    ),
    # At each consultation.
    ClinicalCode("weight", _C, LOINC, "29463-7", "Body weight", "Vekt", unit="kg"),
    ClinicalCode("bp", _C, LOINC, "85354-9", "Blood pressure panel with all children optional", "Blodtrykk"),
    ClinicalCode(
        "bp_systolic", _C, LOINC, "8480-6", "Systolic blood pressure", "Systolisk blodtrykk", unit="mm[Hg]"
    ),
    ClinicalCode(
        "bp_diastolic", _C, LOINC, "8462-4", "Diastolic blood pressure", "Diastolisk blodtrykk", unit="mm[Hg]"
    ),
    ClinicalCode(
        "urine_protein", _C, LOINC, "20454-5", "Protein [Presence] in Urine by Test strip", "Urin: protein"
    ),
    ClinicalCode(
        "urine_glucose", _C, LOINC, "25428-4", "Glucose [Presence] in Urine by Test strip", "Urin: glukose"
    ),
    ClinicalCode(
        "sf_height",
        _C,
        LOINC,
        "11881-0",
        "Uterus Fundal height by Tape measure",
        "Symfyse-fundusmål (SF)",
        unit="cm",
    ),
    ClinicalCode("fetal_heart_rate", _C, LOINC, "55283-6", "Fetal Heart rate", "Fosterlyd", unit="/min"),
    ClinicalCode("fetal_presentation", _C, SNOMED, "246105001", "Presentation", "Leie", verified=False),
    ClinicalCode("fetal_movements", _C, SNOMED, "364618000", "Pattern of fetal movement", "Kjenner liv"),
    # Tests: blood tests, fetal diagnostics and ultrasound.
    ClinicalCode(
        "hb", _T, LOINC, "718-7", "Hemoglobin [Mass/volume] in Blood", "Hemoglobin (Hb)", unit="g/dL"
    ),
    ClinicalCode(
        "blood_group", _T, LOINC, "882-1", "ABO and Rh group [Type] in Blood", "Blodtype (ABO og RhD)"
    ),
    ClinicalCode(
        "antibody_screen",
        _T,
        LOINC,
        "890-4",
        "Blood group antibody screen [Presence] in Serum or Plasma",
        "Blodtypeantistoff (screening)",
    ),
    ClinicalCode("hiv", _T, LOINC, "75622-1", "HIV 1 and 2 tests - Meaningful Use set", "Hiv"),
    ClinicalCode(
        "hbsag", _T, LOINC, "5196-1", "Hepatitis B virus surface Ag [Presence] in Serum", "Hepatitt B (HBsAg)"
    ),
    ClinicalCode("syphilis", _T, LOINC, "20507-0", "Reagin Ab [Presence] in Serum by RPR", "Syfilis"),
    ClinicalCode(
        "rubella",
        _T,
        LOINC,
        "25514-1",
        "Rubella virus IgG Ab [Presence] in Serum",
        "Rubella-immunitet (ved behov)",
    ),
    ClinicalCode(
        "chlamydia",
        _T,
        LOINC,
        "21613-5",
        "Chlamydia trachomatis DNA [Presence] in Specimen by NAA with probe detection",
        "Klamydia (ved indikasjon)",
    ),
    ClinicalCode(
        "early_ultrasound",
        _T,
        CARD_SYSTEM,
        "tidlig-ultralyd",
        "Early ultrasound 11+0-13+6",
        "Tidlig ultralyd (uke 11–14)",
        resource="ServiceRequest",
        verified=False,
    ),
    ClinicalCode(
        "routine_ultrasound",
        _T,
        SNOMED,
        "169670003",
        "Antenatal ultrasound scan at 17-22 weeks",
        "Ultralyd uke 17–19",
        resource="ServiceRequest",
    ),
    ClinicalCode(
        "nipt",
        _T,
        CARD_SYSTEM,
        "nipt",
        "Cell-free DNA screening for trisomy 13, 18 and 21 (NIPT)",
        "NIPT (trisomi 13, 18, 21)",
        resource="ServiceRequest",
        verified=False,
    ),
)

CODES: dict[str, ClinicalCode] = {entry.key: entry for entry in _TABLE}


def clinical(key: str) -> ClinicalCode:
    """The entry for a key; KeyError names the unknown key (a typo in programme.json fails loudly)."""
    return CODES[key]


def in_section(section: Section) -> list[ClinicalCode]:
    return [entry for entry in _TABLE if entry.section is section]


def key_of(coding: Mapping[str, Any]) -> str | None:
    """The pack's key for a Coding (system and code), or None when the card does not record it."""
    return _BY_CODING.get((str(coding.get("system")), str(coding.get("code"))))


_BY_CODING = {(entry.system, entry.code): entry.key for entry in _TABLE}
