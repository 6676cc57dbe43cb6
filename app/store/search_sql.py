"""Search clauses -> SQL. Every clause becomes `subject.pk IN (index subquery)`, which both SQLite and
PostgreSQL run as a single index-driven semi-join instead of a probe per candidate row. The statements
that hold them (a page, a count) are search_pages.py's."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import (
    Select,
    String,
    Table,
    and_,
    false,
    func,
    intersect,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from app.store.query import (
    AnyOf,
    Chain,
    Clause,
    CompositeAlternative,
    CompositeMatch,
    DateMatch,
    Has,
    IdIn,
    InCompartment,
    LastUpdatedMatch,
    Missing,
    Not,
    NumberMatch,
    QuantityMatch,
    RangeCondition,
    ReferenceMatch,
    StringMatch,
    TokenHashIn,
    TypedClauses,
    TypeIn,
    UriMatch,
)
from app.store.search_templates import derived
from app.store.tables import (
    idx_composite,
    idx_date,
    idx_number,
    idx_quantity,
    idx_reference,
    idx_string,
    idx_token,
    idx_uri,
    resource,
)
from app.store.visibility import RowFilter, is_unrestricted

TABLES = {
    t.name: t for t in (idx_token, idx_string, idx_date, idx_number, idx_quantity, idx_uri, idx_reference)
}
MAX_TEXT = "\U0010ffff"

# Aliases made once and handed out in order while one statement is built, so the n-th use of a table in a
# statement is always the same alias object. A fresh alias builds a proxy of every column the first time
# its `.c` is read: that was 13% of a secured search's CPU. And SQLAlchemy's compiled cache sees the same
# names each time.
_ALIASES: dict[tuple[str, int], Any] = {}
_USES: ContextVar[dict[str, int] | None] = ContextVar("search_sql_alias_uses", default=None)
SUBJECT = resource.alias("subject")


def statement_alias(table: Table) -> Any:
    uses = _USES.get()
    if uses is None:  # outside one_statement(): a fresh alias
        return table.alias()
    n = uses.get(table.name, 0)
    uses[table.name] = n + 1
    found = _ALIASES.get((table.name, n))
    if found is None:
        found = _ALIASES[(table.name, n)] = table.alias(f"{table.name}_{n}")
    return found


@contextmanager
def one_statement() -> Iterator[None]:
    """While one statement is built: statement_alias hands out the same aliases in the same order."""
    token = _USES.set({})
    try:
        yield
    finally:
        _USES.reset(token)


def range_condition(low: Any, high: Any, cond: RangeCondition) -> ColumnElement[bool]:
    """R4 search prefixes on an indexed range [low, high] against the search range [cond.low, cond.high]."""
    contained = and_(low >= cond.low, high <= cond.high)
    match cond.prefix:
        case "eq":
            return contained
        case "ne":
            return not_(contained)
        case "gt":
            return high > cond.high  # type: ignore[no-any-return]
        case "lt":
            return low < cond.low  # type: ignore[no-any-return]
        case "ge":
            return or_(high > cond.high, contained)
        case "le":
            return or_(low < cond.low, contained)
        case "sa":
            return low > cond.high  # type: ignore[no-any-return]
        case "eb":
            return high < cond.low  # type: ignore[no-any-return]
        case _:  # ap: overlaps the (already widened) search range
            return and_(low <= cond.high, high >= cond.low)


def _pks(table: Any, *where: ColumnElement[bool]) -> Select[Any]:
    return select(table.c.res_pk).where(*where)


def _scoped(scope: RowFilter, subject: Any) -> list[ColumnElement[bool]]:
    """The caller's rule on a resource a chain or _has looks into: an inner query must not answer about
    resources the caller may not see (it would be an oracle)."""
    return [] if is_unrestricted(scope) else [scope.condition(subject)]


def _subquery(clause: Clause, scope: RowFilter) -> tuple[Select[Any], bool]:
    """(SELECT res_pk ..., negate) for a clause on index rows; `scope` limits what chains look into."""
    if isinstance(clause, TokenHashIn):
        t = statement_alias(idx_token)
        if clause.column == "hash_sys_value":  # not indexed: found by code, filtered by system
            by_code = _equal_or_in(t.c.hash_value, clause.value_hashes)
            return _pks(t, by_code, _equal_or_in(t.c.hash_sys_value, clause.hashes)), clause.negate
        return _pks(t, _equal_or_in(t.c[clause.column], clause.hashes)), clause.negate
    if isinstance(clause, StringMatch):
        t = statement_alias(idx_string)
        if clause.mode == "exact":  # an exact value's normalised form is in the index, the value beside it
            normalized = _equal_or_in(t.c.value_norm, clause.values)
            exact = _equal_or_in(t.c.value_exact, clause.exact)
            return _pks(t, t.c.hash_identity == clause.identity, normalized, exact), False
        if clause.mode == "contains":
            likes = [
                t.c.value_norm.like(derived(v, "like", _contains_pattern), escape="/") for v in clause.values
            ]
            return _pks(t, t.c.hash_identity == clause.identity, or_(*likes)), False
        ranges = [and_(t.c.value_norm >= v, t.c.value_norm < _text_above(v)) for v in clause.values]
        return _pks(t, t.c.hash_identity == clause.identity, or_(*ranges)), False
    if isinstance(clause, DateMatch | NumberMatch):
        t = statement_alias(idx_date if isinstance(clause, DateMatch) else idx_number)
        # "+ 0": range clauses run as a correlated EXISTS probed through (res_pk, hash_identity); without
        # table statistics SQLite otherwise picks the (hash_identity, low) index and scans a range per row.
        if isinstance(clause, DateMatch):
            low, high = t.c.low + 0, t.c.high + 0
        else:
            low = high = t.c.value + 0
        conds = [range_condition(low, high, c) for c in clause.conditions]
        return _pks(t, t.c.hash_identity == clause.identity, or_(*conds)), False
    if isinstance(clause, QuantityMatch):
        t = statement_alias(idx_quantity)
        alternatives = []
        for c in clause.conditions:
            cond = range_condition(t.c.value + 0, t.c.value + 0, c.range)
            if c.unit_column is not None:
                cond = and_(t.c[c.unit_column] == c.unit_hash, cond)
            alternatives.append(cond)
        return _pks(t, t.c.hash_identity == clause.identity, or_(*alternatives)), False
    if isinstance(clause, UriMatch):
        t = statement_alias(idx_uri)
        if clause.mode == "eq":
            return _pks(t, _equal_or_in(t.c.hash_value, clause.hashes)), False
        if clause.mode == "below":  # stored uri starts with the search value
            conds = [t.c.value.like(derived(v, "like", _prefix_pattern), escape="/") for v in clause.values]
        else:  # above: the search value starts with the stored uri
            conds = [type_coerce(v, String()).startswith(t.c.value) for v in clause.values]
        return _pks(t, t.c.hash_identity == clause.identity, or_(*conds)), False
    if isinstance(clause, ReferenceMatch):
        t = statement_alias(idx_reference)
        return _pks(t, _equal_or_in(t.c[clause.column], clause.hashes)), False
    if isinstance(clause, CompositeMatch):
        t = statement_alias(idx_composite)
        alternatives = [_composite_alternative(t, alt) for alt in clause.alternatives]
        return _pks(t, t.c.hash_identity == clause.identity, or_(*alternatives)), False
    if isinstance(clause, Missing):
        t = statement_alias(TABLES[clause.table])
        return _pks(t, t.c.hash_identity == clause.identity), clause.missing
    if isinstance(clause, InCompartment):
        t, target = statement_alias(idx_reference), statement_alias(resource)
        where = [t.c.target_type == clause.target_type, _equal_or_in(t.c.hash_identity, clause.identities)]
        chosen = [target.c.res_type == clause.target_type]
        if clause.target_ids is not None:
            where.insert(1, _equal_or_in(t.c.target_id, clause.target_ids))
            chosen.append(_equal_or_in(target.c.res_id, clause.target_ids))
        members: Any = _pks(t, *where)
        if clause.include_target:
            members = members.union_all(select(target.c.pk).where(*chosen))
        return members, False
    if isinstance(clause, Chain):
        r, target = statement_alias(idx_reference), statement_alias(resource)
        joined = r.join(target, and_(target.c.res_type == r.c.target_type, target.c.res_id == r.c.target_id))
        where = [r.c.hash_identity == clause.identity, target.c.deleted.is_(False)]
        if clause.target_types:
            where.append(target.c.res_type.in_(clause.target_types))
        where.extend(conditions(target, clause.inner, scope))
        where.extend(_scoped(scope, target))
        return select(r.c.res_pk).select_from(joined).where(*where), False
    raise TypeError(f"not an index clause: {clause!r}")


def _text_above(prefix: Any) -> Any:
    """A bound above every text that starts with `prefix` (for a range scan of an index on text)."""
    return derived(prefix, "above", _above)


def _above(prefix: str) -> str:
    return prefix + MAX_TEXT


def _escaped(value: str) -> str:
    """`value` as literal text in a LIKE pattern with ESCAPE '/' (what SQLAlchemy's autoescape does)."""
    return value.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _contains_pattern(value: str) -> str:
    return f"%{_escaped(value)}%"


def _prefix_pattern(value: str) -> str:
    return f"{_escaped(value)}%"


def _equal_or_in(column: Any, values: Sequence[Any] | BindParameter[Any]) -> ColumnElement[bool]:
    """One value as an equality (what the planner and the index serve best, and a plain bound parameter
    where IN's list is rendered into the SQL at every execution), several as IN."""
    if isinstance(values, BindParameter):  # a long list, bound as one expanding parameter
        return column.in_(values)  # type: ignore[no-any-return]
    if not values:
        return false()
    return column == values[0] if len(values) == 1 else column.in_(values)  # type: ignore[no-any-return]


def _composite_alternative(t: Any, alt: CompositeAlternative) -> ColumnElement[bool]:
    parts = [t.c[alt.first_column] == alt.first_hash]
    if alt.second_kind == "token" and alt.second_column:
        parts.append(t.c[alt.second_column] == alt.second_hash)
    elif alt.second_kind == "quantity" and alt.second_range is not None:
        parts.append(range_condition(t.c.second_number, t.c.second_number, alt.second_range))
        if alt.second_column:
            parts.append(t.c[alt.second_column] == alt.second_hash)
    elif alt.second_kind == "date" and alt.second_range is not None:
        parts.append(range_condition(t.c.second_low, t.c.second_high, alt.second_range))
    elif alt.second_kind == "string":
        prefix = alt.second_prefix
        parts.append(and_(t.c.second_string >= prefix, t.c.second_string < _text_above(prefix)))
    return and_(*parts)


def condition(subject: Any, clause: Clause, scope: RowFilter) -> ColumnElement[bool]:
    """`clause` on the rows of `subject`; resources that chains and _has look into are limited by `scope`."""
    if isinstance(clause, IdIn):
        return _equal_or_in(subject.c.res_id, clause.ids)
    if isinstance(clause, TypeIn):
        return subject.c.res_type.in_(clause.types)  # type: ignore[no-any-return]
    if isinstance(clause, LastUpdatedMatch):
        column = subject.c.last_updated
        return or_(*[range_condition(column, column, c) for c in clause.conditions])
    if isinstance(clause, Not):
        return not_(condition(subject, clause.clause, scope))
    if isinstance(clause, AnyOf):
        # false() first: an AnyOf without alternatives (a reference value like "Patient/" that names no
        # target) matches nothing; a bare or_() rendered as no condition at all and matched everything.
        return or_(false(), *[and_(true(), *conditions(subject, group, scope)) for group in clause.groups])
    if isinstance(clause, Has):
        r, source = statement_alias(idx_reference), statement_alias(resource)
        joined = r.join(source, source.c.pk == r.c.res_pk)
        inner = (
            select(r.c.target_id)
            .select_from(joined)
            .where(
                r.c.hash_identity == clause.identity,
                r.c.target_type == subject.c.res_type,
                source.c.res_type == clause.source_type,
                source.c.deleted.is_(False),
                *conditions(source, clause.inner, scope),
                *_scoped(scope, source),
            )
        )
        return subject.c.res_id.in_(inner)  # type: ignore[no-any-return]
    query, negate = _subquery(clause, scope)
    if isinstance(clause, _RANGE_CLAUSES) and not negate:
        # Range clauses (date >= 2015 ...) can match most rows of a parameter. As a correlated EXISTS they
        # are probed per candidate that the selective clauses left (index on res_pk, hash_identity),
        # instead of materialising every matching row first (which SQLite does for IN).
        return query.where(query.selected_columns[0] == subject.c.pk).exists()
    return subject.c.pk.not_in(query) if negate else subject.c.pk.in_(query)  # type: ignore[no-any-return]


_RANGE_CLAUSES = (DateMatch, NumberMatch, QuantityMatch)
_SELECTIVE_CLAUSES = (IdIn, TokenHashIn, ReferenceMatch, InCompartment, Chain, Has, StringMatch, UriMatch)


def selective(typed: Sequence[TypedClauses]) -> bool:
    """Whether every type group has an equality-like clause that pins down few rows."""
    return all(any(isinstance(c, _SELECTIVE_CLAUSES) or _selective_any(c) for c in g.clauses) for g in typed)


def _selective_any(clause: Clause) -> bool:
    return isinstance(clause, AnyOf) and all(
        any(isinstance(c, _SELECTIVE_CLAUSES) or _selective_any(c) for c in group) for group in clause.groups
    )


def conditions(subject: Any, clauses: Sequence[Clause], scope: RowFilter) -> list[ColumnElement[bool]]:
    return [condition(subject, c, scope) for c in clauses]


def base_filter(subject: Any, typed: Sequence[TypedClauses], scope: RowFilter) -> ColumnElement[bool]:
    # With a selective clause the type column must not drive the plan (without statistics SQLite walks
    # every resource of the type and tests the clauses row by row); coalesce() takes it off the index.
    type_column = func.coalesce(subject.c.res_type, "") if selective(typed) else subject.c.res_type
    groups = [
        and_(
            *([] if group.res_type == "*" else [type_column == group.res_type]),
            *_intersected(subject, group.clauses, scope),
        )
        for group in typed
    ]
    return and_(subject.c.deleted.is_(False), or_(*groups) if len(groups) > 1 else groups[0])


# Clauses whose matches are one plain SELECT of primary keys (never a compound: SQLite takes no
# parenthesised compound inside another).
_INTERSECTABLE = (TokenHashIn, StringMatch, UriMatch, ReferenceMatch, Chain)


def _intersected(subject: Any, clauses: Sequence[Clause], scope: RowFilter) -> list[ColumnElement[bool]]:
    """The clauses of one type group, the selective ones as one `pk IN (a INTERSECT b ...)`.

    As separate `pk IN (a) AND pk IN (b)` PostgreSQL joins them one by one and, misjudging how many rows
    each matches (a patient's Observations: it assumes a handful), probes the other indexes row by row
    for every match of the first: a patient with 3,000 Observations searched by a common code took
    14-24 ms. The intersection reads each clause's primary keys once and hashes them: 4.4 ms. (That
    search, Observation?subject=X&code=Y, is the commonest there is.)"""
    sets: list[Select[Any]] = []
    first: list[ColumnElement[bool]] = []
    rest: list[ColumnElement[bool]] = []
    # A compartment search whose other lists are all of values (tokens, strings, uris), which may be
    # shared by every resource of the type (every pregnancy's type, every active Condition): the
    # patient's compartment drives the plan (SQLite drives it from the first list of primary keys) and
    # those lists are probed per row through their (res_pk, hash_identity) index instead of built whole
    # (Patient/x/EpisodeOfCare?type=: 29 -> 0.2 ms at 5,000 pregnancies). A reference list names
    # particular resources, as few as the compartment's, and keeps the intersection.
    compartment_drives = any(
        isinstance(c, InCompartment) and c.target_ids is not None for c in clauses
    ) and not any(isinstance(c, ReferenceMatch | Chain) for c in clauses)
    for clause in clauses:
        if isinstance(clause, _INTERSECTABLE) and not (isinstance(clause, TokenHashIn) and clause.negate):
            query, _negate = _subquery(clause, scope)
            sets.append(query)
        elif compartment_drives and isinstance(clause, InCompartment):
            first.append(condition(subject, clause, scope))
        else:
            rest.append(condition(subject, clause, scope))
    if first:
        probes = [query.where(query.selected_columns[0] == subject.c.pk).exists() for query in sets]
        return [*first, *probes, *rest]
    if len(sets) > 1:
        return [subject.c.pk.in_(intersect(*sets)), *rest]
    return [subject.c.pk.in_(sets[0]), *rest] if sets else rest
