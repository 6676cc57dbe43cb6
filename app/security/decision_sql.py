"""The single-resource access decision as statements built once (read, vread, instance history, writes).

Reads are the hot path: building the policy's SQL per request cost milliseconds of SQLAlchemy work, so
these statements are constructed at import and only bound per request. They state the same rules as
policy.Policy (which composes them into searches), for a resource whose patients are already known.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, exists, false, func, literal, not_, or_, select, true, union_all
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from app.security.tables import access_fact, emergency_access, party_identity
from app.store.tables import UtcDateTime, idx_date, idx_reference, resource

NOW = bindparam("now", type_=UtcDateTime())
PARTIES: BindParameter[Any] = bindparam("parties", expanding=True)
PATIENTS: BindParameter[Any] = bindparam("patients", expanding=True)


def as_ref(t: Any) -> ColumnElement[str]:
    return literal("ref:") + t.c.ref_type + literal("/") + t.c.ref_id  # type: ignore[no-any-return]


def _mine(column: Any) -> ColumnElement[bool]:
    """`column` names the caller: directly, through a resource that is them, or a role of those."""
    first, second = party_identity.alias(), party_identity.alias()
    direct = select(as_ref(first)).where(first.c.party.in_(PARTIES))
    roles = select(as_ref(second)).where(second.c.party.in_(direct))
    return or_(column.in_(PARTIES), column.in_(direct), column.in_(roles))


def _active(t: Any) -> ColumnElement[bool]:
    return and_(
        or_(t.c.valid_from.is_(None), t.c.valid_from <= NOW),
        or_(t.c.valid_until.is_(None), t.c.valid_until > NOW),
    )


def _care() -> ColumnElement[bool]:
    f = access_fact.alias()
    return exists().where(f.c.kind == "care", f.c.patient_id.in_(PATIENTS), _active(f), _mine(f.c.party))


def _emergency() -> ColumnElement[bool]:
    e = emergency_access.alias()
    return exists().where(e.c.hpr == bindparam("hpr"), e.c.patient_id.in_(PATIENTS), e.c.expires_at > NOW)


def _blocked() -> ColumnElement[bool]:
    b = access_fact.alias()
    return exists().where(
        b.c.kind == "block",
        b.c.target_type == bindparam("res_type"),
        b.c.target_id == bindparam("res_id"),
        _active(b),
        _mine(b.c.party),
    )


def _reserved() -> ColumnElement[bool]:
    """Core-journal content (the caller decides whether the type is) of a reserved patient, not written by
    the caller's organisation."""
    r, a = access_fact.alias(), access_fact.alias()
    reserved = exists().where(r.c.kind == "reservation", r.c.patient_id.in_(PATIENTS), _active(r))
    own = exists().where(a.c.kind == "author", a.c.source_pk == bindparam("pk"), _mine(a.c.party))
    return and_(reserved, not_(own))


def citizen_patients() -> Any:
    """Patient ids a citizen may see: their own, proxies (fullmakt), children under 12 (birthdate bound)."""
    me, proxy, parent = party_identity.alias(), access_fact.alias(), access_fact.alias()
    p, d = resource.alias(), idx_date.alias()
    under_twelve = (
        select(d.c.id)
        .select_from(p.join(d, d.c.res_pk == p.c.pk))
        .where(
            p.c.res_type == "Patient",
            p.c.res_id == parent.c.patient_id,
            d.c.hash_identity == bindparam("birthdate_identity"),
            d.c.low > bindparam("cutoff_micros"),
        )
        .exists()
    )
    return union_all(
        select(me.c.ref_id).where(me.c.ref_type == "Patient", me.c.party.in_(PARTIES)),
        select(proxy.c.patient_id).where(proxy.c.kind == "proxy", _mine(proxy.c.party), _active(proxy)),
        select(parent.c.patient_id).where(
            parent.c.kind == "parent", _mine(parent.c.party), _active(parent), under_twelve
        ),
    ).subquery()


def _citizen_allowed() -> ColumnElement[bool]:
    allowed = citizen_patients()
    return exists().where(allowed.c[0].in_(PATIENTS))


# Columns: allowed, emergency, blocked, reserved.
DECIDE = {
    "personnel": select(_care(), _emergency(), _blocked(), _reserved()),
    "citizen": select(_citizen_allowed(), false(), false(), false()),
    "system": select(true(), false(), _blocked(), _reserved()),
}

# coalesce(): the rows of one resource are found through (res_pk, hash_identity); without table statistics
# SQLite would otherwise walk the (target_type, target_id) index over every reference to any patient.
PATIENTS_OF = (
    select(idx_reference.c.target_id)
    .where(
        idx_reference.c.res_pk == bindparam("pk"),
        idx_reference.c.hash_identity.in_(bindparam("identities", expanding=True)),
        func.coalesce(idx_reference.c.target_type, "") == "Patient",
        idx_reference.c.target_id.is_not(None),
    )
    .distinct()
)
