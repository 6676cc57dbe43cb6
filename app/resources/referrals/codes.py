"""Code systems of the referral (henvisning) workflow, as data, plus CodeSystem resources to publish.

Codes are lower-case ASCII (ø → o) so they survive every transport; displays are Norwegian (the language of
the service) with an English designation. Task.status itself uses the FHIR task-status codes unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

BASE = "http://helsebro.no/fhir"
REFERRAL_STATUS_SYSTEM = f"{BASE}/CodeSystem/referral-status"  # Task.businessStatus
DECISION_SYSTEM = f"{BASE}/CodeSystem/referral-decision"  # outcome of the assessment (vurdering)
PRIORITY_SYSTEM = f"{BASE}/CodeSystem/referral-priority"  # assessment priority
REJECTION_REASON_SYSTEM = f"{BASE}/CodeSystem/referral-rejection-reason"  # Task.statusReason of a rejection
OUTPUT_SYSTEM = f"{BASE}/CodeSystem/referral-task-output"  # Task.output.type: what each entry records
FORWARDING_EXTENSION = f"{BASE}/StructureDefinition/referral-forwarding"  # who forwarded, to whom, when
TASK_CODE_SYSTEM = f"{BASE}/CodeSystem/referral-task"  # Task.code: what makes a Task a referral Task
REFERRAL_TASK_PROFILE = f"{BASE}/StructureDefinition/referral-task"  # the same, said by meta.profile

TASK_STATUS_SYSTEM = "http://hl7.org/fhir/task-status"  # FHIR's own; not published here
# ServiceRequest.category of a referral: SNOMED CT 3457005 |Patient referral| (the R4 example value set)
REFERRAL_CATEGORY = {"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}

ICD10_SYSTEM = "urn:oid:2.16.578.1.12.4.1.1.7110"  # ICD-10 (Volven 7110)
ICPC2_SYSTEM = "urn:oid:2.16.578.1.12.4.1.1.7170"  # ICPC-2 (Volven 7170)


class TaskCode(StrEnum):
    REFERRAL = "henvisning"


class TaskStatus(StrEnum):
    """The FHIR R4 Task.status values this workflow uses (draft, ready, failed, entered-in-error are not)."""

    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({TaskStatus.REJECTED, TaskStatus.COMPLETED, TaskStatus.CANCELLED})


class BusinessStatus(StrEnum):
    MOTTATT = "mottatt"
    VURDERT = "vurdert"
    RETT = "rett-til-nodvendig-helsehjelp"
    IKKE_RETT = "ikke-rett"
    VIDERESENDT = "videresendt"
    VURDERINGSSAMTALE_TILBUDT = "vurderingssamtale-tilbudt"
    TIME_TILDELT = "time-tildelt"


class Decision(StrEnum):
    RIGHT = "rett"
    NOT_ENTITLED = "ikke-rett"
    NEEDS_CONVERSATION = "behov-for-vurderingssamtale"


class Priority(StrEnum):
    URGENT = "haster"
    HIGH = "hoy"
    ROUTINE = "ordinaer"


class RejectionReason(StrEnum):
    NO_NEED = "ikke-behov"
    CRITERIA_NOT_MET = "kriterier-ikke-oppfylt"
    MUNICIPAL_CARE = "kommunal-helsetjeneste"
    DUPLICATE = "duplikat"
    OTHER = "annet"


class Output(StrEnum):
    """Task.output types: each entry is one recorded fact of the workflow."""

    RECEIVED = "mottatt"  # valueDateTime: receipt by the current owner
    FIRST_RECEIVED = "ansiennitet"  # valueDateTime: first receipt in specialist care (kept when forwarded)
    ASSESSMENT_DEADLINE = "vurderingsfrist"  # valueDate: 10 working days after first receipt
    ASSESSED = "vurdert"  # valueDateTime
    ASSESSED_BY = "vurdert-av"  # valueReference: the practitioner who assessed
    ASSESSED_IN_TIME = "innen-vurderingsfrist"  # valueBoolean
    DECISION = "beslutning"  # valueCodeableConcept (referral-decision)
    PRIORITY = "prioritet"  # valueCodeableConcept (referral-priority)
    CARE_DEADLINE = "frist-start-helsehjelp"  # valueDate: legal deadline for start of care
    CONVERSATION = "vurderingssamtale"  # valuePeriod: window offered for the assessment conversation
    APPOINTMENT = "time"  # valueReference: the Appointment given
    CARE_STARTED = "start-helsehjelp"  # valueDateTime
    DEADLINE_BREACH = "fristbrudd"  # valueBoolean: care (planned or started) after the deadline
    ROUTING_RULE = "rutingregel"  # valueString: id of the intake rule that chose the owner
    WAITING_ENDED = "ventetid-slutt"  # valueDate: end of waiting given by a forwarding sender (Volven 9147 4)


@dataclass(frozen=True)
class Concept:
    code: str
    nb: str
    en: str
    definition: str = ""


# Task.priority (FHIR request-priority) that goes with each assessment priority
FHIR_PRIORITY: dict[str, str] = {
    Priority.URGENT: "asap",
    Priority.HIGH: "urgent",
    Priority.ROUTINE: "routine",
}

CONCEPTS: dict[str, tuple[Concept, ...]] = {
    TASK_CODE_SYSTEM: (
        Concept(
            TaskCode.REFERRAL,
            "Henvisning",
            "Referral",
            "The Task carries a referral (its focus, a ServiceRequest) through receipt, assessment and care.",
        ),
    ),
    REFERRAL_STATUS_SYSTEM: (
        Concept(
            BusinessStatus.MOTTATT, "Mottatt", "Received", "The receiving unit has received the referral."
        ),
        Concept(
            BusinessStatus.VURDERT, "Vurdert", "Assessed", "Assessed; the decision awaits a conversation."
        ),
        Concept(
            BusinessStatus.RETT,
            "Rett til nødvendig helsehjelp",
            "Right to necessary specialist care",
            "Entitled to necessary specialist care, with a deadline for start of care.",
        ),
        Concept(BusinessStatus.IKKE_RETT, "Ikke rett", "Not entitled", "Not entitled to specialist care."),
        Concept(BusinessStatus.VIDERESENDT, "Videresendt", "Forwarded", "Forwarded to another unit."),
        Concept(
            BusinessStatus.VURDERINGSSAMTALE_TILBUDT,
            "Vurderingssamtale tilbudt",
            "Assessment conversation offered",
            "Children and young people are offered a conversation instead of a rejection on the papers.",
        ),
        Concept(BusinessStatus.TIME_TILDELT, "Time tildelt", "Appointment given"),
    ),
    DECISION_SYSTEM: (
        Concept(Decision.RIGHT, "Rett til nødvendig helsehjelp", "Right to necessary specialist care"),
        Concept(Decision.NOT_ENTITLED, "Ikke rett til nødvendig helsehjelp", "Not entitled"),
        Concept(
            Decision.NEEDS_CONVERSATION, "Behov for vurderingssamtale", "Needs an assessment conversation"
        ),
    ),
    PRIORITY_SYSTEM: (
        Concept(Priority.URGENT, "Haster", "Urgent"),
        Concept(Priority.HIGH, "Høy prioritet", "High priority"),
        Concept(Priority.ROUTINE, "Ordinær", "Routine"),
    ),
    REJECTION_REASON_SYSTEM: (
        Concept(
            RejectionReason.NO_NEED, "Ikke behov for spesialisthelsetjenester", "No need for specialist care"
        ),
        Concept(
            RejectionReason.CRITERIA_NOT_MET,
            "Prioriteringskriteriene er ikke oppfylt",
            "Prioritisation criteria (severity, benefit, resources) not met",
        ),
        Concept(
            RejectionReason.MUNICIPAL_CARE,
            "Helsehjelpen bør gis i kommunen",
            "Care should be given by the municipal health service",
        ),
        Concept(
            RejectionReason.DUPLICATE, "Duplikat av en annen henvisning", "Duplicate of another referral"
        ),
        Concept(RejectionReason.OTHER, "Annen årsak", "Other reason"),
    ),
    OUTPUT_SYSTEM: (
        Concept(Output.RECEIVED, "Mottatt", "Received by the current owner"),
        Concept(Output.FIRST_RECEIVED, "Ansiennitetsdato", "First received in specialist care"),
        Concept(Output.ASSESSMENT_DEADLINE, "Vurderingsfrist", "Deadline for the assessment"),
        Concept(Output.ASSESSED, "Vurdert", "Assessed"),
        Concept(Output.ASSESSED_BY, "Vurdert av", "Assessed by"),
        Concept(Output.ASSESSED_IN_TIME, "Vurdert innen fristen", "Assessed within the deadline"),
        Concept(Output.DECISION, "Beslutning", "Decision"),
        Concept(Output.PRIORITY, "Prioritet", "Priority"),
        Concept(Output.CARE_DEADLINE, "Frist for start helsehjelp", "Deadline for start of care"),
        Concept(Output.CONVERSATION, "Vurderingssamtale", "Assessment conversation"),
        Concept(Output.APPOINTMENT, "Time", "Appointment"),
        Concept(Output.CARE_STARTED, "Helsehjelp startet", "Care started"),
        Concept(Output.DEADLINE_BREACH, "Fristbrudd", "Deadline breached"),
        Concept(Output.ROUTING_RULE, "Rutingregel", "Routing rule"),
        Concept(
            Output.WAITING_ENDED,
            "Ventetid sluttdato",
            "End of waiting time, as given by the forwarding sender",
        ),
    ),
}

_TITLES = {
    TASK_CODE_SYSTEM: ("referral-task", "Henvisningsoppgave (Task.code)"),
    REFERRAL_STATUS_SYSTEM: ("referral-status", "Henvisningsstatus (Task.businessStatus)"),
    DECISION_SYSTEM: ("referral-decision", "Utfall av vurdering av henvisning"),
    PRIORITY_SYSTEM: ("referral-priority", "Prioritet ved vurdering av henvisning"),
    REJECTION_REASON_SYSTEM: ("referral-rejection-reason", "Årsak til avslag på henvisning"),
    OUTPUT_SYSTEM: ("referral-task-output", "Registrerte opplysninger i henvisningsoppgaven (Task.output)"),
}

_BY_CODE = {(system, c.code): c for system, concepts in CONCEPTS.items() for c in concepts}


def concept(system: str, code: str) -> Concept | None:
    return _BY_CODE.get((system, code))


def has_code(system: str, code: str) -> bool:
    return (system, code) in _BY_CODE


def coding(system: str, code: str) -> dict[str, str]:
    """A Coding with the Norwegian display; raises KeyError for a code the system does not define."""
    return {"system": system, "code": str(code), "display": _BY_CODE[(system, code)].nb}


def codeable(system: str, code: str, text: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"coding": [coding(system, code)]}
    result["text"] = text if text is not None else _BY_CODE[(system, code)].nb
    return result


def code_system(system: str) -> dict[str, Any]:
    """The CodeSystem resource (FHIR R4 JSON) for one of this pack's systems, complete and active."""
    name, title = _TITLES[system]
    concepts: list[dict[str, Any]] = []
    for c in CONCEPTS[system]:
        entry: dict[str, Any] = {"code": str(c.code), "display": c.nb}
        if c.definition:
            entry["definition"] = c.definition
        entry["designation"] = [{"language": "en", "value": c.en}]
        concepts.append(entry)
    return {
        "resourceType": "CodeSystem",
        "id": name,
        "url": system,
        "version": "1.0.0",
        "name": "".join(part.capitalize() for part in name.split("-")),
        "title": title,
        "status": "active",
        "experimental": False,
        "publisher": "Helsebro",
        "language": "nb",
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": concepts,
    }


def code_systems() -> list[dict[str, Any]]:
    """Every CodeSystem of the pack, for the server to publish."""
    return [code_system(system) for system in CONCEPTS]
