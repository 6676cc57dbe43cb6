"""FHIR R4 referral (ServiceRequest + Task and what they reference) -> KITH referral model, so that
henvisning.serialize_henvisning can write Henvisning 1.1 or 2.0 for a receiver that only takes XML.

`resolve(reference)` returns the referenced resource (or None): the caller decides whether it reads a
bundle, a cache or the server. Resources written by to_fhir.py come back exactly (model -> FHIR -> model is
the identity); a referral created natively in FHIR is read from the standard elements, with the message
metadata (msg id, type, version) defaulted for a new Henvisning 2.0.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import _fhir_referral as r
from app.adapters.kith import _fhir_v2_parts as v2
from app.adapters.kith.model import (
    AssessmentDate,
    AssociatedUnit,
    Attachment,
    CancerPathway,
    ClinicalItem,
    Coded,
    Diagnosis,
    Forwarding,
    HealthProfessional,
    HenvisningVersion,
    InterpreterNeed,
    LabResult,
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
    ResultKind,
    RightsAssessment,
    TextSection,
)
from app.adapters.kith.to_fhir import (
    EXT_CARE_FUNCTION,
    EXT_COMPRESSION,
    EXT_FILE_REFERENCE,
    EXT_MINOR_BIRTH_YEAR,
    EXT_NATIONALITY,
    EXT_NEXT_OF_KIN,
    EXT_NOTE,
    EXT_ROLE_TO_PATIENT,
)

__all__ = ["Resolve", "referral_from_bundle", "referral_from_resources"]

Json = f.Json
Resolve = Callable[[str], Json | None]

_UNKNOWN_SEX = Coded(code="0", system=f.SEX_SYSTEM, display="Ikke kjent")
_NEW_CONDITION = Coded(code="HENVISNING_NYTILSTAND", display="Henvisning ny tilstand")
_FORWARDED = Coded(code="HENVISNING_VIDERE", display="Viderehenvisning")


# --- extension parts ----------------------------------------------------------------------------------------


def _part(extension: Any, name: str, value_type: str) -> Any:
    return f.ext_value(extension, name, value_type)


def _parts(extension: Any, name: str) -> list[Json]:
    return f.exts(extension, name)


def _str(extension: Any, name: str) -> str | None:
    value = _part(extension, name, "String")
    return value if isinstance(value, str) else None


def _bool(extension: Any, name: str) -> bool | None:
    value = _part(extension, name, "Boolean")
    return value if isinstance(value, bool) else None


def _coded(extension: Any, name: str) -> Coded | None:
    return f.opt_coded(_part(extension, name, "CodeableConcept"))


def _ref(extension: Any, name: str) -> str | None:
    return f.ref_of(_part(extension, name, "Reference"))


def _first(resource: Json | None, key: str) -> Any:
    values = resource.get(key) if resource else None
    return values[0] if isinstance(values, list) and values else None


# --- people and organisations -------------------------------------------------------------------------------


def _professional(practitioner: Json | None) -> HealthProfessional:
    if practitioner is None:
        return HealthProfessional()
    qualification = _first(practitioner, "qualification")
    return HealthProfessional(
        name=f.from_human_name(_first(practitioner, "name")),
        idents=f.idents(practitioner.get("identifier")),
        type=f.opt_coded(qualification.get("code")) if isinstance(qualification, dict) else None,
        role_to_patient=f.opt_coded(f.ext_value(practitioner, EXT_ROLE_TO_PATIENT, "CodeableConcept")),
        address=f.from_address(_first(practitioner, "address")),
        telecoms=tuple(f.from_contact_point(t) for t in practitioner.get("telecom", [])),
    )


def _role_professional(role: Json | None, resolve: Resolve) -> HealthProfessional:
    if role is None:
        return HealthProfessional()
    if role.get("resourceType") == "Practitioner":
        return _professional(role)
    practitioner = f.ref_of(role.get("practitioner"))
    return _professional(resolve(practitioner) if practitioner else None)


def _organisation(org: Json, sub: Organisation | None, person: HealthProfessional | None) -> Organisation:
    return Organisation(
        name=org.get("name"),
        idents=f.idents(org.get("identifier")),
        type=f.opt_coded(_first(org, "type")),
        address=f.from_address(_first(org, "address")),
        telecoms=tuple(f.from_contact_point(t) for t in org.get("telecom", [])),
        sub_organisation=sub,
        professional=person,
    )


def _party(org_ref: str | None, role_refs: list[str], resolve: Resolve) -> Organisation:
    """Organisation tree from the deepest Organization up its partOf chain; each PractitionerRole's
    professional goes to the level its `organization` names."""
    chain: list[tuple[str, Json]] = []
    ref = org_ref
    while ref is not None and len(chain) < 10 and (org := resolve(ref)) is not None:
        chain.append((ref, org))
        ref = f.ref_of(org.get("partOf"))
    roles = [(ref, resolve(ref)) for ref in role_refs]
    by_level: dict[str | None, HealthProfessional] = {}
    for _, role in roles:
        level = f.ref_of(role.get("organization")) if role else None
        by_level.setdefault(level, _role_professional(role, resolve))
    if not chain:
        return Organisation(professional=next(iter(by_level.values()), None))
    result: Organisation | None = None
    for level_ref, org in chain:  # deepest first, so each level wraps the one below it
        result = _organisation(org, result, by_level.get(level_ref))
    assert result is not None
    return result


def _party_from(sr: Json, role: str, resolve: Resolve) -> Organisation | None:
    for extension in f.exts(sr, r.EXT_PARTY):
        if _part(extension, "role", "Code") == role:
            refs = [f.ref_of(e.get("valueReference")) for e in _parts(extension, "professional")]
            return _party(_ref(extension, "organization"), [x for x in refs if x], resolve)
    return None


def _native_party(reference: Any, resolve: Resolve) -> Organisation:
    """A party named by a plain Reference (requester, performer) of a referral made in FHIR."""
    ref = f.ref_of(reference)
    resource = resolve(ref) if ref else None
    if resource is None:
        return Organisation(name=reference.get("display") if isinstance(reference, dict) else None)
    if resource.get("resourceType") == "Organization":
        return _party(ref, [], resolve)
    org = (
        f.ref_of(resource.get("organization")) if resource.get("resourceType") == "PractitionerRole" else None
    )
    return _party(org, [ref] if ref else [], resolve)


# --- the referral's parts -----------------------------------------------------------------------------------


def _patient(resource: Json | None, info: Json | None, native: bool) -> Patient:
    p = resource or {}
    sex = f.sex_of(p, _UNKNOWN_SEX)
    nationality = next(iter(f.exts(p, EXT_NATIONALITY)), None)
    marital = _coded(info, "maritalStatus")
    if marital is None and native:
        marital = f.opt_coded(p.get("maritalStatus"))
    return Patient(
        idents=f.idents(p.get("identifier")),
        name=f.from_human_name(_first(p, "name")),
        birth_date=f.from_fhir_date(p.get("birthDate")),
        death_date=f.from_fhir_date(p.get("deceasedDateTime")),
        sex=sex,
        nationality=_coded(nationality, "code"),
        address=f.from_address(_first(p, "address")),
        telecoms=tuple(f.from_contact_point(t) for t in p.get("telecom", [])),
        marital_status=marital,
        lives_alone=_bool(info, "livesAlone"),
        language=_coded(info, "language"),
        receives_municipal_services=_bool(info, "receivesMunicipalServices"),
        additional_info_note=_str(info, "note"),
    )


def _related_person(rp: Json) -> RelatedPerson:
    name, idents, telecoms, address = f.from_person_fields(rp)
    return RelatedPerson(
        name=name,
        relationship=f.opt_coded(_first(rp, "relationship")),
        care_function=f.opt_coded(f.ext_value(rp, EXT_CARE_FUNCTION, "CodeableConcept")),
        next_of_kin=f.ext_value(rp, EXT_NEXT_OF_KIN, "Boolean"),
        minor_birth_year=f.ext_value(rp, EXT_MINOR_BIRTH_YEAR, "Integer"),
        idents=idents,
        address=address,
        telecoms=telecoms,
        note=f.ext_value(rp, EXT_NOTE, "String"),
    )


def _attachment(doc: Json) -> Attachment:
    content = _first(doc, "content") or {}
    a = content.get("attachment") or {}
    ids = [i.get("value") for i in doc.get("identifier", []) if i.get("system") == f.REFDOC_ID_SYSTEM]
    return Attachment(
        msg_type=f.coded(doc.get("type")),
        mime_type=a.get("contentType"),
        description=a.get("title"),
        issue_date=f.from_fhir_datetime(a.get("creation")),
        id=ids[0] if ids else None,
        compression=f.opt_coded(f.ext_value(a, EXT_COMPRESSION, "CodeableConcept")),
        content_base64=a.get("data"),
        file_reference=f.ext_value(a, EXT_FILE_REFERENCE, "String"),
    )


def _precaution(e: Json) -> Precaution:
    if "valueString" in e:
        return Precaution(text=e["valueString"])
    return Precaution(
        text=_str(e, "text") or "",
        start=f.from_fhir_datetime(_part(e, "start", "DateTime")),
        end=f.from_fhir_datetime(_part(e, "end", "DateTime")),
    )


def _quantity(extension: Any, name: str) -> Quantity | None:
    q = _part(extension, name, "Quantity")
    return None if q is None else Quantity(value=q.get("value"), unit=q.get("unit"))


def _result(e: Json) -> LabResult:
    text = next(iter(_parts(e, "text")), None)
    return LabResult(
        investigation=_coded(e, "investigation") or Coded(),
        kind=ResultKind(_part(e, "kind", "Code")),
        specs=tuple(f.coded(s.get("valueCodeableConcept")) for s in _parts(e, "spec")),
        value=_quantity(e, "value"),
        comparator=_coded(e, "comparator"),
        low=_quantity(e, "low"),
        high=_quantity(e, "high"),
        date_value=f.from_fhir_datetime(_part(e, "date", "DateTime")),
        text=None
        if text is None
        else TextSection(
            heading=_coded(text, "heading"),
            text=_str(text, "text"),
            codes=tuple(f.coded(c.get("valueCodeableConcept")) for c in _parts(text, "code")),
        ),
        service_type=_coded(e, "serviceType"),
        investigation_date=f.from_fhir_datetime(_part(e, "investigated", "DateTime")),
        comment=_str(e, "comment"),
        deviation=_coded(e, "deviation"),
    )


def _clinical_item(e: Json) -> ClinicalItem:
    medication = None
    med = next(iter(_parts(e, "medication")), None)
    if med is not None:
        dose = _part(med, "unitDose", "Quantity")
        medication = Medication(
            drug=_coded(med, "drug") or Coded(),
            status=_coded(med, "status"),
            unit_dose=None if dose is None else Quantity(value=dose.get("value"), unit=dose.get("unit")),
            dosage_text=_str(med, "dosageText"),
            comment=_str(med, "comment"),
        )
    result = next(iter(_parts(e, "result")), None)
    return ClinicalItem(
        result=None if result is None else _result(result),
        type=_coded(e, "type") or Coded(),
        description=_str(e, "description"),
        comment=_str(e, "comment"),
        medication=medication,
        start=f.from_fhir_datetime(_part(e, "start", "DateTime")),
        end=f.from_fhir_datetime(_part(e, "end", "DateTime")),
    )


def _sections(notes: Any) -> tuple[tuple[TextSection, ...], tuple[TextSection, ...]]:
    reasons: list[TextSection] = []
    comments: list[TextSection] = []
    for note in notes if isinstance(notes, list) else ():
        e = next(iter(f.exts(note, r.EXT_TEXT_SECTION)), None)
        text: str | None = note.get("text")
        if _bool(e, "noText"):
            text = None
        elif _bool(e, "emptyText"):
            text = ""
        elif (kept := _str(e, "text")) is not None:
            text = kept
        codes = tuple(f.coded(c.get("valueCodeableConcept")) for c in _parts(e, "code"))
        section = TextSection(heading=_coded(e, "heading"), text=text, codes=codes)
        (reasons if _part(e, "kind", "Code") == "reason" else comments).append(section)
    return tuple(reasons), tuple(comments)


def _forwarding(e: Json | None) -> Forwarding | None:
    if e is None:
        return None
    dates = tuple(
        AssessmentDate(type=_coded(d, "type") or Coded(), date=day)
        for d in _parts(e, "date")
        if (day := f.from_fhir_date(_part(d, "date", "Date"))) is not None
    )
    a = next(iter(_parts(e, "assessment")), None)
    assessment = None
    if a is not None:
        assessment = RightsAssessment(
            right_to_care=bool(_bool(a, "rightToCare")),
            outcome=_coded(a, "outcome") or Coded(),
            pathway_id=_str(a, "pathwayId") or "",
            free_hospital_choice=_bool(a, "freeHospitalChoice"),
            waiting_end_code=_coded(a, "waitingEndCode"),
        )
    pathways = tuple(
        CancerPathway(code=_coded(p, "code") or Coded(), note=_str(p, "note")) for p in _parts(e, "pathway")
    )
    return Forwarding(dates=dates, assessment=assessment, pathways=pathways)


def _interpreter(e: Json) -> InterpreterNeed:
    person = _part(e, "person", "HumanName")
    preferred = _part(e, "preferredInterpreter", "HumanName")
    return InterpreterNeed(
        language=_coded(e, "language"),
        person=None if person is None else f.from_human_name(person),
        hearing_impaired=_bool(e, "hearingImpaired"),
        visually_impaired=_bool(e, "visuallyImpaired"),
        note=_str(e, "note"),
        preferred_interpreter=None if preferred is None else f.from_human_name(preferred),
        ended=f.from_fhir_date(_part(e, "ended", "Date")),
    )


def _requested_service(sr: Json) -> RequestedService | None:
    priority = f.kept_coded(sr.get("_priority"))
    rs = RequestedService(
        service_type=f.opt_coded(sr.get("code")),
        priority=priority,
        requested_date=f.from_fhir_date(sr.get("occurrenceDateTime")),
        comment=f.ext_value(sr, r.EXT_SERVICE_COMMENT, "String"),
    )
    return None if rs == RequestedService() else rs


def _professionals(sr: Json, resolve: Resolve) -> tuple[RelatedProfessional, ...]:
    out = []
    for e in f.exts(sr, r.EXT_RELATED_PROFESSIONAL):
        ref = _ref(e, "professional")
        approved = _part(e, "approvedDate", "Date")
        professional = _role_professional(resolve(ref) if ref else None, resolve)
        if _bool(e, "ownDetails"):
            professional = dataclasses.replace(
                professional,
                idents=f.idents([p.get("valueIdentifier") for p in _parts(e, "identifier")]),
                type=_coded(e, "type"),
                role_to_patient=_coded(e, "roleToPatient"),
                telecoms=tuple(f.from_contact_point(p["valueContactPoint"]) for p in _parts(e, "telecom")),
                address=f.from_address(_part(e, "address", "Address")),
            )
        out.append(
            RelatedProfessional(
                role=ProfessionalRole(_part(e, "role", "Code")),
                professional=professional,
                relation=_coded(e, "relation"),
                approved_date=f.from_fhir_date(approved),
                note=_str(e, "note"),
            )
        )
    return tuple(out)


def referral_from_resources(service_request: Json, task: Json | None, resolve: Resolve) -> Referral:
    """Rebuild the referral of a ServiceRequest (and its Task, if known); `resolve` fetches references."""
    sr = service_request
    message = next(iter(f.exts(sr, r.EXT_MESSAGE)), None)
    native = message is None
    if native:  # made in FHIR: metadata for a new outgoing Henvisning 2.0
        message = {}
    forwarding = _forwarding(next(iter(f.exts(sr, r.EXT_FORWARDING)), None))
    kind = _part(message, "kind", "Code") or ("C" if sr.get("status") == "revoked" else "N")
    generated = f.from_fhir_datetime(_part(message, "generated", "DateTime"))
    issued = f.from_fhir_datetime(sr.get("authoredOn")) or datetime.now(UTC)
    parent, conversation = _str(message, "parentId"), _str(message, "conversationId")
    subject = f.ref_of(sr.get("subject"))
    supporting = [res for ref in map(f.ref_of, sr.get("supportingInfo", [])) if ref and (res := resolve(ref))]
    content_type = next(iter(f.exts(sr, r.EXT_CONTENT_TYPE)), None)
    reasons, comments = _sections(sr.get("note"))
    sender = _party_from(sr, "sender", resolve) or _native_party(sr.get("requester"), resolve)
    receiver = _party_from(sr, "receiver", resolve) or _native_party(_first(sr, "performer"), resolve)
    forwarded = task is not None and "videresendt" in str(task.get("businessStatus"))
    return Referral(
        version=HenvisningVersion(_part(message, "version", "Code") or HenvisningVersion.V2_0.value),
        kind=MessageKind(kind),
        msg_id=_str(message, "msgId") or str(uuid.uuid4()),
        message_type=_coded(message, "messageType") or (_FORWARDED if forwarded else _NEW_CONDITION),
        generated=generated or issued,
        document_id=_str(message, "documentId") or str(sr.get("id") or uuid.uuid4()),
        issued=issued,
        patient=_patient(
            resolve(subject) if subject else None, next(iter(f.exts(sr, r.EXT_PATIENT_INFO)), None), native
        ),
        sender=sender,
        receiver=receiver,
        requested_service=_requested_service(sr),
        content_type=_coded(content_type, "type"),
        content_type_note=_str(content_type, "note"),
        request_comment=f.ext_value(sr, r.EXT_REQUEST_COMMENT, "String"),
        payment_category=f.opt_coded(f.ext_value(sr, r.EXT_PAYMENT_CATEGORY, "CodeableConcept")),
        basis_for_health_services=f.opt_coded(f.ext_value(sr, r.EXT_BASIS_FOR_SERVICES, "CodeableConcept")),
        reasons=reasons,
        diagnoses=tuple(Diagnosis(concept=f.coded(c)) for c in sr.get("reasonCode", [])),
        clinical_items=tuple(_clinical_item(e) for e in f.exts(sr, r.EXT_CLINICAL_ITEM)),
        comments=comments,
        precautions=tuple(_precaution(e) for e in f.exts(sr, r.EXT_PRECAUTION)),
        related_persons=tuple(
            _related_person(x)
            for x in supporting
            if x.get("resourceType") == "RelatedPerson" and not v2.is_contact_person(x)
        ),
        contact_persons=tuple(v2.contact_person_from(x) for x in supporting if v2.is_contact_person(x)),
        associated_units=tuple(
            AssociatedUnit(organisation=_party(ref, [], resolve), note=note)
            for ref, note in v2.unit_references(sr)
        ),
        sent_documents=v2.sent_documents(sr),
        medication_review=v2.medication_review(sr),
        consents=v2.consents(sr),
        professionals=_professionals(sr, resolve),
        interpreter_needs=tuple(_interpreter(e) for e in f.exts(sr, r.EXT_INTERPRETER)),
        attachments=tuple(_attachment(x) for x in supporting if x.get("resourceType") == "DocumentReference"),
        original=None if parent is None or conversation is None else OriginalReference(parent, conversation),
        forwarding=forwarding,
        processing_status=_coded(message, "processingStatus"),
    )


def bundle_resolver(bundle: Json) -> Resolve:
    """Look references up in a bundle: by fullUrl, and by "Type/id" for resources that have an id."""
    index: dict[str, Json] = {}
    for entry in bundle.get("entry", []):
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        if isinstance(entry.get("fullUrl"), str):
            index[entry["fullUrl"]] = resource
        if resource.get("id"):
            index[f"{resource.get('resourceType')}/{resource['id']}"] = resource
    return index.get


def referral_from_bundle(bundle: Json) -> Referral:
    """The referral of a bundle holding its ServiceRequest (e.g. one made by referral_to_bundle)."""
    resources = [e.get("resource") for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]
    sr = next((x for x in resources if x.get("resourceType") == "ServiceRequest"), None)
    if sr is None:
        raise ValueError("the bundle holds no ServiceRequest")
    task = next((x for x in resources if x.get("resourceType") == "Task"), None)
    return referral_from_resources(sr, task, bundle_resolver(bundle))
