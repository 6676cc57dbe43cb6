"""`GET /Patient/{id}/$summary`: the patient's core journal as an IPS-shaped FHIR document.

Every read goes through the engine with the caller's context (a read of the Patient, then compartment
searches), so the access policy, consent blocks, the reservation and the audit apply exactly as to the
caller's own reads. The document is built by pure functions (document(), sections()) from what the
caller may see; the same data gives the same document except Bundle.id, Composition.id and the
timestamps, so clients can diff it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

import orjson
from fastapi import Query, Request, Response

from app.fhir.api import context as request_context
from app.fhir.api import fhir_engine
from app.fhir.context import RequestContext
from app.fhir.document import LOINC, document_bundle, instant, label, when
from app.fhir.document import section as document_section
from app.fhir.engine import Engine
from app.fhir.http import fhir_response, response_media_type
from app.fhir.operations import Operation, Parameter
from app.fhir.outcome import Category, FhirError
from app.resources.core_journal.classify import source_references
from app.resources.core_journal.codes import CORE_JOURNAL_SERVICE, is_entry
from app.resources.medication_list.operations import read_shared

IPS_COMPOSITION_TYPE = {"system": LOINC, "code": "60591-5", "display": "Patient summary Document"}
IPS_BUNDLE_PROFILE = "http://hl7.org/fhir/uv/ips/StructureDefinition/Bundle-uv-ips"
IPS_OPERATION = "http://hl7.org/fhir/uv/ips/OperationDefinition/summary"
MAX_PER_SECTION = 5_000  # resources of one kind for one patient; more is a 413, never a cut document
ENCOUNTER_YEARS = 3
ONGOING_PROCEDURE = "preparation,in-progress,on-hold"  # treatment that is going on (or about to)
_ACTIVE = frozenset({"active", "recurrence", "relapse"})


@dataclass(frozen=True)
class Section:
    title: str
    code: str  # LOINC, as the IPS and HAPI's generator use
    display: str
    res_type: str
    keep: Callable[[Mapping[str, Any]], bool] = lambda _r: True
    # Searched as a Patient-compartment search; R4's compartment has no Device, which the policy links
    # to its patient through its access facts instead (the Patient read has checked the patient).
    compartment: bool = True


def _clinical(resource: Mapping[str, Any]) -> str | None:
    codings = resource.get("clinicalStatus", {}).get("coding", [])
    return str(codings[0].get("code")) if codings else None


def _current_problem(resource: Mapping[str, Any]) -> bool:
    return _clinical(resource) in _ACTIVE or _clinical(resource) is None


SECTIONS = (
    Section(
        "Allergier og intoleranser",
        "48765-2",
        "Allergies and adverse reactions Document",
        "AllergyIntolerance",
    ),
    Section("Varsler", "104605-1", "Alert", "Flag", lambda r: r.get("status") == "active"),
    Section("Problemer", "11450-4", "Problem list - Reported", "Condition", _current_problem),
    Section("Legemidler", "10160-0", "History of Medication use Narrative", "MedicationStatement"),
    Section("Pågående behandlinger", "47519-4", "History of Procedures Document", "Procedure"),
    Section("Vaksiner", "11369-6", "History of Immunization Narrative", "Immunization"),
    Section(
        "Implantater og medisinsk utstyr",
        "46264-8",
        "History of medical device use",
        "Device",
        compartment=False,
    ),
    Section(
        "Kontakthistorikk", "46240-8", "History of Hospitalizations+Outpatient visits Narrative", "Encounter"
    ),
)


def _years_ago(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def criteria(section: Section, patient_id: str, today: date) -> list[tuple[str, str]]:
    """The search for one section: the patient's resources of its type (active medicines, treatments
    not yet completed, encounters of the last three years)."""
    found: list[tuple[str, str]] = [("patient", f"Patient/{patient_id}")]
    # (R4's Flag has no status parameter: its section keeps the active ones after the search)
    if section.res_type == "MedicationStatement":
        found.append(("status", "active"))
    elif section.res_type == "Procedure":
        found.append(("status", ONGOING_PROCEDURE))
    elif section.res_type == "Encounter":
        found.append(("date", f"ge{_years_ago(today, ENCOUNTER_YEARS).isoformat()}"))
    return found


def ordered(section: Section, found: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """A section's entries in a stable order: core-journal entries first (critical information leads),
    then the rest; sources folded into a visible entry are left out (the entry lists them). Encounters
    newest first; everything else by label; the id breaks ties."""
    kept = [r for r in found if section.keep(r)]
    folded = frozenset(ref for r in kept if is_entry(r) for ref in source_references(r))
    kept = [r for r in kept if f"{r['resourceType']}/{r['id']}" not in folded]
    if section.res_type == "Encounter":
        by_date = sorted(kept, key=lambda r: str(r["id"]))
        return sorted(by_date, key=when, reverse=True)
    return sorted(kept, key=lambda r: (not is_entry(r), label(r).lower(), str(r["id"])))


def document(
    base: str,
    patient: Mapping[str, Any],
    found: Mapping[str, Sequence[Mapping[str, Any]]],
    document_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The document Bundle: Composition, Patient, then each section's resources in section order."""
    stamp = instant(now)
    per_section = [(s, ordered(s, found.get(s.res_type, ()))) for s in SECTIONS]
    composition = {
        "resourceType": "Composition",
        "id": document_id,
        "status": "final",
        "type": {"coding": [IPS_COMPOSITION_TYPE]},
        "subject": {"reference": f"Patient/{patient['id']}"},
        "date": stamp,
        "author": [{"display": "Helsebro kjernejournal"}],
        "title": "Pasientsammendrag (kjernejournal)",
        "section": [
            document_section(s.title, {"system": LOINC, "code": s.code, "display": s.display}, entries)
            for s, entries in per_section
        ],
    }
    resources = [composition, patient, *(r for _, entries in per_section for r in entries)]
    return document_bundle(base, document_id, stamp, resources, IPS_BUNDLE_PROFILE)


async def summary(engine: Engine, ctx: RequestContext, patient_id: str, now: datetime) -> dict[str, Any]:
    """Reads the patient (the policy decides whether the caller may see them at all), then one
    compartment search per section type, all as the caller and audited as core-journal access."""
    ctx = dataclasses.replace(ctx, service=CORE_JOURNAL_SERVICE)
    patient = await engine.read(ctx, "Patient", patient_id)

    async def read_section(section: Section) -> list[dict[str, Any]]:
        if section.res_type == "MedicationStatement":
            # the patient's medication list (the medication-list pack): its active entries; before her
            # list is started, the active MedicationStatements found below
            shared = await read_shared(engine, ctx, patient_id)
            if shared.medication_list is not None:
                return shared.statements
        compartment = ("Patient", patient_id) if section.compartment else None
        return await engine.search(
            ctx, section.res_type, criteria(section, patient_id, now.date()), MAX_PER_SECTION, compartment
        )

    # The first section's search settles the caller's access to the patient (a care relation, or an
    # emergency access granted once); the others then run side by side, each on a pooled connection.
    first, *rest = SECTIONS
    found = {first.res_type: await read_section(first)}
    for section, resources in zip(rest, await asyncio.gather(*map(read_section, rest)), strict=True):
        found[section.res_type] = resources
    assert patient.content is not None
    return document(ctx.base_url, orjson.loads(patient.content), found, str(uuid.uuid4()), now)


async def summary_operation(res_id: str, request: Request) -> Response:
    media = response_media_type(request)
    body = await summary(fhir_engine(request), request_context(request), res_id, datetime.now(UTC))
    return fhir_response(request, orjson.dumps(body), 200, None, media)


async def summary_by_identifier(
    request: Request,
    identifier: Annotated[
        str | None, Query(description="The patient's identifier, system|value (e.g. a fødselsnummer)")
    ] = None,
) -> Response:
    """IPS's type-level form: the patient named by an identifier. The patient is found by a search as the
    caller (a patient the caller may not see is not found), then the summary is the instance's."""
    if not identifier or "|" not in identifier or not identifier.split("|", 1)[1]:
        raise FhirError(
            Category.INVALID,
            "Patient/$summary needs identifier=system|value (or use Patient/{id}/$summary)",
            "required",
            ("identifier",),
        )
    media = response_media_type(request)
    engine, ctx = fhir_engine(request), request_context(request)
    found = await engine.search(ctx, "Patient", [("identifier", identifier)], MAX_SAME_IDENTIFIER)
    if not found:
        raise FhirError(Category.NOT_FOUND, "No patient with that identifier is known", "not-found")
    if len(found) > 1:
        raise FhirError(
            Category.PRECONDITION,
            f"{len(found)} patients have that identifier: ask for one by Patient/{{id}}/$summary",
            "multiple-matches",
        )
    body = await summary(engine, ctx, found[0]["id"], datetime.now(UTC))
    return fhir_response(request, orjson.dumps(body), 200, None, media)


MAX_SAME_IDENTIFIER = 20  # patients sharing one identifier: more is a 413, never a guess
_SUMMARY_DESCRIPTION = (
    "A FHIR document Bundle (Composition + entries) with the IPS sections: allergies and "
    "intolerances (critical information first), alerts, problems, current medicines (the "
    "medication list), ongoing treatments, vaccines, devices and implants, and the encounters of "
    "the last three years. Access policy, reservation and "
    "consent blocks apply; every read is audited as core-journal access."
)
_SUMMARY_OUT = Parameter("return", "out", "Bundle", 1, "1", "The IPS document Bundle")
OPERATIONS = (
    Operation(
        "summary",
        "type",
        "GET",
        summary_by_identifier,
        "The core journal of the patient with an identifier, as an International Patient Summary document",
        types=("Patient",),
        description=_SUMMARY_DESCRIPTION,
        parameters=(
            Parameter(
                "identifier", "in", "token", 0, "1", "The patient's identifier, system|value (type level)"
            ),
            _SUMMARY_OUT,
        ),
        definition_url=IPS_OPERATION,
        tags=("Core journal",),
    ),
    Operation(
        "summary",
        "instance",
        "GET",
        summary_operation,
        "The patient's core journal as an International Patient Summary document",
        types=("Patient",),
        description=_SUMMARY_DESCRIPTION,
        parameters=(_SUMMARY_OUT,),
        definition_url=IPS_OPERATION,
        tags=("Core journal",),
    ),
)
