"""Plain writes of the medication List: it changes through $reconcile and $multidose-decision, which
diff, guard the version, record Provenance and hold the multidose part to its owner. A personnel or
citizen `PUT`, `POST` or `DELETE` of the List itself is refused (422, business-rule), and so is one of a
MedicationStatement in multidose (before or after the write): only the responsible doctor's organisation
changes the multidose part, through the operations. System clients (a register taking in M27.1, an
e-resept intake, a migration) and the server's own work may write both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.fhir.context import RequestContext
from app.fhir.hooks import Hooks, Stage, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.resources.medication_list.codes import LIST_IDENTIFIER_SYSTEM
from app.resources.medication_list.multidose import is_multidose

GUARDED_KINDS = frozenset({"personnel", "citizen"})


@dataclass
class ListOperation:
    """Per request: set while one of the pack's operations writes the List."""

    active: bool = False


def operation_writes(ctx: RequestContext) -> None:
    """Called by the pack's operations before they write the List in this request."""
    ctx.state(ListOperation).active = True


def is_medication_list(resource: Any) -> bool:
    if not isinstance(resource, dict) or resource.get("resourceType") != "List":
        return False
    identifiers = resource.get("identifier") or []
    return any(isinstance(i, dict) and i.get("system") == LIST_IDENTIFIER_SYSTEM for i in identifiers)


async def check_list_write(event: WriteEvent) -> None:
    if event.res_type != "List" or event.ctx.state(ListOperation).active:
        return
    if getattr(event.ctx.principal, "kind", None) not in GUARDED_KINDS:
        return
    if is_medication_list(event.resource) or is_medication_list(event.previous_resource):
        raise FhirError(
            Category.UNPROCESSABLE,
            "The patient's medication list changes through Patient/$reconcile, not by writing the List",
            "business-rule",
        )


async def check_multidose_write(event: WriteEvent) -> None:
    if event.res_type != "MedicationStatement" or event.ctx.state(ListOperation).active:
        return
    if getattr(event.ctx.principal, "kind", None) not in GUARDED_KINDS:
        return
    if is_multidose(event.resource) or is_multidose(event.previous_resource):
        raise FhirError(
            Category.UNPROCESSABLE,
            "A medicine in multidose changes through Patient/$reconcile: the responsible doctor's "
            "organisation applies it, anyone else's change becomes a proposal to them",
            "business-rule",
        )


def install(hooks: Hooks) -> None:
    hooks.before_write.add(Stage.DOMAIN, check_list_write)
    hooks.before_write.add(Stage.DOMAIN, check_multidose_write)
