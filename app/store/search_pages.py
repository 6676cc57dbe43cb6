"""Search pages: the statement of one page of a search (its order, the keyset cursor of the page before,
the row filter, and the number of all matches when asked for) and the count statement. Both are built
once per shape of query (search_templates.py) from the clauses' SQL (search_sql.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from app.store.query import SortKey, TypedClauses
from app.store.search_sql import MAX_TEXT, SUBJECT, base_filter, one_statement, selective, statement_alias
from app.store.search_templates import KEPT, Template, TemplateCache
from app.store.tables import (
    idx_date,
    idx_number,
    idx_quantity,
    idx_reference,
    idx_string,
    idx_token,
    idx_uri,
    resource,
)
from app.store.visibility import RowFilter, is_unrestricted, parameters

_MAX_NUMBER = 2**62

# -- ordering -------------------------------------------------------------------------------------------
_SORT_TABLE = {
    "token": (idx_token, "code"),
    "string": (idx_string, "value_norm"),
    "number": (idx_number, "value"),
    "quantity": (idx_quantity, "value"),
    "uri": (idx_uri, "value"),
    "reference": (idx_reference, "target_id"),
}


def sort_expression(subject: Any, key: SortKey) -> ColumnElement[Any]:
    """A scalar per subject row; missing values map to a sentinel that sorts last in either direction."""
    if key.kind == "id":
        return subject.c.res_id  # type: ignore[no-any-return]
    if key.kind == "lastUpdated":
        return subject.c.last_updated  # type: ignore[no-any-return]
    sentinel: float | str
    if key.kind == "date":
        t = statement_alias(idx_date)
        column, agg, sentinel = (
            (t.c.high, func.max, -_MAX_NUMBER) if key.descending else (t.c.low, func.min, _MAX_NUMBER)
        )
    else:
        table, name = _SORT_TABLE[key.kind]
        t = statement_alias(table)
        column = t.c[name]
        agg = func.max if key.descending else func.min
        numeric = key.kind in ("number", "quantity")
        low_end, high_end = (-1e308, 1e308) if numeric else ("", MAX_TEXT)
        sentinel = low_end if key.descending else high_end
    scalar = (
        select(agg(column))
        .where(t.c.res_pk == subject.c.pk, t.c.hash_identity == key.identity)
        .scalar_subquery()
    )
    return func.coalesce(scalar, sentinel)


@dataclass(frozen=True)
class PageQuery:
    typed: tuple[TypedClauses, ...]
    sort: tuple[SortKey, ...]
    after: tuple[Any, ...] | None  # keyset cursor: the sort values and pk of the last row seen
    backwards: bool  # walk the order in reverse (prev / last pages)
    limit: int
    # The caller's row visibility (access policy), applied in SQL to the rows returned and counted.
    visible: RowFilter = field(metadata=KEPT)
    # What chains and _has may look into; None: the same as `visible`. Conditional matching counts every
    # resource (uniqueness) but must not let the caller probe hidden ones through an inner query.
    inner: RowFilter | None = field(default=None, metadata=KEPT)
    # The caller wants the number of all matches: a first page of a selective search counts them in its
    # own statement (counts_all), others leave it to count_statement.
    count_all: bool = False

    @property
    def scope(self) -> RowFilter:
        return self.inner if self.inner is not None else self.visible


def subject_types(typed: Sequence[TypedClauses]) -> frozenset[str] | None:
    """The types the rows of a search can have; None when a group is of any type ("*")."""
    if any(group.res_type == "*" for group in typed):
        return None
    return frozenset(group.res_type for group in typed)


def keyset(
    exprs: Sequence[ColumnElement[Any]], descending: Sequence[bool], values: Sequence[Any]
) -> ColumnElement[bool]:
    """Rows strictly after `values` in the order (expr1, expr2, ...)."""
    alternatives = []
    for i, (expr, desc, value) in enumerate(zip(exprs, descending, values, strict=True)):
        equal_before = [e == v for e, v in zip(exprs[:i], values[:i], strict=True)]
        step = expr < value if desc else expr > value
        alternatives.append(and_(*equal_before, step))
    return or_(*alternatives)


_PAGES = TemplateCache()
_COUNTS = TemplateCache()


def page_statement(query: PageQuery) -> tuple[Select[Any], dict[str, Any]]:
    """A page's statement (built once per shape of query: search_templates.py) and its parameters, the
    row filters' included."""
    template, params = _page_template(query)
    return template.statement, params


async def match_rows(conn: AsyncConnection, query: PageQuery) -> list[Any]:
    """The rows of a page without sort keys (conditional matching, reference lookups: the write path's
    searches), each indexable by column position; run on the DBAPI cursor where the statement allows.
    (Sort keys can select numbers, whose conversion asyncpg decides by the column's type in the result.)"""
    if query.sort or query.count_all:
        raise ValueError("match_rows() is for pages without sort keys or a count")
    template, params = _page_template(query)
    driver = template.driver
    if driver is not None and driver.runs_on(conn.dialect):
        return await driver.all(conn, params)
    return list((await conn.execute(template.statement, params)).all())


def _page_template(query: PageQuery) -> tuple[Template, dict[str, Any]]:
    inner = None if query.inner is None else query.inner.shape
    template, params = _PAGES.template(query, (query.visible.shape, inner), _built_page)
    params.update(parameters(query.visible, query.inner))
    return template, params


def _built_page(query: PageQuery) -> Select[Any]:
    with one_statement():
        return _page_statement(query)


def _page_statement(query: PageQuery) -> Select[Any]:
    subject = SUBJECT
    # With a selective clause the matches are few: "pk + 0" keeps the planner from walking the primary
    # key index in order and filtering row by row until the page is full, which is fast when matches are
    # dense but scanned ~90,000 rows for a patient's $everything (the matches of one patient sit together).
    pk_key = subject.c.pk + 0 if selective(query.typed) else subject.c.pk
    keys = [sort_expression(subject, k) for k in query.sort] + [pk_key]
    descending = [k.descending for k in query.sort] + [False]
    if query.backwards:
        descending = [not d for d in descending]
    where = [base_filter(subject, query.typed, query.scope)]
    if not is_unrestricted(query.visible):
        where.append(query.visible.condition(subject, subject_types(query.typed)))
    if query.after is not None:
        where.append(keyset(keys, descending, query.after))
    order = [k.desc() if d else k.asc() for k, d in zip(keys, descending, strict=True)]
    labelled = [k.label(f"k{i}") for i, k in enumerate(keys)]
    if not counts_all(query):
        return select(*_columns(subject), *labelled).where(*where).order_by(*order).limit(query.limit)
    # The page with the number of all matches: the window counts every row the filters let through
    # while the page is picked from them, so the matches are walked once, not again by count_statement
    # ($everything of a patient with 3,000 resources: 26 + 22-31 ms in PostgreSQL -> 24-28 ms). The
    # window runs over narrow rows; the page's content is read after the LIMIT (over whole rows the
    # window's buffer made it 36-42 ms).
    page = (
        select(subject.c.pk, *labelled, func.count().over().label("total"))
        .where(*where)
        .order_by(*order)
        .limit(query.limit)
        .subquery("page")
    )
    row = _PAGE_ROW
    page_keys = [page.c[f"k{i}"] for i in range(len(keys))]
    return (
        select(*_columns(row), *page_keys, page.c.total)
        .join_from(page, row, row.c.pk == page.c.pk)
        .order_by(*[k.desc() if d else k.asc() for k, d in zip(page_keys, descending, strict=True)])
    )


_PAGE_ROW = resource.alias("page_row")


def _columns(row: Any) -> tuple[Any, ...]:
    return (row.c.pk, row.c.res_type, row.c.res_id, row.c.version, row.c.last_updated, row.c.content)


def counts_all(query: PageQuery) -> bool:
    """Whether the page's statement also gives the number of all matches (as its last column): asked
    for, on a first page, and the search selective (its matches few enough to walk whole: over a type's
    every row the window would buffer them all, where count_statement only counts)."""
    return query.count_all and query.after is None and not query.backwards and selective(query.typed)


def count_statement(
    typed: Sequence[TypedClauses], visible: RowFilter, inner: RowFilter | None = None
) -> tuple[Select[Any], dict[str, Any]]:
    """The statement counting what the type groups match among the `visible` rows, and its parameters;
    chains and _has look into what `inner` (default: `visible`) lets through, as in PageQuery."""
    scope = visible if inner is None else inner

    def build(groups: tuple[TypedClauses, ...]) -> Select[Any]:
        subject = SUBJECT
        with one_statement():
            where = [base_filter(subject, groups, scope)]
        if not is_unrestricted(visible):
            where.append(visible.condition(subject, subject_types(groups)))
        return select(func.count()).select_from(subject).where(*where)

    shape = (visible.shape, None if inner is None else inner.shape)
    statement, params = _COUNTS.statement(tuple(typed), shape, build)
    params.update(parameters(visible, inner))
    return statement, params
