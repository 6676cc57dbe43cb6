"""The access policy's SQL, stated once.

Every builder takes its values as bound parameters or SQL expressions: policy.Policy composes the pieces
once per principal shape (and resource type, for single-resource decisions) into statements whose text
never changes between executions (building this SQL per request cost milliseconds, and so did expanding
lists rendered again on every execution).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Select,
    String,
    and_,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement

from app.security.tables import access_fact, emergency_access, party_identity
from app.store.tables import idx_date, idx_reference, resource


def as_ref(t: Any) -> ColumnElement[str]:
    return literal("ref:") + t.c.ref_type + literal("/") + t.c.ref_id  # type: ignore[no-any-return]


def mine(column: Any, parties: Any) -> ColumnElement[bool]:
    """`column` names the caller (`parties`: their own party strings): directly, through a resource that
    is them (their Organization, Practitioner, Patient, RelatedPerson), or through a PractitionerRole."""
    if isinstance(parties, list | tuple) and not parties:
        return false()
    first, second = party_identity.alias(), party_identity.alias()
    direct = select(as_ref(first)).where(first.c.party.in_(parties))
    roles = select(as_ref(second)).where(second.c.party.in_(direct))
    # One IN over the caller's whole set of party strings: an index on (kind, party) then finds the
    # caller's few facts. Three INs joined by OR left PostgreSQL only a scan of every fact of the kind
    # (10,000 care relations on 122 Synthea patients: 0.8 ms, run again for each row a search filtered).
    own = [select(literal(party, String()) if isinstance(party, str) else party) for party in parties]
    found: ColumnElement[bool] = column.in_(union_all(*own, direct, roles))
    return found


def active(t: Any, now: Any) -> ColumnElement[bool]:
    return and_(
        or_(t.c.valid_from.is_(None), t.c.valid_from <= now),
        or_(t.c.valid_until.is_(None), t.c.valid_until > now),
    )


def care_patients(parties: Any, now: Any, among: Any = None) -> Select[Any]:
    """Patients with an active care relation to the caller (only those `among`, if given)."""
    f = access_fact.alias()
    query = select(f.c.patient_id).where(f.c.kind == "care", active(f, now), mine(f.c.party, parties))
    return query if among is None else query.where(f.c.patient_id.in_(among))


def emergency_patients(hpr: Any, now: Any, among: Any = None) -> Select[Any]:
    e = emergency_access.alias()
    query = select(e.c.patient_id).where(e.c.hpr == hpr, e.c.expires_at > now)
    return query if among is None else query.where(e.c.patient_id.in_(among))


def citizen_patients(parties: Any, now: Any, birthdate_identity: Any, cutoff_micros: Any) -> Any:
    """Patient ids a citizen may see: their own, proxies (fullmakt), and children born after the cutoff
    (under 12) whom a RelatedPerson names them parent of."""
    me, proxy, parent = party_identity.alias(), access_fact.alias(), access_fact.alias()
    p, d = resource.alias(), idx_date.alias()
    under_twelve = (
        select(d.c.id)
        .select_from(p.join(d, d.c.res_pk == p.c.pk))
        .where(
            p.c.res_type == "Patient",
            p.c.res_id == parent.c.patient_id,
            d.c.hash_identity == birthdate_identity,
            d.c.low > cutoff_micros,
        )
        .exists()
    )
    return union_all(
        select(me.c.ref_id).where(me.c.ref_type == "Patient", me.c.party.in_(parties)),
        select(proxy.c.patient_id).where(
            proxy.c.kind == "proxy", mine(proxy.c.party, parties), active(proxy, now)
        ),
        select(parent.c.patient_id).where(
            parent.c.kind == "parent", mine(parent.c.party, parties), active(parent, now), under_twelve
        ),
    ).subquery()


def blocked(res_type: Any, res_id: Any, parties: Any, now: Any) -> ColumnElement[bool]:
    """A consent block names this resource for the caller's organisation."""
    b = access_fact.alias()
    return exists().where(
        b.c.kind == "block",
        b.c.target_type == res_type,
        b.c.target_id == res_id,
        active(b, now),
        mine(b.c.party, parties),
    )


def reserved_patients(now: Any, among: Any = None) -> Select[Any]:
    r = access_fact.alias()
    query = select(r.c.patient_id).where(r.c.kind == "reservation", active(r, now))
    return query if among is None else query.where(r.c.patient_id.in_(among))


def linked_to(pk: Any, patients: Any, identities: Sequence[int]) -> ColumnElement[bool]:
    """A Binary, Bundle or Device (`pk`) is the data of one of `patients`: named by a subject fact, or
    through the resource its context fact names (that resource's Patient-compartment references)."""
    f, g, r, c = access_fact.alias(), access_fact.alias(), resource.alias(), idx_reference.alias()
    direct = exists().where(f.c.source_pk == pk, f.c.kind == "subject", f.c.patient_id.in_(patients))
    through = exists().where(
        g.c.source_pk == pk,
        g.c.kind == "context",
        r.c.res_type == g.c.target_type,
        r.c.res_id == g.c.target_id,
        c.c.res_pk == r.c.pk,
        in_constants(c.c.hash_identity, identities),
        c.c.target_type == "Patient",
        c.c.target_id.in_(patients),
    )
    return or_(direct, through)


def linked(pk: Any) -> ColumnElement[bool]:
    """Facts link the resource (`pk`) to patients: it is patient data, even if none can be told."""
    f = access_fact.alias()
    return exists().where(f.c.source_pk == pk, in_constants(f.c.kind, ("subject", "context")))


def referenced_patients(of: Callable[[Any], ColumnElement[bool]], identities: Sequence[int]) -> Select[Any]:
    """The patients resources reference through the parameters `identities` (the Patient compartment's),
    entered through the resources' own index rows (`of(res_pk)` picks them)."""
    r = idx_reference.alias()
    return select(r.c.target_id.label("patient_id")).where(
        of(r.c.res_pk),
        in_constants(r.c.hash_identity, identities),
        not_indexed(r.c.target_type) == "Patient",
        r.c.target_id.is_not(None),
    )


def linked_patients(
    of: Callable[[Any], ColumnElement[bool]], identities: Sequence[int]
) -> tuple[Select[Any], Select[Any]]:
    """The patients facts link resources to: directly, and through their context (two selects to unite
    with others: SQLite takes no nested compound selects). `of(source_pk)` picks the resources (one, or
    a search's results); the selects enter through them."""
    f, g, r, c = access_fact.alias(), access_fact.alias(), resource.alias(), idx_reference.alias()
    direct = select(f.c.patient_id).where(
        of(f.c.source_pk), not_indexed(f.c.kind) == "subject", f.c.patient_id.is_not(None)
    )
    through = (
        select(c.c.target_id)
        .select_from(
            g.join(r, and_(r.c.res_type == g.c.target_type, r.c.res_id == g.c.target_id)).join(
                c, c.c.res_pk == r.c.pk
            )
        )
        .where(
            of(g.c.source_pk),
            not_indexed(g.c.kind) == "context",
            in_constants(c.c.hash_identity, identities),
            not_indexed(c.c.target_type) == "Patient",
            c.c.target_id.is_not(None),
        )
    )
    return direct, through


def not_indexed(column: Any) -> ColumnElement[Any]:
    """`column` in a form no index serves, for statements that must enter through the few rows of the
    resources they are about. SQLite has no statistics, and without them took (target_type,
    target_id >) for the better entry: it walked every reference to a Patient, 24 ms of a secured
    search's 29 on 8 loaded bundles, where the resources' own rows take microseconds."""
    return func.coalesce(column, "")


def own_entry(pk: Any, parties: Any) -> ColumnElement[bool]:
    """The caller's organisation wrote this (core-journal) resource."""
    a = access_fact.alias()
    return exists().where(a.c.kind == "author", a.c.source_pk == pk, mine(a.c.party, parties))


# -- the single-resource decision ----------------------------------------------------------------------
def subject_patients(
    pk: Any, self_patient: Any, identities: Sequence[int], linked_identities: Sequence[int] | None
) -> Select[Any]:
    """The patients one resource (`pk`) is about: its Patient-compartment references (`identities`: those
    of its type), itself for a Patient (`self_patient`, else None), and for a Binary, Bundle or Device
    (`linked_identities` given) those facts link it to, all found through the resource's own rows
    (not_indexed)."""
    parts: list[Select[Any]] = []
    if identities:
        parts.append(referenced_patients(lambda res_pk: res_pk == pk, identities))
    if self_patient is not None:
        parts.append(select(self_patient.label("patient_id")))
    if linked_identities is not None:
        parts.extend(linked_patients(lambda source_pk: source_pk == pk, linked_identities))
    if not parts:
        return select(literal(None, String()).label("patient_id")).where(false())
    if len(parts) == 1:
        return parts[0].distinct()
    return union(*parts)  # type: ignore[return-value]


def in_constants(column: Any, values: Iterable[int | str]) -> ColumnElement[bool]:
    """`column IN (...)` with `values` written into the SQL text as one element: the same text on every
    execution. (A list of plain values becomes an expanding parameter, which SQLAlchemy renders into the
    statement again on every execution: for the hundred index identities of the Patient compartment that
    cost more CPU than the rest of a secured read; and one element per value made every copy of a search's
    row filter longer.) Only integers and plain names (resource types, fact kinds)."""
    texts: list[str] = []
    for value in values:
        if isinstance(value, int):
            texts.append(str(int(value)))
        elif _NAME.fullmatch(value):
            texts.append(f"'{value}'")
        else:
            raise ValueError(f"not a constant for SQL text: {value!r}")
    if not texts:
        return false()
    return column.op("IN", is_comparison=True)(literal_column(f"({', '.join(texts)})"))  # type: ignore[no-any-return]


def constant(value: str) -> ColumnElement[str]:
    """A plain name (a resource type) written into the SQL text."""
    if not _NAME.fullmatch(value):
        raise ValueError(f"not a constant for SQL text: {value!r}")
    return literal_column(f"'{value}'", String())


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
