"""M25 Legemidler i bruk (any variant) ↔ the patient's medication list: a collection Bundle with the
medication list pack's `List` (`model.empty_list`: status current, mode working, its code) and one
MedicationStatement per EnkeltoppforingLIB, in the pack's shape (medicationCodeableConcept with ATC, FEST
id and varenummer codings, `dosage`, the multidose mark).

An M25 names no patient (its carrier does): the caller gives the List's `subject`. The variant is the
caller's choice when building (`variant`), as the M912 version is. What FHIR has no element for travels
in `eresept-*` extensions (tables below), so that M25 → FHIR → M25 keeps the content.
"""

from __future__ import annotations

from typing import Any

from app.adapters.eresept import _fhir_medicine as fm
from app.adapters.eresept import model_lib as ml
from app.adapters.eresept._fhir_parties import BundleBuilder, resolver
from app.adapters.eresept._fhir_parts import (
    BASE64,
    BOOLEAN,
    CODED,
    DATE,
    DATETIME,
    DECIMAL,
    IDENT,
    INTEGER,
    TEXT,
    URL,
    parts_of,
    read_parts,
)
from app.adapters.eresept.critical_info import allergy_from, allergy_key, allergy_resource
from app.adapters.eresept.model import PrescribedMedicine
from app.adapters.eresept.to_fhir import PRESCRIPTION_ID_SYSTEM, prescription_identifier
from app.adapters.kith import _fhir_common as f
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded
from app.resources.medication_list.codes import MULTIDOSE_EXTENSION
from app.resources.medication_list.model import empty_list

Json = dict[str, Any]
Table = tuple[tuple[str, str, Any], ...]
ENTRY_ID_SYSTEM = f"{f.NS}/eresept-lib-id"  # EnkeltoppforingLIB/Id (a local UUID)
EXT_ENTRY = f"{f.SD}/eresept-lib-oppforing"  # what an entry has beyond the statement's elements
EXT_LIST = f"{f.SD}/eresept-lib"  # what the list has beyond the List's elements
EXT_FORM = f"{f.SD}/eresept-legemiddelform"  # the Medication's form (a statement has no Medication)
MULTIDOSE_YES = "1"  # InngarMultidose 1 "Ja" (as every e-resept yes/no code: 1 ja, 2 nei)

ENTRY = (
    ("type", "type", CODED),
    ("prescriptionExpires", "prescription_expires", DATE),
    ("multidose", "multidose", CODED),
    ("withChange", "with_change", BOOLEAN),
)
MEDICINE = (
    ("quantity", "quantity", DECIMAL),
    ("reiterations", "reiterations", INTEGER),
    ("substitutionReserved", "substitution_reserved", CODED),
)
PERSON = (
    ("hpr", "hpr", IDENT),
    ("given", "given", TEXT),
    ("family", "family", TEXT),
    ("speciality", "speciality", CODED),
)
ORGANISATION = (
    ("herId", "her_id", IDENT),
    ("name", "name", TEXT),
    ("department", "department", TEXT),
    ("institution", "institution", CODED),
)
DISPENSE = (
    ("firstDose", "first_dose", DATE),
    ("lastDose", "last_dose", DATE),
    ("dispense", "dispense", BASE64),
    ("refM10", "ref_m10", TEXT),
    ("repackReason", "repack_reason", CODED),
    ("picture", "picture", URL),
)
QUESTION = (
    ("code", "code", CODED),
    ("askedAt", "asked_at", DATETIME),
    ("askedBy", "asked_by", TEXT),
    ("note", "note", TEXT),
    ("to", "to", TEXT),
    ("answer", "answer", CODED),
    ("answerNote", "answer_note", TEXT),
)
PACKING = (
    ("orderDeadline", "order_deadline", DATETIME),
    ("firstDose", "first_dose", DATE),
    ("lastDose", "last_dose", DATE),
)


def _nested(name: str, source: Any, table: Table) -> Json:
    return f.complex_ext(name, parts_of(source, table))


def _parts_named(parts: list[Json], name: str) -> list[list[Json]]:
    return [p.get("extension", []) for p in parts if p.get("url") == name]


def _role_ext(role: ml.ListRole) -> Json:
    parts = [f.ext("role", "CodeableConcept", f.cc(role.role))]
    if role.person is not None:
        parts.append(_nested("person", role.person, PERSON))
    if role.organisation is not None:
        parts.append(_nested("organisation", role.organisation, ORGANISATION))
    return f.complex_ext("role", parts)


def _role_from(parts: list[Json]) -> ml.ListRole:
    person = _parts_named(parts, "person")
    org = _parts_named(parts, "organisation")
    return ml.ListRole(
        role=f.coded(f.ext_value({"extension": parts}, "role", "CodeableConcept")),
        person=ml.ListPerson(**read_parts(person[0], PERSON)) if person else None,
        organisation=ml.ListOrganisation(**read_parts(org[0], ORGANISATION)) if org else None,
    )


# --- to FHIR ------------------------------------------------------------------------------------------------


def _statement(e: ml.ListEntry, subject: Json) -> Json:
    pm = e.medicine
    medication = fm.medication(pm.prescribing.medicine)
    extensions = [*medication["extension"], *fm.prescribed_extensions(pm)]
    if "form" in medication:
        extensions.append(f.ext(EXT_FORM, "CodeableConcept", medication["form"]))
    parts = parts_of(e, ENTRY) + parts_of(pm, MEDICINE) + [_role_ext(r) for r in e.roles]
    parts += [_nested("dispense", d, DISPENSE) for d in e.dispenses]
    parts += [_nested("question", q, QUESTION) for q in e.questions]
    if e.stop is not None and e.stop.note is not None:
        parts.append(f.ext("stopNote", "String", e.stop.note))
    extensions.append(f.complex_ext(EXT_ENTRY, parts))
    if e.multidose is not None and e.multidose.code == MULTIDOSE_YES:
        extensions.append({"url": MULTIDOSE_EXTENSION, "valueBoolean": True})
    out: Json = {
        "resourceType": "MedicationStatement",
        "identifier": [{"system": ENTRY_ID_SYSTEM, "value": e.id}],
        "status": "active" if e.stop is None else "stopped",
        "medicationCodeableConcept": medication["code"],
        "subject": subject,
        "dateAsserted": f.fhir_datetime(e.changed),
        "dosage": fm.dosage_instructions(pm.prescribing),
        "extension": extensions,
    }
    if e.prescription_id is not None:
        out["basedOn"] = [{"identifier": prescription_identifier(e.prescription_id)}]
    period = {}
    if e.started is not None:
        period["start"] = e.started.isoformat()
    if e.stop is not None:
        period["end"] = f.fhir_datetime(e.stop.at)
        out["statusReason"] = [f.cc(e.stop.reason)]
    if period:
        out["effectivePeriod"] = period
    if pm.note is not None:
        out["note"] = [{"text": pm.note}]
    return out


def medication_list_to_bundle(
    lib: ml.MedicationList, subject: Json, *, sender_key: str = "", patient_key: str | None = None
) -> Json:
    """LegemidlerIBruk → collection Bundle [List, MedicationStatement..., AllergyIntolerance...]; `subject`
    is the patient's Reference (the M25 itself names none). Its drug reactions (ki:Allergi) are
    identified by `sender_key` (who sent the list), `patient_key` (default: the subject's reference) and
    the medicine, so the sender's next list updates them (critical_info.allergy_key)."""
    build = BundleBuilder("lib:" + "|".join(e.id for e in lib.entries))
    statements = [(build.full_url(f"entry-{e.id}"), _statement(e, subject)) for e in lib.entries]
    medication_list = {k: v for k, v in empty_list("").items() if k not in ("identifier", "subject")}
    medication_list["subject"] = subject
    parts = [_role_ext(r) for r in lib.roles]
    if lib.packing is not None:
        parts.append(_nested("packing", lib.packing, PACKING))
    if lib.substitute is not None:
        parts.append(f.ext("substitute", "CodeableConcept", f.cc(lib.substitute)))
    if parts:
        medication_list["extension"] = [f.complex_ext(EXT_LIST, parts)]
    if lib.note is not None:
        medication_list["note"] = [{"text": lib.note}]
    if statements:
        medication_list["entry"] = [{"item": f.reference(url)} for url, _ in statements]
    patient = patient_key if patient_key is not None else str(subject.get("reference", ""))
    allergies = []
    for allergy in lib.allergies:
        key = allergy_key(sender_key, patient, allergy.drug)
        allergies.append(
            {
                "fullUrl": build.full_url(f"allergy-{key}"),
                "resource": allergy_resource(allergy, subject, key, sender_key),
            }
        )
    entries = [
        {"fullUrl": build.full_url("list"), "resource": medication_list},
        *({"fullUrl": url, "resource": statement} for url, statement in statements),
        *allergies,
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


# --- from FHIR ----------------------------------------------------------------------------------------------


def _own_parts(resource: Json, url: str) -> list[Json]:
    found = f.exts(resource, url)
    parts: list[Json] = found[0].get("extension", []) if found else []
    return parts


def _medicine(statement: Json, parts: list[Json]) -> PrescribedMedicine:
    """A statement's medicine: what the pack writes (code, dosage, note) plus the adapter's extensions.
    A statement the pack wrote itself has none of them: a package by its codes, unknown groups left empty."""
    med = {
        "code": statement.get("medicationCodeableConcept") or {},
        "form": f.ext_value(statement, EXT_FORM, "CodeableConcept"),
        "extension": statement.get("extension", []),
    }
    extras = fm.prescribed_extras(statement)
    own = read_parts(parts, MEDICINE)
    return PrescribedMedicine(
        article_group=extras.article_group,
        prescribing=fm.prescribing_from(statement.get("dosage", []), med, extras.use, extras.no_combination),
        quantity=own["quantity"],
        note=(statement.get("note") or [{}])[0].get("text"),
        reimbursement_basis=extras.reimbursement_basis,
        reimbursement_code=extras.reimbursement_code,
        reiterations=own["reiterations"] or 0,
        substitution_reserved=own["substitution_reserved"],
    )


def _entry(statement: Json) -> ml.ListEntry:
    parts = _own_parts(statement, EXT_ENTRY)
    own = read_parts(parts, ENTRY)
    ids = [i.get("value") for i in statement.get("identifier", []) if i.get("system") == ENTRY_ID_SYSTEM]
    entry_id = ids[0] if ids else statement.get("id")  # a statement the pack stored: its own id is local
    changed = f.from_fhir_datetime(statement.get("dateAsserted"))
    if entry_id is None or changed is None:
        raise KithError(AppRecError.OTHER, "a MedicationStatement without its LIB id or dateAsserted")
    based_on = (statement.get("basedOn") or [{}])[0].get("identifier") or {}
    period = statement.get("effectivePeriod") or {}
    stopped_at = f.from_fhir_datetime(period.get("end")) if statement.get("status") == "stopped" else None
    return ml.ListEntry(
        id=entry_id,
        type=own["type"] or Coded(),
        changed=changed,
        medicine=_medicine(statement, parts),
        prescription_id=based_on.get("value") if based_on.get("system") == PRESCRIPTION_ID_SYSTEM else None,
        prescription_expires=own["prescription_expires"],
        started=f.from_fhir_date(period.get("start")),
        multidose=own["multidose"],
        with_change=own["with_change"],
        roles=tuple(_role_from(p) for p in _parts_named(parts, "role")),
        dispenses=tuple(
            ml.PackedDispense(**read_parts(p, DISPENSE)) for p in _parts_named(parts, "dispense")
        ),
        stop=None
        if stopped_at is None
        else ml.Stop(
            at=stopped_at,
            reason=f.coded((statement.get("statusReason") or [None])[0]),
            note=f.ext_value({"extension": parts}, "stopNote", "String"),
        ),
        questions=tuple(ml.Question(**read_parts(p, QUESTION)) for p in _parts_named(parts, "question")),
    )


def medication_list_from_bundle(bundle: Json, variant: str) -> ml.MedicationList:
    """The medication list (List and its MedicationStatements) → LegemidlerIBruk of `variant`."""
    resolve = resolver(bundle)
    resources = [e.get("resource") or {} for e in bundle.get("entry", [])]
    medication_list = next((r for r in resources if r.get("resourceType") == "List"), None)
    if medication_list is None:
        raise KithError(AppRecError.OTHER, "the Bundle has no List")
    statements = [resolve(f.ref_of(e.get("item"))) for e in medication_list.get("entry", [])]
    parts = _own_parts(medication_list, EXT_LIST)
    packing = _parts_named(parts, "packing")
    return ml.MedicationList(
        variant=variant,
        entries=tuple(_entry(s) for s in statements if s is not None),
        roles=tuple(_role_from(p) for p in _parts_named(parts, "role")),
        packing=ml.PackingInfo(**read_parts(packing[0], PACKING)) if packing else None,
        note=(medication_list.get("note") or [{}])[0].get("text"),
        substitute=f.opt_coded(f.ext_value({"extension": parts}, "substitute", "CodeableConcept")),
        allergies=tuple(allergy_from(r) for r in resources if r.get("resourceType") == "AllergyIntolerance"),
    )
