"""The pack's identifiers and codes: what marks a pregnancy, its plan and the woman's notes.

Shared by every module of the pack (and by the security layer's pilot switch), so that a code is stated
once. The clinical observation codes (LOINC) follow below the identifiers; README.md says why each.
"""

from __future__ import annotations

BASE = "http://helsebro.no/fhir"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

# The pack's own CodeSystem: sections of the card, the woman's follow-up choice, note categories.
CARD_SYSTEM = f"{BASE}/CodeSystem/pregnancy-card"

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
