"""FHIR → the Epikrise model (pure): the Composition of a received epikrise (its `kith-*` extensions give the
message back exactly), or a discharge summary written on FHIR (the native elements, with the defaults named in
README.md), with everything it refers to looked up by `resolve`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from app.adapters.epikrise import results as lab
from app.adapters.epikrise._fhir import EXT_ITEM
from app.adapters.epikrise.model import (
    DiagnosisItem,
    Epikrise,
    EpikriseVersion,
    MedicationItem,
    Modifier,
    RelatedReferral,
    Responsible,
    ResultEntry,
    ResultGroup,
    Stay,
    TextItem,
    TextPart,
)
from app.adapters.epikrise.to_fhir import (
    DIAGNOSES_SECTION,
    EXT_MESSAGE,
    EXT_RECIPIENT,
    EXT_REFERRAL,
    EXT_RELATION,
    EXT_SECTION,
    EXT_STAY,
    MEDICATIONS_SECTION,
)
from app.adapters.kith import _fhir_common as f
from app.adapters.kith import _fhir_referral as r
from app.adapters.kith import from_fhir as ff
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Attachment, Coded, MessageKind, Organisation
from app.adapters.kith.xmlsafe import parse_xml

Json = dict[str, Any]
Resolve = Callable[[str], Json | None]
MAIN = Coded(code="H", display="Hoveddiagnose")
SECONDARY = Coded(code="B", display="Bidiagnose")
MEDICATION = Coded(code="MEDB", display="Legemiddelopplysning")
RESPONSIBLE = Coded(code="AHP", display="Ansvarlig helsepersonell")
_REPORT_STATUS = {"preliminary": Coded(code="P", display="Foreløpig rapport")}


def _part(ext: Any, name: str, value_type: str) -> Any:
    return next(
        (e.get(f"value{value_type}") for e in (ext or {}).get("extension", []) if e.get("url") == name), None
    )


def _all(ext: Any, name: str, value_type: str) -> list[Any]:
    return [e.get(f"value{value_type}") for e in (ext or {}).get("extension", []) if e.get("url") == name]


def _c(ext: Any, name: str) -> Coded | None:
    return f.opt_coded(_part(ext, name, "CodeableConcept"))


def _t(ext: Any, name: str) -> datetime | None:
    return f.from_fhir_datetime(_part(ext, name, "DateTime"))


def text_of(narrative: Any) -> str | None:
    """A section's text back: the XHTML as it is, or the plain text of a div without markup."""
    div = (narrative or {}).get("div") if isinstance(narrative, dict) else None
    if not isinstance(div, str):
        return None
    root = parse_xml(div.encode("utf-8"))
    if any(isinstance(child.tag, str) for child in root):
        return div
    return root.text or ""


def _one(ext_url: str, resource: Json) -> Json | None:
    found = f.exts(resource, ext_url)
    return found[0] if found else None


def _diagnosis(condition: Json, first: bool) -> DiagnosisItem:
    item = _one(EXT_ITEM, condition)
    return DiagnosisItem(
        type=_c(item, "type") or (MAIN if first else SECONDARY),
        concept=f.coded(condition.get("code")),
        modifiers=tuple(
            Modifier(name=_c(m, "name") or Coded(), value=_c(m, "value") or Coded())
            for m in (item or {}).get("extension", [])
            if m.get("url") == "modifier"
        ),
        description=_part(item, "description", "String"),
        start=_t(item, "start") if item else f.from_fhir_datetime(condition.get("onsetDateTime")),
        end=_t(item, "end"),
    )


def _medication(statement: Json) -> MedicationItem:
    item = _one(EXT_ITEM, statement)
    dosage = (statement.get("dosage") or [{}])[0]
    dose = ((dosage.get("doseAndRate") or [{}])[0]).get("doseQuantity")
    notes = statement.get("note") or []
    return MedicationItem(
        type=_c(item, "type") or MEDICATION,
        drug=f.coded(statement.get("medicationCodeableConcept")),
        status=_c(item, "status"),
        dosage_coded=_c(item, "dosageCoded"),
        form=_c(item, "form"),
        route=f.opt_coded(dosage.get("route")),
        unit_dose=f.from_quantity(dose) if isinstance(dose, dict) else None,
        dosage_text=dosage.get("text"),
        comment=notes[0].get("text") if notes else None,
        start=_t(item, "start"),
        end=_t(item, "end"),
    )


def _kind_of(section: Json, resolve: Resolve) -> str:
    ext = _one(EXT_SECTION, section)
    if ext is not None:
        return str(_part(ext, "part", "Code"))
    codings = (section.get("code") or {}).get("coding") or []
    if DIAGNOSES_SECTION["code"] in [c.get("code") for c in codings]:
        return "diagnoses"
    if MEDICATIONS_SECTION["code"] in [c.get("code") for c in codings]:
        return "medications"
    if lab.RESULTS_SECTION["code"] in [c.get("code") for c in codings]:
        return "results"
    types = {
        (resolve(ref) or {}).get("resourceType") for e in section.get("entry", []) if (ref := f.ref_of(e))
    }
    if "Condition" in types:
        return "diagnoses"
    if types & {"Observation", "DiagnosticReport"}:
        return "results"
    if "DocumentReference" in types:
        return "attachments"
    return "medications" if "MedicationStatement" in types else "comment"


def _entries(section: Json, resolve: Resolve, *res_types: str) -> list[Json]:
    found = [resolve(ref) for e in section.get("entry", []) if (ref := f.ref_of(e))]
    return [r for r in found if r is not None and r.get("resourceType") in res_types]


def _stay(encounter: Json | None, sections: list[Json], resolve: Resolve, native: bool) -> Stay:
    enc = encounter or {}
    period = enc.get("period") or {}
    diagnoses: list[DiagnosisItem] = []
    texts: list[TextItem] = []
    medications: list[MedicationItem] = []
    comments: list[TextPart] = []
    results: list[ResultEntry] = []
    groups: list[ResultGroup] = []
    for section in sections:
        kind = _kind_of(section, resolve)
        ext = _one(EXT_SECTION, section)
        if kind == "diagnoses":
            for condition in _entries(section, resolve, "Condition"):
                diagnoses.append(_diagnosis(condition, not diagnoses))
        elif kind == "medications":
            medications += [_medication(s) for s in _entries(section, resolve, "MedicationStatement")]
        elif kind == "results":
            for found in _entries(section, resolve, "Observation", "DiagnosticReport"):
                if found["resourceType"] == "Observation":
                    results.append(lab.entry_of(found, resolve))
                else:
                    groups.append(lab.group_of(found, resolve))
        elif kind == "item":
            texts.append(
                TextItem(
                    type=_c(ext, "type") or Coded(),
                    description=text_of(section.get("text")),
                    comment=_part(ext, "comment", "String"),
                    start=_t(ext, "start"),
                    end=_t(ext, "end"),
                )
            )
        elif kind == "comment":
            heading = _c(ext, "heading") if ext is not None else None
            if heading is None and native:
                code = f.opt_coded(section.get("code"))
                heading = Coded(
                    code=code.code if code else None,
                    display=section.get("title") or (code.display if code else None),
                )
            comments.append(TextPart(heading=heading, text=text_of(section.get("text"))))
    return Stay(
        start=f.from_fhir_datetime(period.get("start")),
        end=f.from_fhir_datetime(period.get("end")),
        kind=_c(_one(EXT_STAY, enc), "kind"),
        outcome=f.opt_coded((enc.get("hospitalization") or {}).get("dischargeDisposition")),
        category=f.opt_coded((enc.get("type") or [None])[0]),
        specialty=f.opt_coded(enc.get("serviceType")),
        diagnoses=tuple(diagnoses),
        texts=tuple(texts),
        medications=tuple(medications),
        comments=tuple(comments),
        results=tuple(results),
        result_groups=tuple(groups),
    )


def _relations(composition: Json, role: str, resolve: Resolve) -> tuple[Responsible, ...]:
    out = []
    for ext in f.exts(composition, EXT_RELATION):
        if _part(ext, "role", "Code") == role:
            ref = f.ref_of(_part(ext, "professional", "Reference"))
            out.append(
                Responsible(_c(ext, "relation") or Coded(), ff._professional(resolve(ref) if ref else None))
            )
    return tuple(out)


def _parties(composition: Json, resolve: Resolve) -> dict[str, Organisation]:
    roles = [_part(e, "role", "Code") for e in f.exts(composition, r.EXT_PARTY)]
    return {
        str(role): p for role in roles if (p := ff._party_from(composition, str(role), resolve)) is not None
    }


def epikrise_from_resources(
    composition: Json,
    resolve: Resolve,
    *,
    msg_id: str | None = None,
    generated: datetime | None = None,
    own: Organisation | None = None,
) -> Epikrise:
    """The Epikrise of a stored (or bundled) Composition. A Composition written on FHIR takes `msg_id`,
    `generated` and, without a custodian, `own` as its sender; its receiver is `ext:kith-recipient`."""
    message = _one(EXT_MESSAGE, composition)
    native = message is None
    parties = _parties(composition, resolve)
    sender = parties.get("sender")
    if sender is None:
        custodian = f.ref_of(composition.get("custodian"))
        authors = [
            r
            for a in composition.get("author", [])
            if (r := f.ref_of(a)) and r.startswith("PractitionerRole/")
        ]
        sender = ff._party(custodian, authors, resolve) if custodian else (own or Organisation())
    receiver = parties.get("receiver")
    if receiver is None:
        recipient = f.ref_of(f.ext_value(composition, EXT_RECIPIENT, "Reference"))
        receiver = ff._party(recipient, [], resolve) if recipient else Organisation()
    subject = f.ref_of(composition.get("subject"))
    patient = ff._patient(resolve(subject) if subject else None, None, native=False)
    issued = f.from_fhir_datetime(composition.get("date"))
    if issued is None:
        raise KithError(AppRecError.NOT_VALID, "mandatory element <IssueDate> is missing")
    encounters = [f.ref_of(e) for e in _all(message, "encounter", "Reference")] if message else []
    if native and (first := f.ref_of(composition.get("encounter"))):
        encounters = [first]
    by_stay: dict[int, list[Json]] = {}
    precautions: list[str] = []
    attachments: list[Attachment] = []
    for section in composition.get("section", []):
        ext = _one(EXT_SECTION, section)
        if ext is not None and _part(ext, "part", "Code") == "precaution":
            precautions.append(text_of(section.get("text")) or "")
            continue
        if _kind_of(section, resolve) == "attachments":
            documents = _entries(section, resolve, "DocumentReference")
            attachments += [lab.attachment_of(d) for d in documents]
            continue
        by_stay.setdefault(int(_part(ext, "stay", "Integer") or 0), []).append(section)
    count = max([len(encounters), *(n + 1 for n in by_stay)])
    stays = tuple(
        _stay(
            resolve(ref) if (ref := encounters[n] if n < len(encounters) else None) else None,
            by_stay.get(n, []),
            resolve,
            native,
        )
        for n in range(count)
    )
    if native:
        stays = tuple(s if s.start is not None else _with_start(s, issued) for s in stays)
    attesters = composition.get("attester") or [{}]
    copies = [
        parties[k] for k in sorted((k for k in parties if k.startswith("copy-")), key=lambda k: int(k[5:]))
    ]
    responsible = _relations(composition, "responsible", resolve)
    if native:
        responsible = tuple(
            Responsible(RESPONSIBLE, ff._professional(res))
            for a in composition.get("author", [])
            if (ref := f.ref_of(a)) and (res := resolve(ref)) and res.get("resourceType") == "Practitioner"
        )
    kind = _part(message, "kind", "Code") if message else "N"
    return Epikrise(
        version=EpikriseVersion(_part(message, "version", "Code") or "1.2")
        if message
        else EpikriseVersion.V1_2,
        kind=MessageKind(kind),
        msg_id=(_part(message, "msgId", "String") if message else None)
        or msg_id
        or composition.get("id", ""),
        generated=_t(message, "generated") or generated or issued,
        issued=issued,
        sender=sender,
        receiver=receiver,
        patient=patient,
        document_id=_part(message, "documentId", "String") if message else composition.get("id"),
        msg_type=_c(message, "messageType") or Coded(code="EPIKRISE", display="Epikrise"),
        processing_status=_c(message, "processingStatus"),
        approved=f.from_fhir_datetime(attesters[0].get("time")),
        report_status=_c(message, "reportStatus")
        if message
        else _REPORT_STATUS.get(composition.get("status", "")),
        description=_part(message, "description", "String") if message else composition.get("title"),
        referrals=tuple(
            RelatedReferral(
                kind=_c(ext, "kind"),
                issued=_t(ext, "issued"),
                content_type=_c(ext, "contentType"),
                id=_part(ext, "id", "String"),
                diagnoses=tuple(f.coded(d) for d in _all(ext, "diagnosis", "CodeableConcept")),
            )
            for ext in f.exts(composition, EXT_REFERRAL)
        ),
        stays=stays,
        patient_relations=_relations(composition, "patient", resolve),
        precautions=tuple(precautions),
        copy_to=tuple(copies),
        responsible=responsible,
        attachments=tuple(attachments),
    )


def _with_start(stay: Stay, issued: datetime) -> Stay:
    return replace(stay, start=issued)


def epikrise_from_bundle(bundle: Json) -> Epikrise:
    resources = [e.get("resource") for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]
    composition = next((x for x in resources if x.get("resourceType") == "Composition"), None)
    if composition is None:
        raise ValueError("the bundle holds no Composition")
    return epikrise_from_resources(composition, ff.bundle_resolver(bundle))
