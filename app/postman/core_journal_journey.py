"""The core journal journey (kjernejournal): the demo GP records critical information for Kari, a critical
allergy (which the pack's automatic flow turns into a core-journal entry naming its source) and a vaccine;
then `$summary` as the GP, Kari's access log showing that lookup as core-journal access, her own view of
the summary, and a doctor without a care relation refused."""

from __future__ import annotations

from typing import Any

from app.postman.builders import check, request, var
from app.postman.journeys import DEMO_GP_ROLE, DEMO_PATIENT
from app.resources.core_journal.codes import ENTRY_TAG, SOURCE_EXTENSION, TAG_SYSTEM
from app.resources.core_journal.summary import IPS_COMPOSITION_TYPE, SECTIONS
from app.resources.medication_list.codes import ATC_SYSTEM
from app.security.audit import SERVICE_SYSTEM

SNOMED = "http://snomed.info/sct"
# A demo patient the demo hospital has no care relation with (app/demo.py: only her GP has one).
UNRELATED_PATIENT = "oyvind"
_SUMMARY = f"/Patient/{DEMO_PATIENT}/$summary"
_ALLERGY_SECTION, _VACCINE_SECTION = (
    next(s.code for s in SECTIONS if s.res_type == kind) for kind in ("AllergyIntolerance", "Immunization")
)

# Over the $summary document in `body`: the Composition, a section's entry references by LOINC code, and
# the core-journal entry that lists the allergy recorded above as one of its sources.
_DOCUMENT = f"""
const composition = body.entry[0].resource;
const sectionRefs = (code) => (composition.section.find(s => s.code.coding[0].code === code) || {{}}).entry || [];
const sourcesOf = (r) => (r.extension || []).filter(x => x.url === "{SOURCE_EXTENSION}")
    .map(x => x.extension.find(p => p.url === "resource").valueReference.reference);
const entry = body.entry.map(e => e.resource).find(r => r.resourceType === "AllergyIntolerance"
    && (r.meta.tag || []).some(t => t.system === "{TAG_SYSTEM}" && t.code === "{ENTRY_TAG["code"]}")
    && sourcesOf(r).includes("AllergyIntolerance/" + {var("allergyId")}));
"""


def _allergy() -> dict[str, Any]:
    """A critical (criticality high) cashew allergy with anaphylaxis; codes as in R4's own example."""
    return {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "code": "confirmed",
                }
            ]
        },
        "type": "allergy",
        "category": ["food"],
        "criticality": "high",
        "code": {
            "coding": [{"system": SNOMED, "code": "227493005", "display": "Cashew nuts"}],
            "text": "Cashewnøtter",
        },
        "patient": {"reference": f"Patient/{DEMO_PATIENT}"},
        "recorder": {"reference": f"PractitionerRole/{DEMO_GP_ROLE}"},
        "reaction": [
            {
                "manifestation": [
                    {"coding": [{"system": SNOMED, "code": "39579001", "display": "Anaphylactic reaction"}]}
                ],
                "severity": "severe",
            }
        ],
    }


def _vaccine() -> dict[str, Any]:
    return {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {
            "coding": [
                {
                    "system": ATC_SYSTEM,
                    "code": "J07BB02",
                    "display": "influenza, inactivated, split virus or surface antigen",
                }
            ],
            "text": "Influensavaksine",
        },
        "patient": {"reference": f"Patient/{DEMO_PATIENT}"},
        "occurrenceDateTime": "{{today}}",
        "primarySource": True,
        "performer": [{"actor": {"reference": f"PractitionerRole/{DEMO_GP_ROLE}"}}],
    }


def _summary_checks(who: str) -> list[str]:
    """The document, its Composition (IPS type), the allergy section pointing at the core-journal entry
    that lists the new allergy, and the vaccine section pointing at the new Immunization."""
    return [
        *check(
            200,
            "Bundle",
            ("a document", "body.type", '"document"'),
            (
                "an IPS Composition",
                "body.entry[0].resource.type.coding[0].code",
                f'"{IPS_COMPOSITION_TYPE["code"]}"',
            ),
            ("about Kari", "body.entry[0].resource.subject.reference", f'"Patient/{DEMO_PATIENT}"'),
        ),
        *_DOCUMENT.strip("\n").split("\n"),
        f'pm.test("{who}: a core-journal entry lists the allergy as its source", () => pm.expect(Boolean(entry)).to.eql(true));',
        'pm.test("critical", () => pm.expect(entry.criticality).to.eql("high"));',
        f'pm.test("in the allergy section", () => pm.expect(sectionRefs("{_ALLERGY_SECTION}").map(r => r.reference)).to.include("AllergyIntolerance/" + entry.id));',
        f'pm.test("the vaccine in its section", () => pm.expect(sectionRefs("{_VACCINE_SECTION}").map(r => r.reference)).to.include("Immunization/" + {var("immunizationId")}));',
    ]


def core_journal_journey() -> list[dict[str, Any]]:
    return [
        request(
            "The GP records a critical allergy",
            "POST",
            "/AllergyIntolerance",
            check(
                201,
                "AllergyIntolerance",
                ("critical", "body.criticality", '"high"'),
                ("Kari's", "body.patient.reference", f'"Patient/{DEMO_PATIENT}"'),
                save={"allergyId": "body.id"},
            ),
            token="gpToken",
            body=_allergy(),
            prerequest=['pm.collectionVariables.set("today", new Date().toISOString().slice(0, 10));'],
        ),
        request(
            "The GP records a vaccine",
            "POST",
            "/Immunization",
            check(
                201,
                "Immunization",
                ("completed", "body.status", '"completed"'),
                ("the vaccine", "body.vaccineCode.coding[0].code", '"J07BB02"'),
                save={"immunizationId": "body.id"},
            ),
            token="gpToken",
            body=_vaccine(),
        ),
        request(
            "The GP reads the core journal ($summary)",
            "GET",
            _SUMMARY,
            _summary_checks("the GP"),
            token="gpToken",
        ),
        request(
            "Kari's access log shows the lookup as core-journal access",
            "GET",
            f"/AuditEvent?patient=Patient/{DEMO_PATIENT}&_sort=-date&_count=1",
            [
                *check(
                    200, "Bundle", ("an audit event", "body.entry[0].resource.resourceType", '"AuditEvent"')
                ),
                "const event = body.entry[0].resource;",
                f'pm.test("as core-journal access", () => pm.expect(event.subtype.map(c => c.system + "|" + c.code)).to.include("{SERVICE_SYSTEM}|core-journal"));',
                'pm.test("by the GP", () => pm.expect(JSON.stringify(event.agent)).to.include("9100001"));',
            ],
            token="citizenToken",
        ),
        request(
            "Kari reads her own core journal",
            "GET",
            _SUMMARY,
            _summary_checks("Kari"),
            token="citizenToken",
        ),
        request(
            "A hospital doctor without a care relation is refused",
            "GET",
            f"/Patient/{UNRELATED_PATIENT}/$summary",
            check(
                403,
                "OperationOutcome",
                ("forbidden", "body.issue[0].code", '"forbidden"'),
                ("no care relation", 'body.issue[0].diagnostics.includes("tjenstlig behov")', "true"),
            ),
            token="hospitalToken",
        ),
    ]
