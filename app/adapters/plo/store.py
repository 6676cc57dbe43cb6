"""What a received PLO message changes, read through the engine with the caller's context (the access
policy and the audit apply): the stored stay (Encounter) and discharge-ready notice (Task) a logistics
message updates, the stored report a Kansellering revokes, and the stored stay or report read back as
the message (`stored_logistics`, `stored_report`). The mapping itself is pure
(`logistics_fhir`, `report_fhir`).
"""

from __future__ import annotations

import logging
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith.intake import Anchor
from app.adapters.kith.stored import resolve_all
from app.adapters.plo import logistics_fhir as lf
from app.adapters.plo import report_fhir as rf
from app.adapters.plo.from_fhir import logistics_from_resources
from app.adapters.plo.model import Kind, Logistics, PloMessage
from app.adapters.plo.report_from_fhir import report_from_resources
from app.fhir.context import RequestContext
from app.fhir.engine import Engine
from app.fhir.search.values import escape_value

Json = dict[str, Any]
log = logging.getLogger(__name__)
MAX_STAYS = 200  # stays of one patient at one hospital


def _token(system: str, value: str) -> str:
    return f"{system}|{escape_value(value)}"


async def _by_identifier(
    engine: Engine, ctx: RequestContext, res_type: str, system: str, value: str
) -> Json | None:
    found = await engine.search(ctx, res_type, [("identifier", _token(system, value))], 1)
    return found[0] if found else None


async def _stay(engine: Engine, ctx: RequestContext, msg: PloMessage) -> Json | None:
    """The stay the message is about: by its admission day, else the patient's latest stay there that is
    not in error."""
    key = lf.stay_key(msg)
    if key is not None:
        return await _by_identifier(engine, ctx, "Encounter", lf.STAY_SYSTEM, key)
    value = _token(lf.PATIENT_STAY_SYSTEM, lf.patient_stay(msg))
    stays = await engine.search(ctx, "Encounter", [("identifier", value)], MAX_STAYS)
    stays = [s for s in stays if s.get("status") != "entered-in-error"]
    stays.sort(key=lambda s: (s.get("period", {}).get("start", ""), s.get("meta", {}).get("lastUpdated", "")))
    return stays[-1] if stays else None


async def _patient(engine: Engine, ctx: RequestContext, msg: PloMessage) -> Json | None:
    """The stored Patient by the message's national identifier (fødselsnummer, D-nummer ...)."""
    assert msg.patient is not None
    for ident in msg.patient.idents:
        identifier = f.identifier(ident)
        if identifier.get("system") in lf.PATIENT_KEYS:
            found = await engine.search(
                ctx, "Patient", [("identifier", _token(identifier["system"], ident.id))], 1
            )
            if found:
                return found[0]
    return None


async def _report_parts(engine: Engine, ctx: RequestContext, document: Json) -> list[Json]:
    """The stored DocumentReference, its Composition and what the Composition's sections name, and the
    medication reconciliation Task that points at the document."""
    out = [document]
    for related in document.get("context", {}).get("related", []):
        composition = await engine.read_resource(ctx, related["reference"])
        if composition is None:
            continue
        out.append(composition)
        seen = set()
        for section in composition.get("section", []):
            for entry in section.get("entry", []):
                ref = entry.get("reference")
                if ref and ref not in seen and (part := await engine.read_resource(ctx, ref)) is not None:
                    seen.add(ref)
                    out.append(part)
    tasks = await engine.search(ctx, "Task", [("focus", f"DocumentReference/{document['id']}")], 10)
    return out + tasks


async def changes(engine: Engine, ctx: RequestContext, msg: PloMessage) -> tuple[Json, Anchor]:
    if not msg.family.is_report:
        lf.check_patient(msg)
        stay = await _stay(engine, ctx, msg)
        key = lf.identifier_value(stay, lf.STAY_SYSTEM) or lf.stay_key(msg)
        task = None
        if key is not None:
            task = await _by_identifier(engine, ctx, "Task", lf.DISCHARGE_READY_SYSTEM, key)
        patient = await _patient(engine, ctx, msg) if msg.logistics is Logistics.DEATH else None
        return lf.logistics_bundle(msg, stay, task, patient)
    document = None
    if msg.kind is not Kind.NEW:
        key = rf.document_key(msg)
        document = await _by_identifier(engine, ctx, "DocumentReference", rf.DOCUMENT_SYSTEM, key)
    if msg.kind is Kind.CANCEL:
        if document is not None:
            return rf.cancellation_bundle(msg, await _report_parts(engine, ctx, document))
        log.info("PLO Kansellering of a report not held here: kept as a cancelled document")
    bundle, anchor = rf.report_bundle(msg)
    if document is not None:  # an Endring: what the report no longer has is revoked
        rf.drop_superseded(bundle, await _report_parts(engine, ctx, document), msg)
    return bundle, anchor


async def stored_logistics(engine: Engine, ctx: RequestContext, stay: Json) -> PloMessage:
    """The last Pasientlogistikk message kept on a stored stay (Encounter) and its notice, read back
    through the engine with the caller's context: what `build.build_plo` writes out again."""
    key = lf.identifier_value(stay, lf.STAY_SYSTEM)
    task = None if key is None else await _by_identifier(engine, ctx, "Task", lf.DISCHARGE_READY_SYSTEM, key)
    resources = [r for r in (stay, task) if r is not None]
    known = await resolve_all(engine, ctx, resources)
    return logistics_from_resources(stay, task, known.get)


async def stored_report(engine: Engine, ctx: RequestContext, composition: Json) -> PloMessage:
    """The report a stored Composition keeps (its Conditions, Observations and parties read through the
    engine with the caller's context): what `build.build_plo` writes out again."""
    known = await resolve_all(engine, ctx, [composition])
    return report_from_resources(composition, known.get)
