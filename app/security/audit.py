"""One access -> one FHIR R4 AuditEvent, following IHE Basic Audit Log Patterns (BALP).

A pure builder: no I/O. The server is the only author of these resources; they are stored as ordinary
AuditEvents so that `AuditEvent?patient=Patient/123` answers a citizen's "who has looked at my data".

BALP choices (see the BALP profiles IHE.BasicAudit.PatientRead / PatientQuery / PatientCreate / ...):
- type audit-event-type#rest, subtype restful-interaction#<interaction>, action C/R/U/D/E.
- The user is an agent typed v3-ParticipationType IRCP (reads) or AUT (writes), requestor true; the
  client application an agent typed DCM 110150 "Application" with the BALP client role (DCM 110153
  Source Role ID, or 110152 Destination Role ID for reads, as BALP Read has it); the server an agent
  with the opposite role; the organisations agents typed v3-RoleClass PROV.
- The stated access basis (care-relation, patient-consent, ...) is kept next to the v3 PurposeOfUse in
  the user agent's purposeOfUse, as the BALP Norway profile does with "purpose-local".
- The request id is a BALP "XrequestId" transaction entity.
Deliberate differences: one event per access names every patient touched (BALP asks for one event per
patient on searches), no meta.profile claim, and no network addresses (the record does not carry them).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.fhir.service import fhir_instant, now_ms
from app.resources.no_basis.identifiers import DNR_SYSTEM, FNR_SYSTEM, HPR_SYSTEM, ORGNR_SYSTEM
from app.security.principal import Principal

AUDIT_FLAG_SYSTEM = "http://helsebro.no/fhir/CodeSystem/audit-flag"
SERVICE_SYSTEM = "http://helsebro.no/fhir/CodeSystem/access-service"  # RequestContext.service
ACCESS_BASIS_SYSTEM = "http://helsebro.no/fhir/CodeSystem/access-basis"
# OAuth client ids have no national register; a URN of our own names the namespace.
CLIENT_ID_SYSTEM = "urn:helsebro:client-id"
HP_CATEGORY_SYSTEM = "urn:oid:2.16.578.1.12.4.1.1.9060"  # Volven 9060, health personnel category

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ROLE_CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
SOURCE_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/object-role"
BALP_ENTITY_TYPE_SYSTEM = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"

EMERGENCY_TAG = {
    "system": AUDIT_FLAG_SYSTEM,
    "code": "emergency-access",
    "display": "Akuttilgang – til etterkontroll",
}
# Other follow-up flags (AuditRecord.flags), under the same CodeSystem as emergency access.
IDENTITY_CHANGE = "identity-change"  # a change to an identity the access policy trusts
SELF_DECLARED_CARE = "self-declared-care-relation"  # personnel started a care relation themselves
CARE_RELATION_DELETED = "care-relation-deleted"  # a resource that gave a care relation was deleted
FLAG_DISPLAY = {
    IDENTITY_CHANGE: "Endring av betrodd identitet – til etterkontroll",
    SELF_DECLARED_CARE: "Egenerklært tjenstlig behov – til etterkontroll",
    CARE_RELATION_DELETED: "Slettet grunnlag for tjenstlig behov – til etterkontroll",
}
OUTCOMES = frozenset({"0", "4", "8", "12"})

# interaction -> (restful-interaction code, action). history-type/-system and operations run over
# collections like a search does, so they are E (execute/query) as BALP has for searches.
_INTERACTIONS: dict[str, tuple[str, str]] = {
    "read": ("read", "R"),
    "vread": ("vread", "R"),
    "search": ("search-type", "E"),
    "search-type": ("search-type", "E"),
    "search-system": ("search-system", "E"),
    "create": ("create", "C"),
    "update": ("update", "U"),
    "patch": ("patch", "U"),
    "delete": ("delete", "D"),
    "history-instance": ("history-instance", "R"),
    "history-type": ("history-type", "E"),
    "history-system": ("history-system", "E"),
    "operation": ("operation", "E"),
    "transaction": ("transaction", "E"),
    "batch": ("batch", "E"),
}
_PURPOSE_DISPLAY = {
    "TREAT": "treatment",
    "ETREAT": "Emergency Treatment",
    "PATRQT": "patient requested",
    "HOPERAT": "healthcare operations",
}


@dataclass(frozen=True)
class AuditRecord:
    interaction: str  # a key of _INTERACTIONS, or "$name" for an operation
    outcome: str  # "0" success, "4" minor failure (denied by policy), "8" serious failure
    principal: Principal | None  # None: unauthenticated / anonymous
    patients: tuple[str, ...]  # Patient ids whose data was touched
    entities: tuple[tuple[str, str, int | None], ...] = ()  # (type, id, version) touched
    query: str | None = None  # the raw query string of a search (BALP Query: base64 in entity.query)
    outcome_desc: str | None = None  # why it was denied; never patient data
    emergency: bool = False  # akuttilgang: flagged for follow-up
    emergency_reason: str | None = None
    request_id: str = ""
    flags: tuple[str, ...] = ()  # FLAG_DISPLAY codes: tagged for follow-up
    details: tuple[tuple[str, str], ...] = ()  # (type, text) on the first resource entity: what changed
    recorded: datetime | None = None  # defaults to now (UTC, ms)
    source_observer: str = "helsebro"
    service: tuple[str, str] | None = None  # (code, display): the national service the access is part of


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    return (
        {"system": system, "code": code, "display": display} if display else {"system": system, "code": code}
    )


def _interaction(name: str) -> tuple[str, str]:
    if name.startswith("$"):
        return _INTERACTIONS["operation"]
    try:
        return _INTERACTIONS[name]
    except KeyError:
        raise ValueError(f"unknown audit interaction {name!r}") from None


def _purpose(principal: Principal | None, emergency: bool) -> str | None:
    if emergency:
        return "ETREAT"
    if principal is None:
        return None
    return {"personnel": "TREAT", "citizen": "PATRQT", "system": "HOPERAT"}[principal.kind]


def _person_identifier(pid: str) -> dict[str, str]:
    # A D-nummer is a fødselsnummer with 4 added to the first digit (so it starts with 4-7).
    return {"system": DNR_SYSTEM if pid[:1] in ("4", "5", "6", "7") else FNR_SYSTEM, "value": pid}


def _client_agent(principal: Principal, reads: bool, requestor: bool) -> dict[str, Any]:
    role = ("110152", "Destination Role ID") if reads else ("110153", "Source Role ID")
    agent: dict[str, Any] = {
        "type": {"coding": [_coding(DCM, "110150", "Application")]},
        "role": [{"coding": [_coding(DCM, *role)]}],
        "who": {"identifier": {"system": CLIENT_ID_SYSTEM, "value": principal.client_id}},
        "requestor": requestor,
    }
    if principal.source_system:  # the nhn-source-system header: the EHR product behind the client
        agent["name"] = principal.source_system
    return agent


def _user_agent(principal: Principal | None, writes: bool, purposes: list[dict[str, Any]]) -> dict[str, Any]:
    participation = ("AUT", "author") if writes else ("IRCP", "information recipient")
    agent: dict[str, Any] = {
        "type": {"coding": [_coding(PARTICIPATION_SYSTEM, *participation)]},
        "requestor": True,
    }
    if principal is None:
        agent["who"] = {"display": "anonymous"}
        return agent
    if principal.kind == "personnel" and principal.hpr:
        who: dict[str, Any] = {"identifier": {"system": HPR_SYSTEM, "value": principal.hpr}}
    elif principal.pid:
        who = {"identifier": _person_identifier(principal.pid)}
    else:  # no national identifier: the token's subject within its issuer
        who = {"identifier": {"system": principal.issuer, "value": principal.subject}}
    if principal.name:
        who["display"] = principal.name
        agent["name"] = principal.name
    agent["who"] = who
    agent["altId"] = principal.subject
    if principal.kind == "personnel" and principal.category:
        agent["role"] = [{"coding": [_coding(HP_CATEGORY_SYSTEM, principal.category)]}]
    if principal.token_id:
        agent["policy"] = [principal.token_id]  # BALP: the OAuth token id ties the event to the token
    if purposes:
        agent["purposeOfUse"] = purposes
    return agent


def _organisation_agents(principal: Principal) -> list[dict[str, Any]]:
    agents = []
    for orgnr, level in ((principal.orgnr, "legal entity"), (principal.child_orgnr, "sub-unit")):
        if orgnr:
            agents.append(
                {
                    "type": {"coding": [_coding(ROLE_CLASS_SYSTEM, "PROV", "healthcare provider")]},
                    "role": [{"text": level}],
                    "who": {"identifier": {"system": ORGNR_SYSTEM, "value": orgnr}},
                    "requestor": False,
                }
            )
    return agents


def _agents(record: AuditRecord, action: str, purposes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    principal, reads = record.principal, action == "R"
    agents: list[dict[str, Any]] = []
    if principal is not None and principal.kind == "system":
        system_agent = _client_agent(principal, reads, requestor=True)
        if purposes:
            system_agent["purposeOfUse"] = purposes
        agents.append(system_agent)
    else:
        agents.append(_user_agent(principal, action in ("C", "U", "D"), purposes))
        if principal is not None and principal.client_id:
            agents.append(_client_agent(principal, reads, requestor=False))
    server_role = ("110153", "Source Role ID") if reads else ("110152", "Destination Role ID")
    agents.append(
        {
            "type": {"coding": [_coding(DCM, *server_role)]},
            "who": {"display": record.source_observer},
            "requestor": False,
        }
    )
    if principal is not None:
        agents.extend(_organisation_agents(principal))
    return agents


def _entities(record: AuditRecord, emergency_reason: str | None) -> list[dict[str, Any]]:
    person = _coding(ENTITY_TYPE_SYSTEM, "1", "Person")
    system_object = _coding(ENTITY_TYPE_SYSTEM, "2", "System Object")
    entities: list[dict[str, Any]] = []
    for patient_id in dict.fromkeys(record.patients):
        entity: dict[str, Any] = {
            "what": {"reference": f"Patient/{patient_id}"},
            "type": person,
            "role": _coding(OBJECT_ROLE_SYSTEM, "1", "Patient"),
        }
        if emergency_reason:
            entity["detail"] = [{"type": "emergency-reason", "valueString": emergency_reason}]
        entities.append(entity)
    for index, (res_type, res_id, version) in enumerate(record.entities):
        reference = f"{res_type}/{res_id}" + (f"/_history/{version}" if version is not None else "")
        entity = {
            "what": {"reference": reference},
            "type": system_object,
            "role": _coding(OBJECT_ROLE_SYSTEM, "4", "Domain Resource"),
        }
        if index == 0 and record.details:
            entity["detail"] = [{"type": kind, "valueString": text} for kind, text in record.details]
        entities.append(entity)
    if record.query is not None:
        entities.append(
            {
                "type": system_object,
                "role": _coding(OBJECT_ROLE_SYSTEM, "24", "Query"),
                # base64 keeps exactly what was asked, malformed or malicious patterns included (BALP).
                "query": base64.b64encode(record.query.encode()).decode("ascii"),
            }
        )
    if record.request_id:  # ties the audit row to the access log line of the same request
        entities.append(
            {
                "what": {"identifier": {"value": record.request_id}},
                "type": _coding(BALP_ENTITY_TYPE_SYSTEM, "XrequestId"),
            }
        )
    return entities


def audit_event(record: AuditRecord) -> dict[str, Any]:
    """The AuditEvent (as a FHIR JSON dict, without id and server meta) recording one access."""
    if record.outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {record.outcome!r}")
    subtype, action = _interaction(record.interaction)
    principal = record.principal
    emergency_reason = record.emergency_reason or (principal.emergency_reason if principal else None)
    purpose = _purpose(principal, record.emergency)
    purpose_coding = [_coding(PURPOSE_SYSTEM, purpose, _PURPOSE_DISPLAY[purpose])] if purpose else []
    basis = principal.access_basis if principal else None
    user_purposes: list[dict[str, Any]] = []
    if purpose_coding or basis:
        basis_coding = [_coding(ACCESS_BASIS_SYSTEM, basis)] if basis else []
        user_purposes.append({"coding": purpose_coding + basis_coding})
    event: dict[str, Any] = {"resourceType": "AuditEvent"}
    tags = [dict(EMERGENCY_TAG)] if record.emergency else []
    tags += [_coding(AUDIT_FLAG_SYSTEM, flag, FLAG_DISPLAY[flag]) for flag in dict.fromkeys(record.flags)]
    if tags:
        event["meta"] = {"tag": tags}
    event["type"] = _coding(EVENT_TYPE_SYSTEM, "rest", "Restful Operation")
    event["subtype"] = [_coding(INTERACTION_SYSTEM, subtype, subtype)]
    if record.service is not None:  # after the interaction, which the audit store indexes
        event["subtype"].append(_coding(SERVICE_SYSTEM, *record.service))
    event["action"] = action
    event["recorded"] = fhir_instant(record.recorded or now_ms())
    event["outcome"] = record.outcome
    if record.outcome_desc:
        event["outcomeDesc"] = record.outcome_desc
    if purpose_coding:
        event["purposeOfEvent"] = [{"coding": purpose_coding}]
    event["agent"] = _agents(record, action, user_purposes)
    event["source"] = {
        "site": record.source_observer,
        "observer": {"display": record.source_observer},
        "type": [_coding(SOURCE_TYPE_SYSTEM, "4", "Application Server")],
    }
    entities = _entities(record, emergency_reason if record.emergency else None)
    if entities:
        event["entity"] = entities
    return event


def own_part(event: dict[str, Any], patients: frozenset[str]) -> dict[str, Any]:
    """The event as shown to someone who may see only `patients` (a citizen: their own record, proxies,
    children under 12), when it also concerns others: the other patients' entities are removed, and so is
    the search query, which can name them. The resource read or written stays: an event about several
    patients with one resource is about a resource that concerns the viewer's patient too."""
    kept = []
    for entity in event.get("entity") or []:
        role = (entity.get("role") or {}).get("code")
        if role == "24":
            continue
        if (
            role == "1"
            and (entity.get("what") or {}).get("reference", "").removeprefix("Patient/") not in patients
        ):
            continue
        kept.append(entity)
    shown = {k: v for k, v in event.items() if k != "entity"}
    if kept:
        shown["entity"] = kept
    return shown
