"""PLO reports (Innleggelsesrapport, Utskrivningsrapport, Helseopplysninger til lege, Helseopplysninger,
Medisinske opplysninger, Orientering om tjenestetilbud; 1.5, 1.6, 2.0) -> FHIR R4: pure.

A report is one document, kept by `plo-document` = `<sender key>/<conversation id>` (RefToConversation:
the Ny's MsgId), so its Endring (M) and Kansellering (C) update the same resources:

| report part | FHIR |
| --- | --- |
| the document | `Composition` (status final / amended / entered-in-error) with one `section` per top-level part (heading + text), and `DocumentReference` (current / entered-in-error) with the text as attachment, `context.related` the Composition |
| InfoMedisinskDiagnose/MedisinskDiagnose | `Condition` (encounter-diagnosis; Hoveddiagnose in `ext:plo-main-diagnosis`) |
| KartlagtFunksjon (IPLOS Funksjonsvariabel, Vurdering) | `Observation` (category `survey`, `valueInteger`) |
| Legemiddelinfo (ForenkletForskrivning) | `MedicationStatement`s (`report_medications`) in a snapshot `List` of the sender's (not the medication list) + one `Task` `plo-task|medication-reconciliation` proposing them: `$reconcile` with `source` = that List |
| EksisterendeTjeneste / TjenesteBehov | `ServiceRequest` (intent `plan` for a service given, `proposal` for one needed; `report_services`) |
| AnsvarForRapport | Practitioner, `Composition.attester` (professional, GodkjentDato) |
| AnsvarForRapport, KontaktpersonHelsepersonell, TilknyttetEnhet, ParorendeForesatt | one `CareTeam` (Practitioner / Organization / RelatedPerson participants, role = RoleToPatient / Slektskap, part in `ext:plo-contact-part`; `report_contacts`) |
| every other element of a part | `Composition.section.extension` `ext:plo-field` (`fields.py`), so the report can be written again (`report_from_fhir`) |
"""

from __future__ import annotations

import base64
import html
from dataclasses import replace
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith.intake import Anchor, update_entry
from app.adapters.kith.to_fhir import _ORG_KEYS, sender_key
from app.adapters.plo import clock, fields
from app.adapters.plo._common import CS, NS, Parties, message_ext, parties, party_exts
from app.adapters.plo.model import Family, Kind, PloMessage
from app.adapters.plo.report_contacts import participant
from app.adapters.plo.report_medications import statement
from app.adapters.plo.report_services import service_request
from app.resources.no_basis.identifiers import has_valid_orgnr

Json = dict[str, Any]
DOCUMENT_SYSTEM = f"{NS}/plo-document"  # <sender key>/<conversation id>
FAMILY_SYSTEM = f"{CS}/plo-message"
EXT_MAIN_DIAGNOSIS = f"{f.SD}/plo-main-diagnosis"
SNAPSHOT = {
    "system": f"{CS}/plo-list",
    "code": "reported-medication",
    "display": "Legemidler fra PLO-melding",
}
RECONCILIATION = {
    "system": clock.TASK_SYSTEM,
    "code": "medication-reconciliation",
    "display": "Legemiddelavstemming",
}
_STATUS = {Kind.NEW: "final", Kind.CHANGE: "amended", Kind.CANCEL: "entered-in-error"}
CONTACT_SECTIONS = (
    "TilknyttetEnhet",
    "KontaktpersonHelsepersonell",
    "ParorendeForesatt",
    "AnsvarForRapport",
)
_SECTION_OF = {"diagnoses": "InfoMedisinskDiagnose", "functions": "InfoKartleggingFunksjonsniva"}


SECTION_SYSTEM = f"{CS}/plo-section"  # the part's element name
# the LOINC section codes of the parts that have one (as C-CDA's sections use them)
SECTION_LOINC = {
    "Legemiddelinfo": ("10160-0", "History of Medication use Narrative"),
    "InfoMedisinskDiagnose": ("11450-4", "Problem list - Reported"),
    "InfoKartleggingFunksjonsniva": ("47420-5", "Functional status assessment note"),
    "OpplysningerOmHjelpemidler": ("46264-8", "History of medical device use"),
    "OpplysningOpphold": ("46240-8", "History of Hospitalizations+Outpatient visits Narrative"),
}


def section_code(element: str, title: str) -> Json:
    """A section's code: the part's element (`plo-section`), and its LOINC section code when it has one;
    `text` is the element, as the intake wrote it before."""
    codings = [{"system": SECTION_SYSTEM, "code": element, "display": title}]
    if element in SECTION_LOINC:
        code, display = SECTION_LOINC[element]
        codings.append({"system": "http://loinc.org", "code": code, "display": display})
    return {"coding": codings, "text": element}


def section_element(section: Json) -> str:
    code = section.get("code") or {}
    own = next((c.get("code") for c in code.get("coding", []) if c.get("system") == SECTION_SYSTEM), None)
    return str(own or code.get("text") or "")


def document_key(msg: PloMessage) -> str:
    return f"{sender_key(msg.sender)}/{msg.conversation_id}"


def family_coding(family: Family) -> Json:
    return {"system": FAMILY_SYSTEM, "code": family.value, "display": family.display}


def _div(text: str) -> str:
    return f'<div xmlns="http://www.w3.org/1999/xhtml"><pre>{html.escape(text)}</pre></div>'


class _Report:
    def __init__(self, msg: PloMessage) -> None:
        self.msg = msg
        self.key = document_key(msg)
        self.p: Parties = parties(msg, self.key)
        self.cancel = msg.kind is Kind.CANCEL

    def put(self, part: str, resource: Json) -> str:
        """A part of the document, kept by `<document key>#<part>` (so M and C find it)."""
        return self.p.b.add(part, resource)

    def clinical(self, status_ok: str, error: str = "entered-in-error") -> str:
        return error if self.cancel else status_ok


def _conditions(r: _Report) -> list[str]:
    urls = []
    for n, d in enumerate(r.msg.diagnoses):
        cond: Json = {"resourceType": "Condition"}
        if d.main is not None:
            cond["extension"] = [f.ext(EXT_MAIN_DIAGNOSIS, "Boolean", d.main)]
        if not r.cancel:
            cond["clinicalStatus"] = {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
                ]
            }
        cond["verificationStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": r.clinical("confirmed"),
                }
            ]
        }
        cond["category"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis",
                    }
                ]
            }
        ]
        cond["code"] = f.cc(d.code)
        cond["subject"] = r.p.subject
        if d.description is not None:
            cond["note"] = [{"text": d.description}]
        if r.p.sender_ref is not None:
            cond["asserter"] = r.p.sender_ref
        urls.append(r.put(f"condition-{n}", cond))
    return urls


def _observations(r: _Report) -> list[str]:
    urls = []
    for n, fn in enumerate(r.msg.functions):
        obs: Json = {"resourceType": "Observation", "status": r.clinical("final")}
        obs["category"] = [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}
                ]
            },
            {"text": "Funksjonsnivå (IPLOS)"},
        ]
        obs["code"] = f.cc(fn.variable)
        obs["subject"] = r.p.subject
        obs["effectiveDateTime"] = f.fhir_datetime(r.msg.issue_date or r.msg.gen_date)
        if r.p.sender_ref is not None:
            obs["performer"] = [r.p.sender_ref]
        level = fn.level.code if fn.level is not None else None
        if level is not None and level.lstrip("-").isdigit():
            obs["valueInteger"] = int(level)
        elif level is not None:
            obs["valueString"] = level
        if fn.remark:
            obs["note"] = [{"text": fn.remark}]
        urls.append(r.put(f"function-{n}", obs))
    return urls


def _medications(r: _Report, document: str) -> list[str]:
    urls = []
    for n, m in enumerate(r.msg.medications):
        ms = statement(m, r.clinical("active"))
        ms["subject"] = r.p.subject
        ms["dateAsserted"] = f.fhir_datetime(r.msg.issue_date or r.msg.gen_date)
        if r.p.sender_ref is not None:
            ms["informationSource"] = r.p.sender_ref
        ms["derivedFrom"] = [f.reference(document)]
        urls.append(r.put(f"medication-{n}", ms))
    return urls


def _snapshot(r: _Report, statements: list[str]) -> str:
    """The reported medicines as a List of the sender's (a snapshot, not the shared medication list): the
    `source` of `POST /Patient/{id}/$reconcile`."""
    snapshot: Json = {
        "resourceType": "List",
        "status": "entered-in-error" if r.cancel else "current",
        "mode": "snapshot",
        "title": f"Legemidler fra {r.msg.family.display}",
        "code": {"coding": [SNAPSHOT]},
        "subject": r.p.subject,
        "date": f.fhir_datetime(r.msg.issue_date or r.msg.gen_date),
        "entry": [{"item": f.reference(url)} for url in statements],
    }
    if r.p.sender_ref is not None:
        snapshot["source"] = r.p.sender_ref
    return r.put("medication-snapshot", snapshot)


def _reconciliation(r: _Report, document: str, snapshot: str, statements: list[str]) -> None:
    """One Task asking the patient's clinician to reconcile the reported medicines with the medication
    list (`$reconcile` with `source` = the snapshot List): the list itself is never changed by a message."""
    task: Json = {
        "resourceType": "Task",
        "status": "cancelled" if r.cancel else "requested",
        "intent": "proposal",
    }
    task["code"] = {"coding": [RECONCILIATION]}
    task["description"] = f"Legemidler fra {r.msg.family.display}: avstem mot legemiddellisten"
    task["focus"] = f.reference(document)
    task["for"] = r.p.subject
    task["authoredOn"] = f.fhir_datetime(r.msg.issue_date or r.msg.gen_date)
    if r.p.sender_ref is not None:
        task["requester"] = r.p.sender_ref
    if r.p.receiver_ref is not None:
        task["owner"] = r.p.receiver_ref
    task["input"] = [{"type": {"text": "source"}, "valueReference": f.reference(snapshot)}]
    task["input"] += [
        {"type": {"text": "proposed"}, "valueReference": f.reference(url)} for url in statements
    ]
    r.put("medication-reconciliation", task)


def _services(r: _Report) -> list[str]:
    urls = []
    for n, s in enumerate(r.msg.services):
        sr = service_request(s, r.cancel)
        sr["subject"] = r.p.subject
        if r.p.sender_ref is not None:
            sr["requester"] = r.p.sender_ref
        urls.append(r.put(f"service-{n}", sr))
    return urls


def _care_team(r: _Report, responsible: str | None) -> list[str]:
    """The people and units around the patient the report names: one CareTeam (the responsible
    professional, contact persons, contact units, next of kin)."""
    msg, b = r.msg, r.p.b
    participants: list[Json] = []
    if responsible is not None and msg.responsible is not None:
        role = msg.responsible.role_to_patient or msg.responsible.type
        participants.append(
            participant(
                f.reference(responsible),
                role,
                "Ansvarlig for rapporten",
                "responsible",
                msg.responsible_note,
                msg.responsible_relation,
            )
        )
    for n, contact in enumerate(msg.contacts):
        hp = contact.professional
        url = b.practitioner(hp, f"contact-{n}")
        role = hp.role_to_patient or hp.type
        participants.append(participant(f.reference(url), role, "Kontaktperson", "contact", contact.note))
    for n, found in enumerate(msg.contact_units):
        # a contact unit is context, not a party: an organisation number that cannot be one is left out
        idents = tuple(i for i in found.idents if i.type.code != "ENH" or has_valid_orgnr(i.id))
        unit = replace(found, idents=idents)
        url = b.add(f"contact-unit-{n}", b.organization(unit, None), _ORG_KEYS)
        participants.append(participant(f.reference(url, unit.name), None, "Kontaktenhet", "unit"))
    for n, rp in enumerate(msg.related_persons):
        url = b.related_person(rp, r.p.subject["reference"], n)
        participants.append(participant(f.reference(url), rp.relationship, "Pårørende", "related"))
    if not participants:
        return []
    team: Json = {"resourceType": "CareTeam", "status": "entered-in-error" if r.cancel else "active"}
    team["name"] = f"Kontakter fra {msg.family.display}"
    team["subject"] = r.p.subject
    team["participant"] = participants
    if r.p.sender.organization is not None:
        team["managingOrganization"] = [f.reference(r.p.sender.organization)]
    return [r.put("care-team", team)]


def report_bundle(msg: PloMessage) -> tuple[Json, Anchor]:
    """The transaction of a PLO report, and its record's anchor (the DocumentReference)."""
    r = _Report(msg)
    b, p = r.p.b, r.p
    doc_url = b.url("document-reference")
    structured: dict[str, list[str]] = {
        "diagnoses": _conditions(r),
        "functions": _observations(r),
        "services": _services(r),
    }
    statements = _medications(r, doc_url)
    if statements:
        snapshot = _snapshot(r, statements)
        _reconciliation(r, doc_url, snapshot, statements)
        statements = [snapshot, *statements]
    identifier = {"system": DOCUMENT_SYSTEM, "value": r.key}
    when = f.fhir_datetime(msg.issue_date or msg.gen_date)
    type_cc = {"coding": [family_coding(msg.family)], "text": msg.family.display}
    authors = [a for a in (p.sender_ref,) if a is not None]
    responsible = None
    if msg.responsible is not None:
        responsible = b.practitioner(msg.responsible, "responsible")
        authors.append(f.reference(responsible))
    structured["contacts"] = _care_team(r, responsible)
    sections = []
    for s in msg.sections:
        section: Json = {"title": s.title, "code": section_code(s.element, s.title)}
        if s.fields:  # the part's elements, so it can be written again (`fields.py`)
            section["extension"] = [fields.to_ext(fd) for fd in s.fields]
        section["text"] = {"status": "generated", "div": _div(s.text or s.title)}
        refs = [u for name, el in _SECTION_OF.items() if el == s.element for u in structured[name]]
        if s.element == "Legemiddelinfo":
            refs += statements
        if s.element in ("EksisterendeTjeneste", "TjenesteBehov"):
            refs += structured["services"]
        if s.element in CONTACT_SECTIONS:
            refs += structured["contacts"]
        if refs:
            section["entry"] = [f.reference(u) for u in refs]
        sections.append(section)
    comp_url = b.url("composition")
    comp: Json = {
        "resourceType": "Composition",
        "extension": [message_ext(msg), *party_exts(p)],
        "identifier": identifier,
        "status": _STATUS[msg.kind],
        "type": type_cc,
        "subject": p.subject,
        "date": when,
        "author": authors or [{"display": msg.sender.name or "Avsender"}],
        "title": msg.family.display,
    }
    if responsible is not None and msg.approved is not None:
        comp["attester"] = [
            {"mode": "professional", "time": msg.approved.isoformat(), "party": f.reference(responsible)}
        ]
    if p.sender.organization is not None:
        comp["custodian"] = f.reference(p.sender.organization)
    if sections:
        comp["section"] = sections
    text = "\n\n".join(f"{s.title}\n{s.text}" for s in msg.sections)
    doc: Json = {
        "resourceType": "DocumentReference",
        "extension": [message_ext(msg)],
        "identifier": [identifier],
        "status": "entered-in-error" if r.cancel else "current",
        "docStatus": "amended" if msg.kind is Kind.CHANGE else "final",
        "type": type_cc,
        "subject": p.subject,
        "date": when,
        "author": authors,
        "description": msg.family.display,
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "title": msg.family.display,
                    "creation": when,
                    "data": base64.b64encode(text.encode()).decode("ascii"),
                }
            }
        ],
        "context": {"related": [f.reference(comp_url)]},
    }
    if not doc["author"]:
        del doc["author"]
    search = f.search_identifier(identifier)
    entries = list(b.entries)
    entries.append(
        {"fullUrl": comp_url, "resource": comp, "request": {"method": "PUT", "url": f"Composition?{search}"}}
    )
    entries.append(
        {
            "fullUrl": doc_url,
            "resource": doc,
            "request": {"method": "PUT", "url": f"DocumentReference?{search}"},
        }
    )
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    recipients = [ref] if (ref := p.receiver_ref) is not None else []
    return bundle, Anchor(doc_url, p.subject, p.sender_ref, tuple(recipients))


_CANCELLED = {
    "Composition": ("status", "entered-in-error"),
    "DocumentReference": ("status", "entered-in-error"),
    "Observation": ("status", "entered-in-error"),
    "MedicationStatement": ("status", "entered-in-error"),
    "ServiceRequest": ("status", "revoked"),
    "Task": ("status", "cancelled"),
    "CareTeam": ("status", "entered-in-error"),
    "List": ("status", "entered-in-error"),
}


def cancelled(resource: Json, msg: PloMessage) -> Json:
    """A stored part of a report as its Kansellering leaves it: the content kept, the status revoked."""
    out = {k: v for k, v in resource.items() if k != "meta"}
    if resource["resourceType"] == "Condition":
        out.pop("clinicalStatus", None)
        out["verificationStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "entered-in-error",
                }
            ]
        }
    elif resource["resourceType"] in _CANCELLED:
        field, value = _CANCELLED[resource["resourceType"]]
        out[field] = value
    if resource["resourceType"] in ("Composition", "DocumentReference"):
        out["extension"] = [e for e in out.get("extension", []) if e.get("url") != message_ext(msg)["url"]]
        out["extension"].append(message_ext(msg))
    return out


def cancellation_bundle(msg: PloMessage, stored: list[Json]) -> tuple[Json, Anchor]:
    """A Kansellering of a report held here: the stored document and every part it made (`stored`: the
    DocumentReference first) revoked, with If-Match; the record is about the DocumentReference."""
    r = _Report(msg)
    entries = list(r.p.b.entries)
    for resource in stored:
        entries.append(
            update_entry({**cancelled(resource, msg), "id": resource["id"], "meta": resource["meta"]})
        )
        entries[-1]["resource"].pop("meta", None)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    recipients = [ref] if (ref := r.p.receiver_ref) is not None else []
    about = f"DocumentReference/{stored[0]['id']}"
    return bundle, Anchor(about, r.p.subject, r.p.sender_ref, tuple(recipients))


def drop_superseded(bundle: Json, stored: list[Json], msg: PloMessage) -> None:
    """An Endring with fewer parts than before: the stored parts it no longer has (`stored`: what the
    report made, `store._report_parts`) are revoked in the same transaction, with If-Match."""
    written = {
        i.get("value")
        for e in bundle["entry"]
        for i in e["resource"].get("identifier") or []
        if isinstance(i, dict) and i.get("system") == f.DOCUMENT_PART_SYSTEM
    }
    for resource in stored:
        if resource["resourceType"] in ("DocumentReference", "Composition"):
            continue
        parts = {
            i.get("value")
            for i in resource.get("identifier") or []
            if i.get("system") == f.DOCUMENT_PART_SYSTEM
        }
        if parts and not parts & written:
            entry = update_entry({**cancelled(resource, msg), "id": resource["id"], "meta": resource["meta"]})
            entry["resource"].pop("meta", None)
            bundle["entry"].append(entry)
