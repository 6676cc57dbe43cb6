"""AuditEvent search parameters as SQL on the audit trail's own tables (app/security/tables.py).

The parameters the trail is searched by: whose data (patient, entity), who (agent:identifier, altid), when
(date, _lastUpdated), what and how it ended (type, subtype, action, outcome), the follow-up flags (_tag)
and _id. Values are parsed with the engine's helpers, so prefixes, escapes, comma (OR) and repetition (AND)
mean what they mean in every other search; anything else is reported like an unknown parameter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, false, func, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from app.fhir.outcome import Category, FhirError
from app.fhir.search.extract import split_reference
from app.fhir.search.parse import RESULT_PARAMS, Unsupported
from app.fhir.search.values import date_condition, datetime_condition, split_escaped, split_or
from app.resources.no_basis.identifiers import ORGNR_SYSTEM
from app.security.audit import (
    AUDIT_FLAG_SYSTEM,
    CLIENT_ID_SYSTEM,
    EVENT_TYPE_SYSTEM,
    INTERACTION_SYSTEM,
)
from app.security.tables import audit_event, audit_patient
from app.store.search_sql import range_condition

SEARCH_PARAMS = frozenset(
    {"_id", "_lastUpdated", "_tag", "action", "agent", "altid", "date", "entity", "outcome", "patient"}
    | {"subtype", "type"}
)
# Result parameters this store honours; the other ones (_include, _revinclude, ...) are reported.
RESULT_SUPPORTED = frozenset({"_count", "_sort", "_total", "_summary", "_elements", "_format", "_pretty"})
_IGNORED_RESULT = RESULT_PARAMS - RESULT_SUPPORTED - {"_cursor"}

ACTION_SYSTEM = "http://hl7.org/fhir/audit-event-action"
OUTCOME_SYSTEM = "http://hl7.org/fhir/audit-event-outcome"

e = audit_event.c
Condition = ColumnElement[bool]
Handler = Callable[["Criteria", str, str], Condition]


@dataclass
class Criteria:
    """The WHERE conditions of one search (ANDed), and what was ignored (for the Bundle's warning)."""

    base_url: str
    conditions: list[Condition] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    now_micros: int = field(default_factory=lambda: int(time.time() * 1_000_000))


def parse_criteria(pairs: list[tuple[str, str]], strict: bool, base_url: str) -> Criteria:
    criteria = Criteria(base_url.rstrip("/"))
    for key, value in pairs:
        name, _, modifier = key.partition(":")
        if name in RESULT_SUPPORTED or name == "_cursor":
            continue
        try:
            if name in _IGNORED_RESULT:
                raise Unsupported(f"{name} is not supported on the audit trail")
            handler = _HANDLERS.get(name)
            if handler is None:
                raise Unsupported(f"Unknown search parameter '{name}' for AuditEvent")
            criteria.conditions.append(handler(criteria, modifier, value))
        except Unsupported as exc:
            if strict:
                raise FhirError(Category.INVALID, str(exc), "not-supported") from None
            criteria.warnings.append(f"{exc}; the parameter was ignored")
    return criteria


def _no_modifier(name: str, modifier: str, allowed: tuple[str, ...] = ("",)) -> None:
    if modifier not in allowed:
        raise Unsupported(f"Modifier ':{modifier}' is not supported on AuditEvent parameter '{name}'")


def _token(item: str) -> tuple[str | None, str]:
    """`system|code` -> (system, code); `|code` -> ("", code); `code` -> (None, code)."""
    parts = split_escaped(item, "|")
    return (parts[0], "|".join(parts[1:])) if len(parts) > 1 else (None, parts[0])


def _any(conditions: list[Condition]) -> Condition:
    return or_(false(), *conditions)


def _coded(name: str, column: Any, system: str) -> Handler:
    """A code of one code system in a column (a NULL column has no code: :not matches it)."""

    def handle(criteria: Criteria, modifier: str, value: str) -> Condition:
        _no_modifier(name, modifier, ("", "not"))
        negate = modifier == "not"
        subject = func.coalesce(column, "") if negate else column
        alternatives: list[Condition] = []
        for item in split_or(value):
            item_system, code = _token(item)
            if item_system not in (None, "", system) or (item_system == "" and name == "_tag"):
                alternatives.append(false())  # another code system: never recorded here
            else:
                alternatives.append(subject == code if code else column.is_not(None))
        matched = _any(alternatives)
        return not_(matched) if negate else matched

    return handle


def _type(criteria: Criteria, modifier: str, value: str) -> Condition:
    """Every event is a RESTful operation (audit-event-type|rest)."""
    _no_modifier("type", modifier, ("", "not"))
    found = any(_token(i)[0] in (None, EVENT_TYPE_SYSTEM) and _token(i)[1] == "rest" for i in split_or(value))
    return true() if found != (modifier == "not") else false()


def _id(criteria: Criteria, modifier: str, value: str) -> Condition:
    _no_modifier("_id", modifier)
    return e.id.in_(split_or(value))


def _date(name: str) -> Handler:
    def handle(criteria: Criteria, modifier: str, value: str) -> Condition:
        _no_modifier(name, modifier)
        conditions = []
        for raw in split_or(value):
            condition = datetime_condition(date_condition(name, raw, criteria.now_micros))
            conditions.append(range_condition(e.recorded, e.recorded, condition))
        return _any(conditions)

    return handle


def about_patients(ids: list[str]) -> Condition:
    p = audit_patient.alias()
    return select(p.c.event_id).where(p.c.event_id == e.id, p.c.patient_id.in_(ids)).exists()


def _local(criteria: Criteria, reference: str) -> tuple[str | None, str | None]:
    """A reference search value -> (type or None, id); (None, None) for one on another server."""
    if "/" not in reference:
        return None, reference
    res_type, res_id, url = split_reference(reference)
    if url is not None and not (criteria.base_url and url.startswith(criteria.base_url + "/")):
        return None, None
    return res_type, res_id


def _patient(criteria: Criteria, modifier: str, value: str) -> Condition:
    _no_modifier("patient", modifier, ("", "Patient"))
    ids = []
    for item in split_or(value):
        res_type, res_id = _local(criteria, item)
        if res_id and res_type in (None, "Patient"):
            ids.append(res_id)
    return about_patients(ids) if ids else false()


def _entity(criteria: Criteria, modifier: str, value: str) -> Condition:
    """The data the event is about: its patients, or the resource read or written. entity:identifier is
    the request id (a BALP XrequestId entity), which ties an event to the access log."""
    if modifier == "identifier":
        items = [_token(i) for i in split_or(value)]
        return _any([e.request_id == code for system, code in items if system in (None, "")])
    if modifier and not modifier[:1].isupper():
        _no_modifier("entity", modifier)
    alternatives: list[Condition] = []
    for item in split_or(value):
        res_type, res_id = _local(criteria, item)
        res_type = res_type or modifier or None
        if not res_id:
            continue
        if res_type in (None, "Patient"):
            alternatives.append(about_patients([res_id]))
        if res_type is None:
            alternatives.append(e.entity_id == res_id)
        elif res_type != "Patient":
            alternatives.append(and_(e.entity_type == res_type, e.entity_id == res_id))
    return _any(alternatives)


def _agent(criteria: Criteria, modifier: str, value: str) -> Condition:
    """agent:identifier: the user (HPR, fødselsnummer/D-nummer), the client id or an organisation number.
    Agents are recorded by identifier only, so an agent reference matches nothing."""
    _no_modifier("agent", modifier, ("", "identifier"))
    if modifier == "":
        return false()
    alternatives: list[Condition] = []
    for item in split_or(value):
        system, code = _token(item)
        if system is None:
            alternatives.append(
                or_(e.who_value == code, e.client_id == code, e.orgnr == code, e.sub_orgnr == code)
            )
        elif system == CLIENT_ID_SYSTEM:
            alternatives.append(e.client_id == code if code else e.client_id.is_not(None))
        elif system == ORGNR_SYSTEM:
            alternatives.append(or_(e.orgnr == code, e.sub_orgnr == code) if code else e.orgnr.is_not(None))
        elif system:
            alternatives.append(
                and_(e.who_system == system, e.who_value == code) if code else e.who_system == system
            )
    return _any(alternatives)


def _altid(criteria: Criteria, modifier: str, value: str) -> Condition:
    """The user's identity in the token (its subject), recorded without a system."""
    _no_modifier("altid", modifier)
    return _any([e.altid == code for system, code in map(_token, split_or(value)) if system in (None, "")])


_HANDLERS: dict[str, Handler] = {
    "_id": _id,
    "_lastUpdated": _date("_lastUpdated"),
    "date": _date("date"),
    "_tag": _coded("_tag", e.flag, AUDIT_FLAG_SYSTEM),
    "action": _coded("action", e.action, ACTION_SYSTEM),
    "outcome": _coded("outcome", e.outcome, OUTCOME_SYSTEM),
    "subtype": _coded("subtype", e.subtype, INTERACTION_SYSTEM),
    "type": _type,
    "patient": _patient,
    "entity": _entity,
    "agent": _agent,
    "altid": _altid,
}
assert set(_HANDLERS) == SEARCH_PARAMS
