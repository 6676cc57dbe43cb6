"""Epikrise model → a FHIR R4 transaction Bundle (pure): Composition (LOINC 18842-5) with a section per text
part, DocumentReference with the XML, an Encounter per stay, Conditions, MedicationStatements proposed for
the medication list, follow-up Tasks for the GP, lab results (Observations, DiagnosticReports) and
attachments (DocumentReferences) by `results`; the people and organisations as for a referral
(`app.adapters.kith.to_fhir.BundleBuilder`: created once by HER-id/HPR/fødselsnummer ...).

Every resource the message makes carries the identifier `DOCUMENT_SYSTEM|<sender key>/<ServProvId>`, the
same in a new message, its change and its cancellation: each part is PUT by `<key>#<part>`, and
`revoked_entries` revokes what an earlier version made and this one no longer has (see README.md).
"""

from __future__ import annotations

import base64
import html
from typing import Any

from app.adapters.epikrise import results as lab
from app.adapters.epikrise._fhir import CODES, EXT_ITEM, LOINC
from app.adapters.epikrise._fhir import parts as _parts
from app.adapters.epikrise.build import build_epikrise
from app.adapters.epikrise.model import Epikrise, Responsible, ResultEntry, Stay
from app.adapters.epikrise.texts import plain_text
from app.adapters.kith import _fhir_common as f
from app.adapters.kith import _fhir_referral as r
from app.adapters.kith.intake import Anchor
from app.adapters.kith.model import MessageKind
from app.adapters.kith.to_fhir import BundleBuilder, sender_key
from app.adapters.kith.xmlsafe import to_bytes

Json = dict[str, Any]

DISCHARGE_SUMMARY = {"system": LOINC, "code": "18842-5", "display": "Discharge summary"}
DIAGNOSES_SECTION = {"system": LOINC, "code": "11535-2", "display": "Hospital discharge Dx Narrative"}
MEDICATIONS_SECTION = {
    "system": LOINC,
    "code": "10183-2",
    "display": "Hospital discharge medications Narrative",
}
PROPOSAL = {"system": CODES, "code": "medication-proposal", "display": "Legemiddel foreslått i epikrise"}
FOLLOW_UP = {"system": CODES, "code": "follow-up", "display": "Oppfølging etter epikrise"}
DOCUMENT_SYSTEM = f"{f.NS}/kith-epikrise"  # "<sender key>/<ServProvId>" on every resource of one epikrise
EXT_MESSAGE = f"{f.SD}/kith-epikrise"  # the message on the Composition
EXT_REFERRAL = f"{f.SD}/kith-epikrise-referral"  # ServReq answered
EXT_SECTION = f"{f.SD}/kith-epikrise-section"  # which part of which stay a section holds
EXT_STAY = f"{f.SD}/kith-epikrise-stay"  # Event/ServType
EXT_RELATION = f"{f.SD}/kith-epikrise-relation"  # PatRelHCP / RelServProvider: relation + Practitioner
EXT_RECIPIENT = f"{f.SD}/kith-recipient"  # on a Composition written on FHIR: the GP's Organization
XHTML_NS = "http://www.w3.org/1999/xhtml"
FOLLOW_UP_HEADING = "OP"  # Volven 8311 Planer for videre oppfølging
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_CLASS = {"1": "IMP", "2": "SS", "3": "AMB"}  # AdmCat: heldøgn, dagbehandling, poliklinisk
_CLASS_DISPLAY = {"IMP": "inpatient encounter", "SS": "short stay", "AMB": "ambulatory"}
ENCOUNTER_DIAGNOSIS = {
    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
    "code": "encounter-diagnosis",
    "display": "Encounter Diagnosis",
}
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def document_key(e: Epikrise) -> str:
    return f"{sender_key(e.sender)}/{e.key_document_id}"


def narrative(text: str) -> Json:
    """A text part as Narrative: XHTML markup as it is, plain text escaped inside a bare div."""
    div = (
        text
        if text.lstrip().startswith("<")
        else f'<div xmlns="{XHTML_NS}">{html.escape(text, quote=False)}</div>'
    )
    return {"status": "additional", "div": div}


class _Epikrise:
    def __init__(self, e: Epikrise) -> None:
        self.e = e
        self.key = document_key(e)
        self.b = BundleBuilder(self.key)
        self.doc_id = {"system": DOCUMENT_SYSTEM, "value": self.key}
        self.cancel = e.kind is MessageKind.CANCEL
        self.composition = self.b.url("composition")
        self.labs: dict[str, Json | None] = {}  # sender key of a lab (InfItem/Origin) -> its reference

    def own(self, resource: Json) -> Json:
        resource["identifier"] = [dict(self.doc_id)]
        return resource

    def relation(self, rel: Responsible, part: str) -> Json:
        practitioner = self.b.practitioner(rel.professional, part)
        return f.complex_ext(
            EXT_RELATION,
            [
                f.ext("relation", "CodeableConcept", f.cc(rel.relation)),
                f.ext("professional", "Reference", f.reference(practitioner)),
            ],
        )

    def encounter(self, stay: Stay, n: int, patient: str, provider: Json | None, people: list[str]) -> str:
        code = _CLASS.get((stay.category.code if stay.category else None) or "", "IMP")
        out = self.own({"resourceType": "Encounter"})
        if stay.kind is not None:
            out["extension"] = [f.complex_ext(EXT_STAY, _parts(kind=stay.kind))]
        out |= {
            "status": "entered-in-error" if self.cancel else "finished",
            "class": {"system": ACT_CODE, "code": code, "display": _CLASS_DISPLAY[code]},
            "subject": f.reference(patient),
        }
        if stay.category is not None:
            out["type"] = [f.cc(stay.category)]
        if stay.specialty is not None:
            out["serviceType"] = f.cc(stay.specialty)
        if people:
            out["participant"] = [{"individual": f.reference(p)} for p in people]
        if stay.start is not None:
            out["period"] = {"start": f.fhir_datetime(stay.start)}
            if stay.end is not None:
                out["period"]["end"] = f.fhir_datetime(stay.end)
        if stay.outcome is not None:
            out["hospitalization"] = {"dischargeDisposition": f.cc(stay.outcome)}
        if provider is not None:
            out["serviceProvider"] = provider
        return self.b.add(f"encounter-{n}", out)

    def conditions(self, stay: Stay, n: int, patient: str, encounter: str) -> list[str]:
        urls = []
        for i, d in enumerate(stay.diagnoses):
            item = _parts(type=d.type, start=d.start, end=d.end, description=d.description)
            item += [f.complex_ext("modifier", _parts(name=m.name, value=m.value)) for m in d.modifiers]
            status = "entered-in-error" if self.cancel else "confirmed"
            out = self.own({"resourceType": "Condition", "extension": [f.complex_ext(EXT_ITEM, item)]})
            out |= {
                "verificationStatus": {"coding": [{"system": _VERIFICATION, "code": status}]},
                "category": [{"coding": [ENCOUNTER_DIAGNOSIS]}],
                "code": f.cc(d.concept),
                "subject": f.reference(patient),
                "encounter": f.reference(encounter),
                "recordedDate": f.fhir_datetime(self.e.issued),
            }
            if d.start is not None:
                out["onsetDateTime"] = f.fhir_datetime(d.start)
            if d.description is not None:
                out["note"] = [{"text": plain_text(d.description)}]
            urls.append(self.b.add(f"condition-{n}-{i}", out))
        return urls

    def medications(self, stay: Stay, n: int, patient: str, encounter: str, source: Json | None) -> list[str]:
        urls = []
        for i, m in enumerate(stay.medications):
            item = _parts(
                type=m.type,
                status=m.status,
                dosageCoded=m.dosage_coded,
                form=m.form,
                start=m.start,
                end=m.end,
            )
            out = self.own(
                {"resourceType": "MedicationStatement", "extension": [f.complex_ext(EXT_ITEM, item)]}
            )
            out |= {
                "status": "entered-in-error" if self.cancel else "intended",
                "category": {"coding": [PROPOSAL]},
                "medicationCodeableConcept": f.cc(m.drug),
                "subject": f.reference(patient),
                "context": f.reference(encounter),
                "dateAsserted": f.fhir_datetime(self.e.issued),
            }
            if source is not None:
                out["informationSource"] = source
            if m.comment is not None:
                out["note"] = [{"text": m.comment}]
            dosage: Json = {}
            if m.dosage_text is not None:
                dosage["text"] = m.dosage_text
            if m.route is not None:
                dosage["route"] = f.cc(m.route)
            if m.unit_dose is not None:
                dosage["doseAndRate"] = [{"doseQuantity": f.quantity(m.unit_dose)}]
            if dosage:
                out["dosage"] = [dosage]
            urls.append(self.b.add(f"medication-{n}-{i}", out))
        return urls

    def observation(
        self, entry: ResultEntry, part: str, patient: str, encounter: str
    ) -> tuple[str, Json | None]:
        performer = None
        if entry.lab is not None:
            key = sender_key(entry.lab)  # one lab, once, for all its results (an unidentified one per result)
            if key not in self.labs or key == "-:-":
                party = self.b.organisation(entry.lab, f"{part}-lab")
                target = party.organization or (party.roles[-1] if party.roles else None)
                self.labs[key] = f.reference(target) if target else None
            performer = self.labs[key]
        out = self.own(lab.observation(entry, patient, encounter, performer, self.cancel))
        return self.b.add(part, out), performer

    def results(self, stay: Stay, n: int, patient: str, encounter: str) -> list[str]:
        """Observations of the stay's own results, then a DiagnosticReport per group (its Observations)."""
        urls = [
            self.observation(e, f"result-{n}-{i}", patient, encounter)[0] for i, e in enumerate(stay.results)
        ]
        for g, group in enumerate(stay.result_groups):
            made = [
                self.observation(e, f"report-{n}-{g}-result-{i}", patient, encounter)
                for i, e in enumerate(group.results)
            ]
            labs = [performer for _, performer in made if performer is not None]
            out = lab.report(group, patient, encounter, labs, [u for u, _ in made], self.cancel)
            urls.append(self.b.add(f"report-{n}-{g}", self.own(out)))
        return urls

    def attachments(self, patient: str) -> list[str]:
        urls = []
        for i, att in enumerate(self.e.attachments):
            out = self.own(lab.attachment_document(att, patient, self.composition, self.cancel))
            out["identifier"] += lab.refdoc_id(att)
            urls.append(self.b.add(f"attachment-{i}", out))
        return urls

    def follow_up(
        self,
        text: str | None,
        part: str,
        patient: str,
        encounter: str,
        sender: Json | None,
        owner: Json | None,
    ) -> str:
        out = self.own({"resourceType": "Task"})
        out |= {
            "status": "cancelled" if self.cancel else "requested",
            "intent": "order",
            "code": {"coding": [FOLLOW_UP]},
            "description": plain_text(text or "") or "Oppfølging etter epikrise",
            "focus": f.reference(self.composition),
            "for": f.reference(patient),
            "encounter": f.reference(encounter),
            "authoredOn": f.fhir_datetime(self.e.issued),
        }
        if sender is not None:
            out["requester"] = sender
        if owner is not None:
            out["owner"] = owner
        return self.b.add(part, out)


def _section(part: str, stay: int, title: str | None, code: Json | None, **extra: Any) -> Json:
    section: Json = {
        "extension": [
            f.complex_ext(
                EXT_SECTION, [f.ext("part", "Code", part), f.ext("stay", "Integer", stay), *_parts(**extra)]
            )
        ]
    }
    if title is not None:
        section["title"] = title
    if code is not None:
        section["code"] = code
    return section


def epikrise_to_bundle(e: Epikrise) -> tuple[Json, Anchor]:
    """The transaction that stores the epikrise, and what the message's record is about (the Composition)."""
    x = _Epikrise(e)
    b = x.b
    sender = b.organisation(e.sender, "sender")
    receiver = b.organisation(e.receiver, "receiver")
    copies = [b.organisation(c, f"copy-{n}") for n, c in enumerate(e.copy_to)]
    sender_ref = f.reference(sender.organization, e.sender.name) if sender.organization else None
    receiver_ref = f.reference(receiver.organization) if receiver.organization else None
    patient = b.patient(e.patient, sender_ref or {"display": "Avsender"})
    relations = [x.relation(rel, f"patient-relation-{n}") for n, rel in enumerate(e.patient_relations)]
    responsible = [x.relation(rel, f"responsible-{n}") for n, rel in enumerate(e.responsible)]
    people = [ext["extension"][1]["valueReference"]["reference"] for ext in responsible]
    sections: list[Json] = []
    encounters: list[str] = []
    for n, stay in enumerate(e.stays):
        encounter = x.encounter(stay, n, patient, sender_ref, people)
        encounters.append(encounter)
        conditions = x.conditions(stay, n, patient, encounter)
        if conditions:
            diagnoses = _section("diagnoses", n, "Diagnoser", {"coding": [DIAGNOSES_SECTION]})
            diagnoses["entry"] = [f.reference(u) for u in conditions]
            sections.append(diagnoses)
        for t in stay.texts:
            s = _section(
                "item",
                n,
                t.type.display,
                {"coding": [f.coding(t.type)]},
                type=t.type,
                comment=t.comment,
                start=t.start,
                end=t.end,
            )
            if t.description is not None:
                s["text"] = narrative(t.description)
            sections.append(s)
        medications = x.medications(stay, n, patient, encounter, sender_ref)
        if medications:
            meds = _section("medications", n, "Legemidler", {"coding": [MEDICATIONS_SECTION]})
            meds["entry"] = [f.reference(u) for u in medications]
            sections.append(meds)
        found = x.results(stay, n, patient, encounter)
        if found:
            results = _section("results", n, "Laboratoriesvar", {"coding": [lab.RESULTS_SECTION]})
            results["entry"] = [f.reference(u) for u in found]
            sections.append(results)
        for i, part in enumerate(stay.comments):
            heading = part.heading
            s = _section(
                "comment",
                n,
                heading.display if heading else None,
                {"coding": [f.coding(heading)]} if heading else None,
                heading=heading,
            )
            if part.text is not None:
                s["text"] = narrative(part.text)
            if heading is not None and heading.code == FOLLOW_UP_HEADING:
                task = x.follow_up(
                    part.text, f"follow-up-{n}-{i}", patient, encounter, sender_ref, receiver_ref
                )
                s["entry"] = [f.reference(task)]
            sections.append(s)
    for precaution in e.precautions:
        s = _section("precaution", -1, "Forholdsregler", None)
        s["text"] = narrative(precaution)
        sections.append(s)
    documents = x.attachments(patient)
    if documents:
        s = _section("attachments", -1, "Vedlegg", {"coding": [lab.ATTACHMENTS_SECTION]})
        s["entry"] = [f.reference(u) for u in documents]
        sections.append(s)
    composition = _composition(
        x, sender, receiver, copies, patient, encounters, relations, responsible, sections
    )
    b.entries.append(
        {
            "fullUrl": x.composition,
            "resource": composition,
            "request": {"method": "PUT", "url": f"Composition?{f.search_identifier(x.doc_id)}"},
        }
    )
    b.add("document", _document(x, patient, encounters, sender_ref))
    anchor = Anchor(
        x.composition,
        f.reference(patient),
        sender_ref,
        (receiver_ref,) if receiver_ref is not None else (),
    )
    return {"resourceType": "Bundle", "type": "transaction", "entry": b.entries}, anchor


def _message_ext(e: Epikrise, encounters: list[str]) -> Json:
    stays = [f.ext("encounter", "Reference", f.reference(u)) for u in encounters]
    return f.complex_ext(
        EXT_MESSAGE,
        [
            f.ext("version", "Code", e.version.value),
            f.ext("kind", "Code", e.kind.value),
            *_parts(
                msgId=e.msg_id,
                messageType=e.msg_type,
                generated=e.generated,
                processingStatus=e.processing_status,
                reportStatus=e.report_status,
                documentId=e.document_id,
                description=e.description,
            ),
            *stays,
        ],
    )


def _referral_ext(ref: Any) -> Json:
    parts = _parts(kind=ref.kind, issued=ref.issued, contentType=ref.content_type, id=ref.id)
    parts += [f.ext("diagnosis", "CodeableConcept", f.cc(d)) for d in ref.diagnoses]
    return f.complex_ext(EXT_REFERRAL, parts)


def _composition(
    x: _Epikrise,
    sender: r.Party,
    receiver: r.Party,
    copies: list[r.Party],
    patient: str,
    encounters: list[str],
    relations: list[Json],
    responsible: list[Json],
    sections: list[Json],
) -> Json:
    e = x.e
    extensions = [_message_ext(e, encounters), r._party_ext(sender), r._party_ext(receiver)]
    extensions += [r._party_ext(c) for c in copies]
    extensions += [_referral_ext(ref) for ref in e.referrals]
    extensions += [
        {**rel, "extension": [*rel["extension"], f.ext("role", "Code", "patient")]} for rel in relations
    ]
    extensions += [
        {**rel, "extension": [*rel["extension"], f.ext("role", "Code", "responsible")]} for rel in responsible
    ]
    if x.cancel:
        status = "entered-in-error"
    elif e.report_status is not None and e.report_status.code not in (None, "F"):
        status = "preliminary"
    else:
        status = "amended" if e.kind is MessageKind.CHANGE else "final"
    out: Json = {
        "resourceType": "Composition",
        "extension": extensions,
        "identifier": dict(x.doc_id),
        "status": status,
        "type": {"coding": [DISCHARGE_SUMMARY]},
        "subject": f.reference(patient),
        "date": f.fhir_datetime(e.issued),
        "title": e.description or "Epikrise",
    }
    if encounters:
        out["encounter"] = f.reference(encounters[0])
    authors = [f.reference(sender.organization)] if sender.organization else []
    authors += [f.reference(u) for u in sender.roles]
    authors += [rel["extension"][1]["valueReference"] for rel in responsible]
    out["author"] = authors or [{"display": e.sender.name or "Avsender"}]
    if e.approved is not None:
        attester: Json = {"mode": "legal", "time": f.fhir_datetime(e.approved)}
        if responsible:
            attester["party"] = responsible[0]["extension"][1]["valueReference"]
        out["attester"] = [attester]
    if sender.organization:
        out["custodian"] = f.reference(sender.organization)
    if sections:
        out["section"] = sections
    return out


def _document(x: _Epikrise, patient: str, encounters: list[str], sender: Json | None) -> Json:
    e = x.e
    xml = e.source if e.source is not None else to_bytes(build_epikrise(e))
    out = x.own({"resourceType": "DocumentReference"})
    out |= {
        "status": "entered-in-error" if x.cancel else "current",
        "type": {"coding": [DISCHARGE_SUMMARY]},
        "subject": f.reference(patient),
        "date": f.fhir_datetime(e.generated),
        "content": [
            {
                "attachment": {
                    "contentType": "application/xml",
                    "data": base64.b64encode(xml).decode("ascii"),
                    "title": f"Epikrise {e.version.value}",
                    "creation": f.fhir_datetime(e.issued),
                }
            }
        ],
        "context": {"related": [f.reference(x.composition)]},
    }
    if sender is not None:
        out["author"] = [sender]
        out["custodian"] = sender
    if encounters:
        out["context"]["encounter"] = [f.reference(u) for u in encounters]
    return out


_RESULTS = ("Observation", "DiagnosticReport")
REVOKABLE = ("Encounter", "Condition", "MedicationStatement", "Task", "DocumentReference", *_RESULTS)


def revoke(resource: Json) -> Json:
    """A stored part of an epikrise that a change no longer has, or a cancellation withdraws: entered in
    error (a Task: cancelled, unless already done)."""
    out = dict(resource)
    res_type = out["resourceType"]
    if res_type == "Condition":
        out["verificationStatus"] = {"coding": [{"system": _VERIFICATION, "code": "entered-in-error"}]}
        out.pop("clinicalStatus", None)
    elif res_type == "Task":
        if out.get("status") not in ("completed", "failed", "cancelled"):
            out["status"] = "cancelled"
    else:
        out["status"] = "entered-in-error"
    return out


def part_values(bundle: Json) -> set[str]:
    """The `<key>#<part>` identifiers of the parts a bundle writes."""
    return {
        i["value"]
        for entry in bundle["entry"]
        for i in entry["resource"].get("identifier", [])
        if isinstance(entry["resource"].get("identifier"), list)
        if i.get("system") == f.DOCUMENT_PART_SYSTEM
    }
