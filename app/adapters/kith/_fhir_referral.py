"""The ServiceRequest and Task of a KITH referral, and the extensions that carry what FHIR R4 has no element
for. Built by to_fhir.py; the extension URLs and their parts are read back by from_fhir.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from app.adapters.kith import _fhir_common as f
from app.adapters.kith.model import (
    AssessmentDate,
    ClinicalItem,
    Coded,
    Forwarding,
    HealthProfessional,
    LabResult,
    MessageKind,
    Precaution,
    Quantity,
    Referral,
    RequestedService,
    TextSection,
)
from app.resources.referrals.codes import (
    DECISION_SYSTEM,
    FORWARDING_EXTENSION,
    REFERRAL_CATEGORY,
    REFERRAL_STATUS_SYSTEM,
    TASK_CODE_SYSTEM,
    BusinessStatus,
    Decision,
    Output,
    TaskCode,
    codeable,
)
from app.resources.referrals.taskjson import set_output

Json = f.Json

EXT_MESSAGE = f"{f.SD}/kith-message"  # MsgHead / Message metadata, so the XML can be rebuilt
EXT_PARTY = f"{f.SD}/kith-party"  # sender / receiver: deepest Organization + PractitionerRoles
EXT_RELATED_PROFESSIONAL = f"{f.SD}/kith-related-professional"  # PatRelHCP / Kontaktperson / AnsvarForRapport
EXT_CLINICAL_ITEM = f"{f.SD}/kith-clinical-item"  # InfItem (sykehistorie, funn, legemidler, cave ...)
EXT_TEXT_SECTION = f"{f.SD}/kith-text-section"  # on a note: ReasonAsText / Comment heading and codes
EXT_PRECAUTION = f"{f.SD}/kith-precaution"  # PatientPrecaution
EXT_CONTENT_TYPE = f"{f.SD}/kith-content-type"  # MsgDescr / TypeInnholdIMelding
EXT_REQUEST_COMMENT = f"{f.SD}/kith-request-comment"  # ReqComment
EXT_PAYMENT_CATEGORY = f"{f.SD}/kith-payment-category"  # PaymentCat
EXT_BASIS_FOR_SERVICES = f"{f.SD}/kith-basis-for-health-services"  # BasisForHealthServices
EXT_SERVICE_COMMENT = f"{f.SD}/kith-requested-service-comment"  # ReqServ/Comment
EXT_PATIENT_INFO = f"{f.SD}/kith-patient-info"  # TilleggsopplysningPasient, as sent with this referral
EXT_INTERPRETER = f"{f.SD}/kith-interpreter-need"  # AssistertKommunikasjon
EXT_FORWARDING = f"{f.SD}/kith-forwarding"  # VurderingAvHenvisning + Pakkeforlop, exactly as sent

# ReqServ/Priority -> ServiceRequest.priority, by the words of the display (1.x numeric, 2.0 letter codes)
_PRIORITY_WORDS = (
    ("yeblikkelig", "stat"),
    ("haster", "urgent"),
    ("ordinær", "routine"),
    ("elektiv", "routine"),
)


@dataclass
class Party:
    role: str  # sender | receiver
    organization: str | None = None  # fullUrl of the deepest Organization (the department, if any)
    roles: list[str] = field(default_factory=list)  # fullUrls of PractitionerRoles, top level first


@dataclass
class Links:
    patient: str
    sender: Party
    receiver: Party
    professionals: list[str]  # Practitioner per Referral.professionals entry
    supporting: list[str]  # RelatedPersons, contact persons, associated units, then DocumentReferences
    service_request: str


def fhir_priority(priority: Coded) -> str | None:
    words = f"{priority.code or ''} {priority.display or ''}".lower()
    return next((p for word, p in _PRIORITY_WORDS if word in words), None)


def _s(url: str, value: str | None) -> list[Json]:
    return [] if value is None else [f.ext(url, "String", value)]


def _b(url: str, value: bool | None) -> list[Json]:
    return [] if value is None else [f.ext(url, "Boolean", value)]


def _c(url: str, value: Coded | None) -> list[Json]:
    return [] if value is None else [f.ext(url, "CodeableConcept", f.cc(value))]


def _d(url: str, value: date | None) -> list[Json]:
    return [] if value is None else [f.ext(url, "Date", value.isoformat())]


def message_ext(ref: Referral) -> Json:
    parts = [
        f.ext("version", "Code", ref.version.value),
        f.ext("kind", "Code", ref.kind.value),
        f.ext("msgId", "String", ref.msg_id),
        f.ext("messageType", "CodeableConcept", f.cc(ref.message_type)),
        f.ext("generated", "DateTime", f.fhir_datetime(ref.generated)),
        f.ext("documentId", "String", ref.document_id),
        *_c("processingStatus", ref.processing_status),
    ]
    if ref.original is not None:
        parts += [
            f.ext("parentId", "String", ref.original.parent_id),
            f.ext("conversationId", "String", ref.original.conversation_id),
        ]
    return f.complex_ext(EXT_MESSAGE, parts)


def _party_ext(party: Party) -> Json:
    parts = [f.ext("role", "Code", party.role)]
    if party.organization is not None:
        parts.append(f.ext("organization", "Reference", f.reference(party.organization)))
    parts += [f.ext("professional", "Reference", f.reference(url)) for url in party.roles]
    return f.complex_ext(EXT_PARTY, parts)


def _item_ext(item: ClinicalItem) -> Json:
    parts = [
        f.ext("type", "CodeableConcept", f.cc(item.type)),
        *_s("description", item.description),
        *_s("comment", item.comment),
    ]
    if item.start is not None:
        parts.append(f.ext("start", "DateTime", f.fhir_datetime(item.start)))
    if item.end is not None:
        parts.append(f.ext("end", "DateTime", f.fhir_datetime(item.end)))
    m = item.medication
    if m is not None:
        med = [f.ext("drug", "CodeableConcept", f.cc(m.drug)), *_c("status", m.status)]
        if m.unit_dose is not None:
            q = {k: v for k, v in (("value", m.unit_dose.value), ("unit", m.unit_dose.unit)) if v is not None}
            med.append(f.ext("unitDose", "Quantity", q))
        med += _s("dosageText", m.dosage_text) + _s("comment", m.comment)
        parts.append(f.complex_ext("medication", med))
    if item.result is not None:
        parts.append(_result_ext(item.result))
    return f.complex_ext(EXT_CLINICAL_ITEM, parts)


def _precaution_ext(p: Precaution) -> Json:
    """`kith-precaution`: a string, or with a period the parts `text`, `start`, `end`."""
    if p.start is None and p.end is None:
        return f.ext(EXT_PRECAUTION, "String", p.text)
    return f.complex_ext(
        EXT_PRECAUTION, [f.ext("text", "String", p.text), *_dt("start", p.start), *_dt("end", p.end)]
    )


def _q(url: str, value: Quantity | None) -> list[Json]:
    if value is None:
        return []
    q = {k: v for k, v in (("value", value.value), ("unit", value.unit)) if v is not None}
    return [f.ext(url, "Quantity", q)]


def _dt(url: str, value: datetime | None) -> list[Json]:
    return [] if value is None else [f.ext(url, "DateTime", f.fhir_datetime(value))]


def _result_ext(r: LabResult) -> Json:
    """ResultItem: `kith-clinical-item.result` (kind = the XML element of the value's form)."""
    parts = [
        f.ext("kind", "Code", r.kind.value),
        f.ext("investigation", "CodeableConcept", f.cc(r.investigation)),
        *[f.ext("spec", "CodeableConcept", f.cc(c)) for c in r.specs],
        *_q("value", r.value),
        *_c("comparator", r.comparator),
        *_q("low", r.low),
        *_q("high", r.high),
        *_dt("date", r.date_value),
    ]
    if r.text is not None:
        text = [*_c("heading", r.text.heading), *_s("text", r.text.text)]
        text += [f.ext("code", "CodeableConcept", f.cc(c)) for c in r.text.codes]
        parts.append(f.complex_ext("text", text))
    parts += _c("serviceType", r.service_type) + _dt("investigated", r.investigation_date)
    parts += _s("comment", r.comment) + _c("deviation", r.deviation)
    return f.complex_ext("result", parts)


def _note(section: TextSection, kind: str) -> Json:
    parts = [f.ext("kind", "Code", kind), *_c("heading", section.heading)]
    parts += [f.ext("code", "CodeableConcept", f.cc(c)) for c in section.codes]
    text = section.text
    if text is None or not text.strip():  # Annotation.text is required and may not be blank
        if text is None or text == "":
            parts.append(f.ext("noText" if text is None else "emptyText", "Boolean", True))
        else:
            parts.append(f.ext("text", "String", text))
        text = (section.heading.display if section.heading else None) or "-"
    return {"extension": [f.complex_ext(EXT_TEXT_SECTION, parts)], "text": text}


def _forwarding_ext(fwd: Forwarding) -> Json:
    parts = [
        f.complex_ext(
            "date",
            [f.ext("type", "CodeableConcept", f.cc(d.type)), f.ext("date", "Date", d.date.isoformat())],
        )
        for d in fwd.dates
    ]
    a = fwd.assessment
    if a is not None:
        assessment = [
            f.ext("rightToCare", "Boolean", a.right_to_care),
            f.ext("outcome", "CodeableConcept", f.cc(a.outcome)),
            f.ext("pathwayId", "String", a.pathway_id),
            *_b("freeHospitalChoice", a.free_hospital_choice),
            *_c("waitingEndCode", a.waiting_end_code),
        ]
        parts.append(f.complex_ext("assessment", assessment))
    for pathway in fwd.pathways:
        parts.append(
            f.complex_ext(
                "pathway", [f.ext("code", "CodeableConcept", f.cc(pathway.code)), *_s("note", pathway.note)]
            )
        )
    return f.complex_ext(EXT_FORWARDING, parts)


def _patient_info_ext(ref: Referral) -> Json | None:
    p = ref.patient
    parts = _c("maritalStatus", p.marital_status) + _b("livesAlone", p.lives_alone)
    parts += _c("language", p.language) + _b("receivesMunicipalServices", p.receives_municipal_services)
    parts += _s("note", p.additional_info_note)
    return f.complex_ext(EXT_PATIENT_INFO, parts) if parts else None


def _mention(hp: HealthProfessional) -> list[Json]:
    """What this mention of a person says (ids, category, role to the patient, contact): the Practitioner is shared
    with the person's other mentions and is created once, so these ride on the referral."""
    parts = [f.ext("ownDetails", "Boolean", True)]
    parts += [f.ext("identifier", "Identifier", f.identifier(i)) for i in hp.idents]
    parts += _c("type", hp.type) + _c("roleToPatient", hp.role_to_patient)
    parts += [f.ext("telecom", "ContactPoint", f.contact_point(t)) for t in hp.telecoms]
    if hp.address is not None:
        parts.append(f.ext("address", "Address", f.address(hp.address)))
    return parts


def _extensions(ref: Referral, links: Links) -> list[Json]:
    out = [message_ext(ref), _party_ext(links.sender), _party_ext(links.receiver)]
    for rp, url in zip(ref.professionals, links.professionals, strict=True):
        parts = [f.ext("role", "Code", rp.role.value), f.ext("professional", "Reference", f.reference(url))]
        parts += _c("relation", rp.relation) + _d("approvedDate", rp.approved_date) + _s("note", rp.note)
        parts += _mention(rp.professional)
        out.append(f.complex_ext(EXT_RELATED_PROFESSIONAL, parts))
    if ref.content_type is not None or ref.content_type_note is not None:
        parts = _c("type", ref.content_type) + _s("note", ref.content_type_note)
        out.append(f.complex_ext(EXT_CONTENT_TYPE, parts))
    out += _s(EXT_REQUEST_COMMENT, ref.request_comment)
    out += _c(EXT_PAYMENT_CATEGORY, ref.payment_category)
    out += _c(EXT_BASIS_FOR_SERVICES, ref.basis_for_health_services)
    out += _s(EXT_SERVICE_COMMENT, ref.requested_service.comment if ref.requested_service else None)
    out += [_precaution_ext(p) for p in ref.precautions]
    out += [_item_ext(item) for item in ref.clinical_items]
    if (info := _patient_info_ext(ref)) is not None:
        out.append(info)
    for need in ref.interpreter_needs:
        parts = _c("language", need.language)
        if need.person is not None and (name := f.human_name(need.person)) is not None:
            parts.append(f.ext("person", "HumanName", name))
        parts += _b("hearingImpaired", need.hearing_impaired) + _b("visuallyImpaired", need.visually_impaired)
        if need.preferred_interpreter is not None and (tolk := f.human_name(need.preferred_interpreter)):
            parts.append(f.ext("preferredInterpreter", "HumanName", tolk))
        parts += _d("ended", need.ended)
        out.append(f.complex_ext(EXT_INTERPRETER, parts + _s("note", need.note)))
    if ref.forwarding is not None:
        out.append(_forwarding_ext(ref.forwarding))
    return out


def requester(ref: Referral, links: Links) -> Json | None:
    """The referrer's PractitionerRole; else the referring professional; else the sending organisation."""
    if links.sender.roles:
        return f.reference(links.sender.roles[0])
    for rp, url in zip(ref.professionals, links.professionals, strict=True):
        if rp.relation is not None and rp.relation.code == "HHE":
            return f.reference(url)
    return None if links.sender.organization is None else f.reference(links.sender.organization)


def performer(links: Links) -> Json | None:
    """The receiving department (or organisation), or the receiving professional."""
    url = links.receiver.organization or next(iter(links.receiver.roles), None)
    return None if url is None else f.reference(url)


def service_request(ref: Referral, identifier: Json, links: Links) -> Json:
    rs = ref.requested_service or RequestedService()
    out: Json = {
        "resourceType": "ServiceRequest",
        "extension": _extensions(ref, links),
        "identifier": [identifier],
        "status": "revoked" if ref.kind is MessageKind.CANCEL else "active",
        "intent": "order",
        "category": [{"coding": [REFERRAL_CATEGORY]}],
    }
    if rs.priority is not None:
        if (priority := fhir_priority(rs.priority)) is not None:
            out["priority"] = priority
        out["_priority"] = {"extension": [f.kept_code(rs.priority)]}
    if rs.service_type is not None:
        out["code"] = f.cc(rs.service_type)
    out["subject"] = f.reference(links.patient)
    if rs.requested_date is not None:
        out["occurrenceDateTime"] = rs.requested_date.isoformat()
    out["authoredOn"] = f.fhir_datetime(ref.issued)
    if (who := requester(ref, links)) is not None:
        out["requester"] = who
    if (whom := performer(links)) is not None:
        out["performer"] = [whom]
    if ref.diagnoses:
        out["reasonCode"] = [f.cc(d.concept) for d in ref.diagnoses]  # the first is the main diagnosis
    if links.supporting:
        out["supportingInfo"] = [f.reference(url) for url in links.supporting]
    notes = [_note(s, "reason") for s in ref.reasons] + [_note(s, "comment") for s in ref.comments]
    if notes:
        out["note"] = notes
    return out


OID_DATE_TYPE = "2.16.578.1.12.4.1.1.9147"  # Volven 9147 Type dato (viderehenvisning)
_VOLVEN_9147 = {"1": "received", "4": "waiting-ended"}  # 1 ansiennitetsdato, 4 ventetid sluttdato


def date_role(d: AssessmentDate) -> str | None:
    """received (the seniority date) / waiting-ended / assessed / deadline: from the Volven 9147 code, else
    from the code or display of a local code list."""
    if d.type.system == OID_DATE_TYPE and d.type.code in _VOLVEN_9147:
        return _VOLVEN_9147[d.type.code]
    words = f"{d.type.code or ''} {d.type.display or ''}".lower()
    roles = (("frist", "deadline"), ("vurder", "assessed"), ("mott", "received"), ("ansiennitet", "received"))
    for word, role in (*roles, ("ventetid slutt", "waiting-ended")):
        if word in words:
            return role
    return None


def _record_forwarding(task: Json, ref: Referral, links: Links) -> None:
    """A forwarded referral in the workflow's own terms (workflow.forward): businessStatus videresendt,
    the forwarding organisation, the first receipt (ansiennitet), the decision and the deadline."""
    fwd = ref.forwarding
    assert fwd is not None
    task["businessStatus"] = codeable(REFERRAL_STATUS_SYSTEM, BusinessStatus.VIDERESENDT)
    record: list[Json] = []
    if links.sender.organization is not None:
        record.append(f.ext("from", "Reference", f.reference(links.sender.organization)))
    if (to := performer(links)) is not None:
        record.append(f.ext("to", "Reference", to))
    record.append(f.ext("time", "DateTime", f.fhir_datetime(ref.issued)))
    task["extension"].append({"url": FORWARDING_EXTENSION, "extension": record})
    dates = {role: d.date for d in fwd.dates if (role := date_role(d)) is not None}
    if "received" in dates:
        set_output(task, Output.FIRST_RECEIVED, "DateTime", dates["received"].isoformat())
    if "waiting-ended" in dates:
        set_output(task, Output.WAITING_ENDED, "Date", dates["waiting-ended"].isoformat())
    if "assessed" in dates:
        set_output(task, Output.ASSESSED, "DateTime", dates["assessed"].isoformat())
    if fwd.assessment is not None:
        decision = Decision.RIGHT if fwd.assessment.right_to_care else Decision.NOT_ENTITLED
        set_output(task, Output.DECISION, "CodeableConcept", codeable(DECISION_SYSTEM, decision))
    if "deadline" in dates:
        set_output(task, Output.CARE_DEADLINE, "Date", dates["deadline"].isoformat())
        if fwd.assessment is not None and fwd.assessment.right_to_care:
            task["restriction"] = {"period": {"end": dates["deadline"].isoformat()}}


def task(ref: Referral, identifier: Json, links: Links) -> Json:
    out: Json = {
        "resourceType": "Task",
        "extension": [message_ext(ref)],
        "identifier": [identifier],
        "status": "requested",
        "intent": "order",
        "code": codeable(TASK_CODE_SYSTEM, TaskCode.REFERRAL),
    }
    rs = ref.requested_service
    if rs is not None and rs.priority is not None and (priority := fhir_priority(rs.priority)):
        out["priority"] = priority
    out["focus"] = f.reference(links.service_request)
    out["for"] = f.reference(links.patient)
    out["authoredOn"] = f.fhir_datetime(ref.issued)
    if (who := requester(ref, links)) is not None:
        out["requester"] = who
    if (owner := performer(links)) is not None:
        out["owner"] = owner
    if ref.forwarding is not None and (ref.forwarding.assessment is not None or ref.forwarding.dates):
        _record_forwarding(out, ref, links)
    return out


def _op(kind: str, path: str, name: str | None = None, **value: object) -> Json:
    parts: list[Json] = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    if name is not None:
        parts.append({"name": "name", "valueString": name})
    for key, v in value.items():
        parts.append({"name": "value", key: v})
    return {"name": "operation", "part": parts}


_CANCEL_OWN = (EXT_MESSAGE, EXT_REQUEST_COMMENT)  # what a cancellation itself says: its message, its reason


def cancelled_service_request(stored: Json, message: Json) -> Json:
    """The ServiceRequest a cancellation leaves: the stored one, clinical content and all, with status revoked
    and the cancellation's own message data (`kith-message`, kind C) and reason (`kith-request-comment`).
    A cancellation often repeats little or none of the referral; the content stays current, not only in the
    history."""
    out = {k: v for k, v in stored.items() if k not in ("id", "meta", "text")}
    kept = [e for e in stored.get("extension", []) if e.get("url") not in _CANCEL_OWN]
    own = [e for e in message.get("extension", []) if e.get("url") in _CANCEL_OWN]
    out["extension"] = own + kept
    out["status"] = "revoked"
    return out


def cancel_patch(ref: Referral) -> Json:
    """FHIRPath Patch for a cancellation: what workflow.cancel writes, leaving the rest of the Task alone."""
    reason = ref.request_comment or "Trukket av henviser"
    reason_part = {"name": "value", "part": [{"name": "text", "valueString": reason}]}
    add_reason = _op("add", "Task", "statusReason")
    add_reason["part"].append(reason_part)
    return {
        "resourceType": "Parameters",
        "parameter": [
            _op("replace", "Task.status", valueCode="cancelled"),
            _op("delete", "Task.statusReason"),
            add_reason,
            _op("delete", "Task.lastModified"),
            _op("add", "Task", "lastModified", valueDateTime=f.fhir_datetime(ref.generated)),
        ],
    }
