"""FHIR -> a PLO report (pure): the Composition the intake (or a writer on FHIR) keeps, and what its sections
name, looked up by `resolve`, back to the model that `build.build_plo` writes as PLO 1.6.

The Composition holds what the MsgHead said (`ext:plo-message`, `kith-party` sender and receiver, the
subject: `_common.envelope_from`; a report written on FHIR keeps none of it and gets a new envelope,
`native_report`) and one section per part with its elements (`ext:plo-field`, `fields.py`). The diagnoses are the
Conditions of the `InfoMedisinskDiagnose` section and the mapped functions the Observations of the
`InfoKartleggingFunksjonsniva` section, the existing services the ServiceRequests (intent `plan`) of the
`EksisterendeTjeneste` section (`report_services`), the medicines the MedicationStatements of the
`Legemiddelinfo` section (`report_medications`), the responsible professional, contact persons and next of
kin the CareTeam of the contact sections (`report_contacts`), GodkjentDato `attester.time`: what is changed
on them is what is sent. The rest of the model (contact units, needed services, events, the sections' readable text) is read from the document written
from this, by the intake's own reader (`parse.read_report`), so both directions read a part one way.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import from_fhir as ff
from app.adapters.kith.model import Coded, Organisation
from app.adapters.plo import fields
from app.adapters.plo._common import EXT_PLO, envelope_from, ext_part
from app.adapters.plo.build_report import build_report_document
from app.adapters.plo.model import (
    REPORT_DOCUMENTS,
    REPORT_TYPES,
    Diagnosis,
    Family,
    Function,
    Kind,
    PloMessage,
    PloVersion,
    Section,
    UnbuildableError,
)
from app.adapters.plo.parse import read_report
from app.adapters.plo.report_contacts import contacts_from, related_from, responsible_from
from app.adapters.plo.report_fhir import CONTACT_SECTIONS, EXT_MAIN_DIAGNOSIS, FAMILY_SYSTEM, section_element
from app.adapters.plo.report_medications import medication_from
from app.adapters.plo.report_services import service_from

Json = dict[str, Any]


def _note(resource: Json) -> str | None:
    notes = resource.get("note") or []
    return notes[0].get("text") if notes else None


def _entries(composition: Json, element: str, res_type: str, resolve: ff.Resolve) -> list[Json]:
    found = []
    for section in composition.get("section", []):
        if section_element(section) != element:
            continue
        for entry in section.get("entry", []):
            ref = entry.get("reference")
            resource = resolve(ref) if ref else None
            if resource is not None and resource.get("resourceType") == res_type:
                found.append(resource)
    return found


def _diagnosis(condition: Json) -> Diagnosis:
    return Diagnosis(
        code=f.coded(condition.get("code")),
        main=f.ext_value(condition, EXT_MAIN_DIAGNOSIS, "Boolean"),
        description=_note(condition),
    )


def _function(observation: Json) -> Function:
    value = observation.get("valueInteger", observation.get("valueString"))
    return Function(
        variable=f.coded(observation.get("code")),
        level=None if value is None else Coded(code=str(value)),
        remark=_note(observation),
    )


def report_family(composition: Json) -> Family | None:
    """The report a Composition is (`type` `plo-message#<family>`), when it is one written as 1.6."""
    for c in (composition.get("type") or {}).get("coding") or []:
        if c.get("system") == FAMILY_SYSTEM and c.get("code") in _FAMILIES:
            family = Family(c["code"])
            return family if family in REPORT_DOCUMENTS else None
    return None


_FAMILIES = {family.value for family in Family}


def native_report(
    composition: Json,
    resolve: ff.Resolve,
    *,
    recipient: str,
    msg_id: str,
    generated: datetime,
    own: Organisation,
) -> PloMessage:
    """A report written on FHIR (no `ext:plo-message`), as a Ny to `recipient` (an Organization
    reference): the envelope from the Composition (`type` the report, `custodian` the sender, else `own`;
    `subject` the patient), the document element the report's 1.6 one, the rest as for a kept report."""
    family = report_family(composition)
    if family is None:
        raise UnbuildableError("the Composition's type is not a PLO report written as 1.6 (plo-message)")
    subject = f.ref_of(composition.get("subject"))
    patient = None if subject is None else resolve(subject)
    custodian = composition.get("custodian")
    envelope = PloMessage(
        version=PloVersion.V1_6,
        family=family,
        kind=Kind.NEW,
        msg_id=msg_id,
        msg_type=REPORT_TYPES[family],
        gen_date=generated,
        sender=ff._native_party(custodian, resolve) if custodian else own,
        receiver=ff._party(recipient, [], resolve),
        patient=None if patient is None else ff._patient(patient, None, True),
        issue_date=generated,
        document=REPORT_DOCUMENTS[family],
    )
    return report_from_resources(composition, resolve, envelope)


def report_from_resources(
    composition: Json, resolve: ff.Resolve, envelope: PloMessage | None = None
) -> PloMessage:
    """The report a Composition keeps, as the model (its business document valid PLO 1.6 when built);
    `envelope`: the MsgHead part when it is not kept on the Composition (a report written on FHIR)."""
    if envelope is None:
        kept = envelope_from(composition, composition.get("subject"), resolve)
        document = ext_part(f.exts(composition, EXT_PLO)[0], "document", "String")
        envelope = replace(kept, document=document)
    sections = tuple(
        Section(
            element=section_element(s),
            title=s.get("title") or "",
            text="",
            fields=tuple(fields.from_ext(e) for e in f.exts(s, fields.EXT_FIELD)),
        )
        for s in composition.get("section", [])
    )
    team = next(
        (t for part in CONTACT_SECTIONS for t in _entries(composition, part, "CareTeam", resolve)), None
    )
    responsible, relation, note = responsible_from(team, resolve)
    attester = (composition.get("attester") or [{}])[0]
    partial = replace(
        envelope,
        sections=sections,
        diagnoses=tuple(
            _diagnosis(c) for c in _entries(composition, "InfoMedisinskDiagnose", "Condition", resolve)
        ),
        functions=tuple(
            _function(o)
            for o in _entries(composition, "InfoKartleggingFunksjonsniva", "Observation", resolve)
        ),
        medications=tuple(
            medication_from(ms)
            for ms in _entries(composition, "Legemiddelinfo", "MedicationStatement", resolve)
        ),
        responsible=responsible,
        approved=f.from_fhir_date(attester.get("time")) if responsible is not None else None,
        responsible_relation=relation,
        responsible_note=note,
        contacts=contacts_from(team, resolve),
        related_persons=related_from(team, resolve),
        services=tuple(
            service_from(sr)
            for sr in _entries(composition, "EksisterendeTjeneste", "ServiceRequest", resolve)
            if sr.get("intent") == "plan"
        ),
    )
    return read_report(partial, build_report_document(partial))
