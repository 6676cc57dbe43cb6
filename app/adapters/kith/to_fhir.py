"""KITH referral (model.Referral) -> FHIR R4 transaction Bundle: pure, deterministic, idempotent on the server.

Each resource is written so that posting the same message twice, or a change after the new referral,
never makes copies:

| resource | request | key |
| --- | --- | --- |
| Organization (sender, receiver, each department with `partOf`) | POST ifNoneExist | HER-id, else orgnr, else RESH |
| Practitioner (every health professional of the message) | POST ifNoneExist | HPR, else HER-id |
| PractitionerRole (professional in an organisation, e.g. the referrer) | POST ifNoneExist | the person's HER-id |
| Patient | POST ifNoneExist | FNR, DNR, H-nummer (`identifier:of-type`), FHN, DUF |
| RelatedPerson, DocumentReference, and the above without a key | PUT `?identifier=` | kith-document-part |
| ServiceRequest | PUT `ServiceRequest?identifier=` | kith-document-id |
| Task (new, change) | POST ifNoneExist (never resets a workflow under way) | kith-document-id |
| Task (cancel) | PATCH `Task?identifier=` (FHIRPath Patch: status cancelled) | kith-document-id |

Shared resources (Organization, Practitioner, PractitionerRole, Patient) are created only when absent, so
what the message says about them is what a new one holds; facts that belong to this referral (patient
additional information, interpreter needs, related professionals ...) ride on the ServiceRequest. Full URLs
are `urn:uuid:` values derived from the referral key, so the same message gives the same Bundle.
"""

from __future__ import annotations

import uuid

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import _fhir_referral as r
from app.adapters.kith import _fhir_v2_parts as v2
from app.adapters.kith.model import (
    Attachment,
    HealthProfessional,
    Ident,
    InterpreterNeed,
    MessageKind,
    Organisation,
    Patient,
    Referral,
    RelatedPerson,
    same_person,
)
from app.resources.no_basis.identifiers import (
    DNR_SYSTEM,
    DUF_SYSTEM,
    FHN_SYSTEM,
    FNR_SYSTEM,
    HERID_SYSTEM,
    HNR_TYPE_CODE,
    HPR_SYSTEM,
    ID_TYPE_SYSTEM,
    ORGNR_SYSTEM,
    RESH_SYSTEM,
)

__all__ = [
    "BundleBuilder",
    "attachment_json",
    "referral_identifier",
    "referral_key",
    "referral_to_bundle",
    "sender_key",
]

Json = f.Json
_NAMESPACE = uuid.UUID("5b0f3f5e-8a59-4d43-9a39-6c1b7ad1e0a4")  # fullUrls: uuid5(namespace, key#part)
_PATIENT_KEYS = (FNR_SYSTEM, DNR_SYSTEM, FHN_SYSTEM, DUF_SYSTEM)
EXT_NATIONALITY = "http://hl7.org/fhir/StructureDefinition/patient-nationality"
EXT_INTERPRETER_REQUIRED = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"
EXT_ROLE_TO_PATIENT = f"{f.SD}/kith-role-to-patient"
EXT_CARE_FUNCTION = f"{f.SD}/kith-care-function"
EXT_NEXT_OF_KIN = f"{f.SD}/kith-next-of-kin"
EXT_MINOR_BIRTH_YEAR = f"{f.SD}/kith-minor-birth-year"  # FodselsarMindrearigParorende
EXT_NOTE = f.EXT_NOTE
EXT_COMPRESSION = f"{f.SD}/kith-compression"
EXT_FILE_REFERENCE = f"{f.SD}/kith-file-reference"


def sender_key(sender: Organisation) -> str:
    """ "<id type>:<id>" of a message's sender: its HER-id where it has one (the organisation, a
    department, then the person), else organisation number, RESH or HPR; "-:-" when it has none."""
    org: Organisation | None = sender
    candidates: list[Ident] = []
    while org is not None:
        candidates += [i for code in ("HER", "ENH", "RSH") for i in org.idents if i.type.code == code]
        org = org.sub_organisation
    person = sender.professional
    if person is not None:
        candidates += [i for code in ("HER", "HPR") for i in person.idents if i.type.code == code]
    return next((f"{i.type.code}:{i.id}" for i in candidates), "-:-")


def referral_key(ref: Referral) -> str:
    """ "<sender key>/<document id>": a document id is unique per sender, and a change or a cancellation
    repeats it."""
    return f"{sender_key(ref.sender)}/{ref.document_id}"


def referral_identifier(ref: Referral) -> Json:
    """ServiceRequest.identifier and Task.identifier of the referral."""
    return {"system": f.DOCUMENT_ID_SYSTEM, "value": referral_key(ref)}


class BundleBuilder:
    """The entries of a transaction that stores one message: shared resources (organisations, people, the
    patient) created once by their natural key, the message's own parts kept up to date by `<key>#<part>`.
    `ref` is the referral, when the message is one (its referrer's ids are merged into the sender's person)."""

    def __init__(self, key: str, ref: Referral | None = None) -> None:
        self.ref = ref
        self.key = key
        self.entries: list[Json] = []
        self.sr_url = self.url("service-request")

    def url(self, part: str) -> str:
        return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{self.key}#{part}')}"

    def add(self, part: str, resource: Json, keys: tuple[str, ...] = ()) -> str:
        """Add a resource, created once by its first natural key, else kept up to date by its part id."""
        full_url = self.url(part)
        key = f.first_identifier(resource.get("identifier", []), keys) if keys else None
        if key is None and keys and resource["resourceType"] == "Patient":
            key = next((i for i in resource.get("identifier", []) if _is_hnr(i)), None)
        if key is not None:
            request = {
                "method": "POST",
                "url": resource["resourceType"],
                "ifNoneExist": f.search_identifier(key),
            }
        else:
            part_id = f.part_identifier(self.key, part)
            resource.setdefault("identifier", []).append(part_id)
            url = f"{resource['resourceType']}?{f.search_identifier(part_id)}"
            request = {"method": "PUT", "url": url}
        self.entries.append({"fullUrl": full_url, "resource": resource, "request": request})
        return full_url

    # --- organisations and people -------------------------------------------------------------------------

    def organisation(self, org: Organisation, role: str) -> r.Party:
        """The Organizations of one party (top first, each department partOf its parent) and a
        PractitionerRole for each professional in them."""
        party = r.Party(role=role)
        parent: str | None = None
        depth = 0
        level: Organisation | None = org
        while level is not None:
            org_url: str | None = None
            if level.name is not None or level.idents or parent is not None:
                org_url = self.add(
                    f"{role}-organisation-{depth}", self.organization(level, parent), _ORG_KEYS
                )
                party.organization = org_url
            if level.professional is not None:
                derived = self.derived_idents(level.professional) if role == "sender" else ()
                practitioner = self.practitioner(level.professional, f"{role}-professional-{depth}", derived)
                party.roles.append(
                    self.practitioner_role(level.professional, practitioner, org_url, f"{role}-role-{depth}")
                )
            parent, level, depth = org_url or parent, level.sub_organisation, depth + 1
        return party

    def organization(self, org: Organisation, parent: str | None) -> Json:
        out: Json = {"resourceType": "Organization"}
        if org.idents:
            out["identifier"] = [f.identifier(i) for i in org.idents]
        if org.type is not None:
            out["type"] = [f.cc(org.type)]
        if org.name is not None:
            out["name"] = org.name
        if org.telecoms:
            out["telecom"] = [f.contact_point(t) for t in org.telecoms]
        if org.address is not None:
            out["address"] = [f.address(org.address)]
        if parent is not None:
            out["partOf"] = f.reference(parent)
        return out

    def derived_idents(self, person: HealthProfessional) -> tuple[Ident, ...]:
        """Ids of the referrer found elsewhere in the message (1.x: the HPR under PatRelHCP HHE)."""
        referrer = None if self.ref is None else self.ref.referrer
        if self.ref is None or referrer is None or person is not self.ref.sender.professional:
            return ()
        if not same_person(referrer, person):  # signed by one doctor, sent by another
            return ()
        return tuple(i for i in referrer.idents if i not in person.idents)

    def practitioner(self, hp: HealthProfessional, part: str, derived: tuple[Ident, ...] = ()) -> str:
        out: Json = {"resourceType": "Practitioner"}
        if hp.role_to_patient is not None:
            out["extension"] = [f.ext(EXT_ROLE_TO_PATIENT, "CodeableConcept", f.cc(hp.role_to_patient))]
        identifiers = [f.identifier(i) for i in hp.idents]
        for i in derived:
            identifiers.append({**f.identifier(i), "extension": [f.ext(f.EXT_DERIVED, "Boolean", True)]})
        if identifiers:
            out["identifier"] = identifiers
        if (name := f.human_name(hp.name)) is not None:
            out["name"] = [name]
        if hp.telecoms:
            out["telecom"] = [f.contact_point(t) for t in hp.telecoms]
        if hp.address is not None:
            out["address"] = [f.address(hp.address)]
        if hp.type is not None:
            out["qualification"] = [{"code": f.cc(hp.type)}]  # helsepersonellkategori
        return self.add(part, out, (HPR_SYSTEM, HERID_SYSTEM))

    def practitioner_role(
        self, hp: HealthProfessional, practitioner: str, organization: str | None, part: str
    ) -> str:
        # In Norway a person's HER-id names the person in one organisation: exactly a PractitionerRole.
        out: Json = {"resourceType": "PractitionerRole", "active": True}
        her = [f.identifier(i) for i in hp.idents if i.type.code == "HER"]
        if her:
            out["identifier"] = her
        out["practitioner"] = f.reference(practitioner, _display(hp))
        if organization is not None:
            out["organization"] = f.reference(organization)
        if hp.type is not None:
            out["code"] = [f.cc(hp.type)]
        return self.add(part, out, (HERID_SYSTEM,))

    # --- patient and the referral's own resources -----------------------------------------------------------

    def patient(self, p: Patient, assigner: Json, needs: tuple[InterpreterNeed, ...] = ()) -> str:
        out: Json = {"resourceType": "Patient"}
        extensions: list[Json] = []
        if p.nationality is not None:
            code = f.ext("code", "CodeableConcept", f.cc(p.nationality))
            extensions.append({"url": EXT_NATIONALITY, "extension": [code]})
        if any(n.language is not None for n in needs):
            extensions.append(f.ext(EXT_INTERPRETER_REQUIRED, "Boolean", True))
        if extensions:
            out["extension"] = extensions
        out["identifier"] = [f.identifier(i, assigner) for i in p.idents]
        if (name := f.human_name(p.name)) is not None:
            out["name"] = [name]
        if p.telecoms:
            out["telecom"] = [f.contact_point(t) for t in p.telecoms]
        out.update(f.gender_fields(p.sex))
        if p.birth_date is not None:
            out["birthDate"] = p.birth_date.isoformat()
        if p.death_date is not None:
            out["deceasedDateTime"] = p.death_date.isoformat()
        if p.address is not None:
            out["address"] = [f.address(p.address)]
        if p.marital_status is not None:
            out["maritalStatus"] = f.cc(p.marital_status)
        languages = [p.language] + [n.language for n in needs]
        communication = [{"language": f.cc(lang)} for lang in dict.fromkeys(languages) if lang is not None]
        if communication:
            out["communication"] = communication
        return self.add("patient", out, _PATIENT_KEYS)

    def related_person(self, rp: RelatedPerson, patient: str, n: int) -> str:
        out: Json = {"resourceType": "RelatedPerson"}
        extensions = []
        if rp.care_function is not None:
            extensions.append(f.ext(EXT_CARE_FUNCTION, "CodeableConcept", f.cc(rp.care_function)))
        if rp.next_of_kin is not None:
            extensions.append(f.ext(EXT_NEXT_OF_KIN, "Boolean", rp.next_of_kin))
        if rp.minor_birth_year is not None:
            extensions.append(f.ext(EXT_MINOR_BIRTH_YEAR, "Integer", rp.minor_birth_year))
        if rp.note is not None:
            extensions.append(f.ext(EXT_NOTE, "String", rp.note))
        if extensions:
            out["extension"] = extensions
        out |= f.person_fields(rp.name, rp.idents, rp.telecoms, rp.address)
        out["patient"] = f.reference(patient)
        if rp.relationship is not None:
            out["relationship"] = [f.cc(rp.relationship)]
        return self.add(f"related-person-{n}", out)

    def document(self, att: Attachment, patient: str, n: int) -> str:
        attachment = attachment_json(att)
        out: Json = {"resourceType": "DocumentReference"}
        if att.id is not None:
            out["identifier"] = [{"system": f.REFDOC_ID_SYSTEM, "value": att.id}]
        out |= {
            "status": "current",
            "type": f.cc(att.msg_type),
            "subject": f.reference(patient),
            "content": [{"attachment": attachment or {"extension": [f.ext(f.EXT_DAR, "Code", "unknown")]}}],
            "context": {"related": [f.reference(self.sr_url)]},
        }
        return self.add(f"attachment-{n}", out)


_ORG_KEYS = (HERID_SYSTEM, ORGNR_SYSTEM, RESH_SYSTEM)
_Bundle = BundleBuilder


def attachment_json(att: Attachment) -> Json:
    """A KITH RefDoc attachment as a FHIR Attachment (without its document type and RefDoc id)."""
    attachment: Json = {}
    extensions = []
    if att.compression is not None:
        extensions.append(f.ext(EXT_COMPRESSION, "CodeableConcept", f.cc(att.compression)))
    if att.file_reference is not None:
        extensions.append(f.ext(EXT_FILE_REFERENCE, "String", att.file_reference))
    if extensions:
        attachment["extension"] = extensions
    if att.mime_type is not None:
        attachment["contentType"] = att.mime_type
    if att.content_base64 is not None:
        attachment["data"] = att.content_base64  # as received: decoding is the reader's choice
    if att.description is not None:
        attachment["title"] = att.description
    if att.issue_date is not None:
        attachment["creation"] = f.fhir_datetime(att.issue_date)
    return attachment


def _is_hnr(identifier: Json) -> bool:
    codings = identifier.get("type", {}).get("coding", [])
    return "system" not in identifier and any(
        c.get("system") == ID_TYPE_SYSTEM and c.get("code") == HNR_TYPE_CODE for c in codings
    )


def _display(hp: HealthProfessional) -> str | None:
    n = hp.name
    return n.text or " ".join(p for p in (n.given, n.middle, n.family) if p) or None


def referral_to_bundle(ref: Referral) -> Json:
    """A FHIR R4 transaction Bundle that stores the referral (see the module docstring for the requests)."""
    b = BundleBuilder(referral_key(ref), ref)
    sender = b.organisation(ref.sender, "sender")
    receiver = b.organisation(ref.receiver, "receiver")
    assigner_url = sender.organization
    assigner = f.reference(assigner_url, ref.sender.name) if assigner_url else {"display": "Avsender"}
    patient = b.patient(ref.patient, assigner, ref.interpreter_needs)
    professionals = [
        b.practitioner(p.professional, f"professional-{n}") for n, p in enumerate(ref.professionals)
    ]
    supporting = [b.related_person(rp, patient, n) for n, rp in enumerate(ref.related_persons)]
    supporting += [
        b.add(f"contact-person-{n}", v2.contact_person(cp, patient))
        for n, cp in enumerate(ref.contact_persons)
    ]
    units = [
        b.organisation(u.organisation, f"associated-unit-{n}").organization
        for n, u in enumerate(ref.associated_units)
    ]
    supporting += [url for url in units if url is not None]
    supporting += [b.document(a, patient, n) for n, a in enumerate(ref.attachments)]
    links = r.Links(
        patient=patient,
        sender=sender,
        receiver=receiver,
        professionals=professionals,
        supporting=supporting,
        service_request=b.sr_url,
    )
    identifier = referral_identifier(ref)
    service_request = r.service_request(ref, identifier, links)
    service_request["extension"] += v2.extensions(ref, units)
    b.entries.append(
        {
            "fullUrl": b.sr_url,
            "resource": service_request,
            "request": {"method": "PUT", "url": f"ServiceRequest?{f.search_identifier(identifier)}"},
        }
    )
    if ref.kind is MessageKind.CANCEL:
        # a PUT would replace the workflow's Task (owner, outputs ...): only the status changes
        url = f"Task?{f.search_identifier(identifier)}"
        b.entries.append({"resource": r.cancel_patch(ref), "request": {"method": "PATCH", "url": url}})
    else:
        task = r.task(ref, identifier, links)
        b.entries.append(
            {
                "fullUrl": b.url("task"),
                "resource": task,
                "request": {"method": "POST", "url": "Task", "ifNoneExist": f.search_identifier(identifier)},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": b.entries}
