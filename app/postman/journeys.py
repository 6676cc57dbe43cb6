"""The collection's journeys, one per domain: a patient, a referral, a KITH message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.adapters.kith._fhir_common import DOCUMENT_ID_SYSTEM
from app.postman.builders import (
    check,
    created_id,
    js,
    parameters,
    request,
    transaction_of,
    transaction_request,
    var,
)
from app.resources.no_basis.identifiers import FNR_SYSTEM
from app.resources.referrals.codes import REFERRAL_CATEGORY, TASK_CODE_SYSTEM, BusinessStatus, TaskCode

ROOT = Path(__file__).resolve().parents[2]
KITH_MESSAGE = ROOT / "tests" / "adapters" / "kith" / "fixtures" / "henvisning_v2_nytilstand.xml"
KITH_MSG_ID = "6f1c2a8e-5b1d-4c3e-9a77-0d2f3b4c5d6e"  # the fixture's; each run sends a fresh one
KITH_PATIENT_FNR = "14835712347"  # the fixture message's patient
DEMO_PATIENT, DEMO_FNR, OTHER_DEMO_PATIENT = "kari", "13897210066", "ase"  # app/demo.py
DEMO_HOSPITAL, DEMO_GP_ROLE = "sykehuset-fjordby", "fastlege-lind"

# A synthetic fødselsnummer (Tenor style: month + 80, so never a real person's) with valid check digits.
_NEW_FNR = """
const pad = (n, w) => String(n).padStart(w, "0");
const day = 1 + Math.floor(Math.random() * 28), month = 1 + Math.floor(Math.random() * 12);
const year = 1950 + Math.floor(Math.random() * 49);
for (;;) {
    const base = pad(day, 2) + pad(month + 80, 2) + pad(year % 100, 2) + pad(Math.floor(Math.random() * 500), 3);
    const d = base.split("").map(Number);
    const sum = (w, ds) => ds.reduce((acc, x, i) => acc + x * w[i], 0);
    let k1 = 11 - (sum([3, 7, 6, 1, 8, 9, 4, 5, 2], d) % 11); if (k1 === 11) k1 = 0;
    if (k1 === 10) continue;
    let k2 = 11 - (sum([5, 4, 3, 2, 7, 6, 5, 4, 3, 2], [...d, k1]) % 11); if (k2 === 11) k2 = 0;
    if (k2 === 10) continue;
    pm.collectionVariables.set("fnr", base + k1 + k2);
    pm.collectionVariables.set("badFnr", base + k1 + ((k2 + 1) % 10));
    break;
}
"""


def _patient(fnr: str, given: str, telecom: bool = False) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"use": "official", "system": FNR_SYSTEM, "value": fnr}],
        "name": [{"use": "official", "family": "Postmann", "given": [given]}],
        "gender": "female",
    }
    if telecom:
        patient["id"] = "{{patientId}}"
        patient["telecom"] = [{"system": "phone", "value": "+47 99 99 99 99", "use": "mobile"}]
    return patient


def _blood_pressure(patient: str, encounter: str) -> dict[str, Any]:
    def component(code: str, display: str, value: int) -> dict[str, Any]:
        return {
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
            "valueQuantity": {
                "value": value,
                "unit": "mmHg",
                "system": "http://unitsofmeasure.org",
                "code": "mm[Hg]",
            },
        }

    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]
        },
        "subject": {"reference": patient},
        "encounter": {"reference": encounter},
        "effectiveDateTime": "2026-11-30T09:30:00+01:00",
        "component": [
            component("8480-6", "Systolic blood pressure", 128),
            component("8462-4", "Diastolic blood pressure", 82),
        ],
    }


def _transaction() -> dict[str, Any]:
    patient, encounter = "Patient/{{patientId}}", "urn:uuid:7d3f7a52-4c11-4f0e-9b7e-2d5c9a1e0b01"
    resources: list[tuple[str, dict[str, Any]]] = [
        (
            encounter,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                    "display": "ambulatory",
                },
                "subject": {"reference": patient},
                "period": {"start": "2026-11-30T09:00:00+01:00", "end": "2026-11-30T09:40:00+01:00"},
            },
        ),
        ("urn:uuid:7d3f7a52-4c11-4f0e-9b7e-2d5c9a1e0b02", _blood_pressure(patient, encounter)),
        (
            "urn:uuid:7d3f7a52-4c11-4f0e-9b7e-2d5c9a1e0b03",
            {
                "resourceType": "Condition",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {
                    "coding": [
                        {
                            "system": "urn:oid:2.16.578.1.12.4.1.1.7170",
                            "code": "K86",
                            "display": "Hypertensjon",
                        }
                    ]
                },
                "subject": {"reference": patient},
                "encounter": {"reference": encounter},
            },
        ),
    ]
    return transaction_of(resources)


def patient_journey() -> list[dict[str, Any]]:
    by_fnr = f"identifier={FNR_SYSTEM}|{{{{fnr}}}}"
    entries = "body.entry.map(e => e.resource.resourceType).sort()"
    return [
        request(
            "Create a patient with a fødselsnummer",
            "POST",
            "/Patient",
            check(
                201,
                "Patient",
                ("the fødselsnummer", "body.identifier[0].value", var("fnr")),
                ("the first version", "body.meta.versionId", '"1"'),
                ("a Location", 'pm.response.headers.get("Location").includes("/Patient/" + body.id)', "true"),
                save={"patientId": "body.id"},
            ),
            body=_patient("{{fnr}}", "Pia"),
            prerequest=js(_NEW_FNR),
        ),
        request(
            "Read it",
            "GET",
            "/Patient/{{patientId}}",
            check(
                200,
                "Patient",
                ("the name", "body.name[0].family", '"Postmann"'),
                ("the ETag", 'pm.response.headers.get("ETag")', "'W/\"1\"'"),
            ),
        ),
        request(
            "Search by fødselsnummer",
            "GET",
            f"/Patient?{by_fnr}",
            check(
                200,
                "Bundle",
                ("a searchset", "body.type", '"searchset"'),
                ("one match", "body.total", "1"),
                ("the patient", "body.entry[0].resource.id", var("patientId")),
            ),
        ),
        request(
            "Conditional create finds the same patient",
            "POST",
            "/Patient",
            check(200, "Patient", ("the same id", "body.id", var("patientId"))),
            body=_patient("{{fnr}}", "Pia"),
            headers={"If-None-Exist": by_fnr},
        ),
        request(
            "A wrong check digit is refused",
            "POST",
            "/Patient",
            check(
                422,
                "OperationOutcome",
                ("an error", "body.issue[0].severity", '"error"'),
                ("on the identifier", "body.issue[0].expression[0]", '"Patient.identifier[0].value"'),
            ),
            body=_patient("{{badFnr}}", "Pia"),
        ),
        request(
            "Update with If-Match",
            "PUT",
            "/Patient/{{patientId}}",
            check(
                200,
                "Patient",
                ("the second version", "body.meta.versionId", '"2"'),
                ("the phone", "body.telecom[0].value", '"+47 99 99 99 99"'),
            ),
            body=_patient("{{fnr}}", "Pia", telecom=True),
            headers={"If-Match": 'W/"1"'},
        ),
        request(
            "A stale If-Match is refused",
            "PUT",
            "/Patient/{{patientId}}",
            check(412, "OperationOutcome"),
            body=_patient("{{fnr}}", "Pia", telecom=True),
            headers={"If-Match": 'W/"1"'},
        ),
        request(
            "History",
            "GET",
            "/Patient/{{patientId}}/_history",
            check(
                200,
                "Bundle",
                ("a history", "body.type", '"history"'),
                ("both versions", "body.entry.map(e => e.resource.meta.versionId)", '["2", "1"]'),
            ),
        ),
        transaction_request(
            "A transaction: encounter, blood pressure and diagnosis",
            _transaction(),
            "all created",
            ("a transaction-response", "body.type", '"transaction-response"'),
            save={"observationId": created_id(1)},
        ),
        request(
            "Search observations by patient and code",
            "GET",
            "/Observation?subject=Patient/{{patientId}}&code=http://loinc.org|85354-9",
            check(
                200,
                "Bundle",
                ("one match", "body.total", "1"),
                ("the observation", "body.entry[0].resource.id", var("observationId")),
                (
                    "its encounter resolved",
                    'body.entry[0].resource.encounter.reference.startsWith("Encounter/")',
                    "true",
                ),
            ),
        ),
        request(
            "$everything",
            "GET",
            "/Patient/{{patientId}}/$everything",
            check(
                200,
                "Bundle",
                (
                    "the patient's record, no audit",
                    entries,
                    '["Condition", "Encounter", "Observation", "Patient"]',
                ),
            ),
        ),
        request(
            "An unknown patient is 404",
            "GET",
            "/Patient/finnes-ikke",
            check(404, "OperationOutcome", ("not-found", "body.issue[0].code", '"not-found"')),
        ),
    ]


def _referral() -> dict[str, Any]:
    service_request = "urn:uuid:0b6f1a40-8f3c-4d5e-a1b2-3c4d5e6f7a01"
    resources: list[tuple[str, dict[str, Any]]] = [
        (
            service_request,
            {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "category": [{"coding": [REFERRAL_CATEGORY]}],
                "code": {"text": "Utredning av hjertebank"},
                "subject": {"reference": f"Patient/{DEMO_PATIENT}"},
                "requester": {"reference": f"PractitionerRole/{DEMO_GP_ROLE}"},
                "performer": [{"reference": f"Organization/{DEMO_HOSPITAL}"}],
                "authoredOn": "{{today}}",
            },
        ),
        (
            "urn:uuid:0b6f1a40-8f3c-4d5e-a1b2-3c4d5e6f7a02",
            {
                "resourceType": "Task",
                "status": "requested",
                "intent": "order",
                "code": {"coding": [{"system": TASK_CODE_SYSTEM, "code": str(TaskCode.REFERRAL)}]},
                "focus": {"reference": service_request},
                "for": {"reference": f"Patient/{DEMO_PATIENT}"},
                "requester": {"reference": f"PractitionerRole/{DEMO_GP_ROLE}"},
                "owner": {"reference": f"Organization/{DEMO_HOSPITAL}"},
                "authoredOn": "{{today}}",
            },
        ),
    ]
    return transaction_of(resources)


_DATES = """
const iso = (d) => d.toISOString().slice(0, 10);
const today = new Date();
pm.collectionVariables.set("today", iso(today));
pm.collectionVariables.set("careDeadline", iso(new Date(today.getTime() + 42 * 86400000)));
"""
_REFERRAL_ROW = """
const rows = body.parameter.filter(p => p.name === "referral").map(p => Object.fromEntries(
    p.part.map(x => [x.name, Object.entries(x).find(([k]) => k.startsWith("value"))?.[1] ?? x.part])));
const mine = rows.find(r => r.task && r.task.reference === "Task/" + pm.collectionVariables.get("taskId"));
"""


def referral_journey() -> list[dict[str, Any]]:
    task = "/Task/{{taskId}}"
    return [
        transaction_request(
            "The GP sends a referral (ServiceRequest + Task)",
            _referral(),
            "both created",
            save={"taskId": created_id(1)},
            token="gpToken",
            prerequest=js(_DATES),
        ),
        request(
            "The hospital receives it",
            "POST",
            f"{task}/$receive",
            check(200, "Task", ("received", "body.status", '"received"')),
            token="hospitalToken",
            body=parameters(),
        ),
        request(
            "The hospital assesses it: a right to care, deadline in six weeks",
            "POST",
            f"{task}/$assess",
            check(
                200,
                "Task",
                ("still received", "body.status", '"received"'),
                ("a right to care", "body.businessStatus.coding[0].code", f'"{BusinessStatus.RETT}"'),
            ),
            token="hospitalToken",
            body=parameters(
                decision=("Code", "rett"),
                priority=("Code", "ordinaer"),
                careDeadline=("Date", "{{careDeadline}}"),
            ),
        ),
        request(
            "Receiving it again breaks a business rule",
            "POST",
            f"{task}/$receive",
            check(422, "OperationOutcome", ("business-rule", "body.issue[0].code", '"business-rule"')),
            token="hospitalToken",
            body=parameters(),
        ),
        request(
            "The citizen sees her referral and its deadline",
            "GET",
            f"/Patient/{DEMO_PATIENT}/$referrals",
            [
                *check(200, "Parameters"),
                *js(_REFERRAL_ROW),
                'pm.test("her referral, assessed", () => pm.expect(mine && mine.state).to.eql("assessed"));',
                'pm.test("its deadline", () => pm.expect(mine.deadline).to.eql(pm.collectionVariables.get("careDeadline")));',
            ],
            token="citizenToken",
        ),
        request(
            "The citizen may not see another patient's referrals",
            "GET",
            f"/Patient/{OTHER_DEMO_PATIENT}/$referrals",
            check(403, "OperationOutcome"),
            token="citizenToken",
        ),
        request(
            "Who has seen my record: the hospital's access is in her log",
            "GET",
            f"/AuditEvent?patient=Patient/{DEMO_PATIENT}&_count=100",
            [
                *check(
                    200,
                    "Bundle",
                    (
                        "only audit events",
                        "[...new Set(body.entry.map(e => e.resource.resourceType))]",
                        '["AuditEvent"]',
                    ),
                ),
                "const who = body.entry.flatMap(e => e.resource.agent || []).flatMap(a => a.who ? [a.who] : []);",
                'pm.test("the hospital doctor is named", () => pm.expect(who.some(w => JSON.stringify(w).includes("9100002"))).to.eql(true));',
            ],
            token="citizenToken",
        ),
        request(
            "Waiting times at the hospital",
            "GET",
            f"/Task/$waiting-times?owner=Organization/{DEMO_HOSPITAL}",
            check(200, "Parameters", ("figures per organisation", "body.parameter.length > 0", "true")),
        ),
    ]


def kith_journey() -> list[dict[str, Any]]:
    message = KITH_MESSAGE.read_text(encoding="utf-8")
    assert message.count(KITH_MSG_ID) == 1, "the fixture's MsgId"
    message = message.replace(KITH_MSG_ID, "{{msgId}}")
    xml = {"Content-Type": "application/xml", "Accept": "application/xml"}
    apprec = [
        'pm.test("status 200", () => pm.response.to.have.status(200));',
        "const xml = pm.response.text();",
        'pm.test("an AppRec", () => pm.expect(xml).to.include("<AppRec"));',
        'pm.test("status OK", () => pm.expect(xml).to.include(\'<Status V="1"\'));',
        'pm.test("for the message", () => pm.expect(xml).to.include("<Id>" + pm.collectionVariables.get("msgId") + "</Id>"));',
    ]
    return [
        request(
            "A Henvisning 2.0 arrives: a positive AppRec",
            "POST",
            "/$kith-message",
            apprec,
            body=message,
            headers=xml,
            prerequest=['pm.collectionVariables.set("msgId", pm.variables.replaceIn("{{$guid}}"));'],
        ),
        request(
            "The same message again: the same answer",
            "POST",
            "/$kith-message",
            apprec,
            body=message,
            headers=xml,
        ),
        request(
            "The referral it made",
            "GET",
            f"/ServiceRequest?subject:Patient.identifier={FNR_SYSTEM}|{KITH_PATIENT_FNR}&_sort=-_lastUpdated&_count=1",
            check(
                200,
                "Bundle",
                (
                    "from the message",
                    "body.entry[0].resource.identifier[0].system",
                    f'"{DOCUMENT_ID_SYSTEM}"',
                ),
                save={"serviceRequestId": "body.entry[0].resource.id"},
            ),
        ),
        request(
            "Back to KITH: the referral as Henvisning XML",
            "GET",
            "/ServiceRequest/{{serviceRequestId}}/$kith-henvisning",
            [
                'pm.test("status 200", () => pm.response.to.have.status(200));',
                'pm.test("a MsgHead", () => pm.expect(pm.response.text()).to.include("MsgHead"));',
                f'pm.test("the patient", () => pm.expect(pm.response.text()).to.include("{KITH_PATIENT_FNR}"));',
            ],
            headers={"Accept": "application/xml"},
        ),
    ]
