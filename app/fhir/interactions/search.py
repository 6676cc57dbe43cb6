"""search (type, system and compartment level): clauses -> keyset page -> includes -> Bundle bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.bundle import bundle_bytes, entry_bytes
from app.fhir.context import RequestContext
from app.fhir.hooks import ReadEvent, Returned, SearchEvent
from app.fhir.interactions.history import parse_count
from app.fhir.outcome import Category, FhirError, Issue, operation_outcome, outcome_bytes
from app.fhir.registry import ResourceType, patient_compartment
from app.fhir.search import paging
from app.fhir.search.extract import identity_hash
from app.fhir.search.includes import parse_includes, resolve_includes
from app.fhir.search.parse import ParseContext, parse_clauses
from app.fhir.search.subset import parse_elements, parse_summary, subset
from app.fhir.search.valuesets import resolve_value_sets
from app.fhir.service import FhirService
from app.fhir.type_store import TypeStore
from app.store.query import Clause, IdIn, InCompartment, SortKey, TypedClauses
from app.store.repository import SearchRow, StoredResource
from app.store.search_pages import PageQuery
from app.store.visibility import RowFilter

TOTAL_MODES = ("none", "estimate", "accurate")
EVERYTHING_PARAMS = frozenset({"_since", "start", "end"})  # $everything parameters that are not search ones


@dataclass(frozen=True)
class PatientSet:
    """The Patient compartments of several patients at once (bulk export): `ids` None is every patient."""

    ids: tuple[str, ...] | None


@dataclass(frozen=True)
class SearchRequest:
    res_types: tuple[str, ...]
    pairs: list[tuple[str, str]]
    path: str  # relative URL of the search, for Bundle links: "Patient", "Patient/1/Condition", ""
    strict: bool = False
    compartment: tuple[str, str] | None = None  # ("Patient", id)
    # Criteria derived from operation parameters ($everything's _since), parsed like search parameters
    # but kept out of the Bundle links, which repeat the request's own parameters.
    extra_criteria: tuple[tuple[str, str], ...] = ()
    # Only resources in these patients' compartments (each type must be in the Patient compartment).
    patients: PatientSet | None = None


def page_parameters(
    svc: FhirService, pairs: list[tuple[str, str]]
) -> tuple[int, str | None, tuple[str, ...], str, str | None, Any]:
    """The result parameters every search takes: _count, _summary, _elements, _total, and the page
    cursor as (direction, keys after)."""
    count = parse_count(single_param(pairs, "_count"), svc.default_page_size, svc.max_page_size)
    summary = parse_summary(single_param(pairs, "_summary"))
    elements = parse_elements([v for k, v in pairs if k == "_elements"])
    total_mode = single_param(pairs, "_total") or "accurate"
    if total_mode not in TOTAL_MODES:
        raise FhirError(Category.INVALID, f"_total must be one of {', '.join(TOTAL_MODES)}", "value")
    cursor = single_param(pairs, "_cursor")
    direction, after = paging.decode(cursor) if cursor else (None, None)
    return count, summary, elements, total_mode, direction, after


def single_param(pairs: list[tuple[str, str]], name: str) -> str | None:
    values = [v for k, v in pairs if k == name]
    if len(values) > 1:
        raise FhirError(Category.INVALID, f"{name} may be given only once", "value")
    return values[0] if values else None


def _sort_keys(types: list[ResourceType], text: str | None) -> tuple[SortKey, ...]:
    if not text:
        return ()
    keys = []
    for item in text.split(","):
        descending = item.startswith("-")
        code = item.lstrip("-")
        if code in ("_id", "_lastUpdated"):
            keys.append(SortKey("id" if code == "_id" else "lastUpdated", 0, descending))
            continue
        if len(types) != 1 or code not in types[0].search_params:
            raise FhirError(Category.INVALID, f"Cannot sort by '{code}' here", "not-supported")
        param = types[0].search_params[code]
        if param.type not in ("token", "string", "date", "number", "quantity", "uri", "reference"):
            raise FhirError(
                Category.INVALID, f"Cannot sort by {param.type} parameter '{code}'", "not-supported"
            )
        keys.append(SortKey(param.type, identity_hash(types[0].name, code), descending))  # type: ignore[arg-type]
    return tuple(keys)


def compartment_clause(res_type: str, compartment: tuple[str, str]) -> Clause | None:
    """In the Patient compartment: the patient itself, or a resource that references the patient through
    one of its compartment parameters (R4 CompartmentDefinition patient). None: the type is never in it."""
    if res_type == "Patient":
        return IdIn((compartment[1],))
    params = patient_compartment().get(res_type)
    if not params:
        return None
    return InCompartment(tuple(identity_hash(res_type, p) for p in params), compartment[0], (compartment[1],))


def _patient_set_clause(res_type: str, ids: tuple[str, ...] | None) -> tuple[Clause, ...]:
    if res_type == "Patient":
        return () if ids is None else (IdIn(ids),)
    params = patient_compartment().get(res_type)
    if not params:
        raise FhirError(Category.INVALID, f"{res_type} is not in the Patient compartment", "not-supported")
    return (InCompartment(tuple(identity_hash(res_type, p) for p in params), "Patient", ids),)


def _typed_clauses(
    parse_ctx: ParseContext, types: list[ResourceType], request: SearchRequest, request_only: frozenset[str]
) -> list[TypedClauses]:
    criteria = [(k, v) for k, v in request.pairs if k not in request_only] + list(request.extra_criteria)
    per_type = [(t, parse_clauses(parse_ctx, t, criteria, request.strict)) for t in types]
    if request.patients is not None:
        ids = request.patients.ids
        return [TypedClauses(t.name, (*c, *_patient_set_clause(t.name, ids))) for t, c in per_type]
    if request.compartment is None:
        return [TypedClauses(t.name, tuple(c)) for t, c in per_type]
    linked = [(t, c) for t, c in per_type if t.name == "Patient" or patient_compartment().get(t.name)]
    common = {tuple(c) for _, c in linked}
    if len(linked) > 1 and len(common) == 1:
        # $everything and other multi-type compartment searches with type-independent criteria: one
        # membership test over the reference index instead of one subquery per type.
        identities = tuple(
            identity_hash(t.name, p)
            for t, _ in linked
            if t.name != "Patient"
            for p in patient_compartment()[t.name]
        )
        # The identities are per type, so they select the types as well; the patient is added to the
        # same index-driven member list (one IN, no OR that would send the planner to scan by type).
        with_patient = any(t.name == "Patient" for t, _ in linked)
        patient_type, patient_id = request.compartment
        members = InCompartment(identities, patient_type, (patient_id,), include_target=with_patient)
        return [TypedClauses("*", (*common.pop(), members))]
    typed = []
    for rtype, clauses in linked:
        extra = compartment_clause(rtype.name, request.compartment)
        assert extra is not None
        typed.append(TypedClauses(rtype.name, (*clauses, extra)))
    return typed


def search_links(
    request: SearchRequest, ctx: RequestContext, count: int, cursors: dict[str, str]
) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in request.pairs if k != "_cursor"]
    if not any(k == "_count" for k, _ in kept):
        kept.append(("_count", str(count)))
    base = f"{ctx.base_url}/{request.path}" if request.path else ctx.base_url

    def url(extra: list[tuple[str, str]]) -> str:
        query = urlencode(kept + extra)
        return f"{base}?{query}" if query else base

    current = [("_cursor", v) for k, v in request.pairs if k == "_cursor"]
    links = [("self", url(current)), ("first", url([]))]
    for relation in ("previous", "next", "last"):
        if relation in cursors:
            links.append((relation, url([("_cursor", cursors[relation])])))
    return links


def _type_store(svc: FhirService, request: SearchRequest) -> TypeStore | None:
    if len(request.res_types) > 1:
        # A type kept outside the resource tables is searched on its own: among others it would be
        # left out without a word.
        apart = [t for t in request.res_types if svc.resource_type(t).store is not None]
        if apart:
            raise FhirError(
                Category.INVALID,
                f"{apart[0]} is searched on its own (_type={apart[0]}), not together with other types",
                "not-supported",
            )
    if len(request.res_types) != 1 or request.extra_criteria:
        return None
    return svc.resource_type(request.res_types[0]).store


@dataclass(frozen=True)
class SearchPage:
    """One page of a search: the stored resources, and what its Bundle needs besides them."""

    matches: list[StoredResource]
    included: list[StoredResource]
    total: int | None
    cursors: dict[str, str]  # previous / next / last -> cursor value
    count: int
    summary: str | None
    elements: tuple[str, ...]
    warnings: list[str]
    incomplete: list[str]  # what the page leaves out, and why (issue type "incomplete")


async def search_page(
    svc: FhirService, ctx: RequestContext, request: SearchRequest, conn: AsyncConnection | None = None
) -> SearchPage:
    """Run a search; `conn` lets a transaction's GET entries see the transaction's own writes."""
    if _type_store(svc, request) is not None:
        raise FhirError(
            Category.INVALID, f"{request.res_types[0]} is searched through its Bundle", "not-supported"
        )
    # The access check first, before the search takes its connection: it may record an emergency grant,
    # and a request never holds one connection while it waits for another.
    await _before_search(svc, ctx, request, conn)
    async with svc.repo.reading(conn) as reader:
        if _interaction(request) == "everything" and request.compartment is not None:
            await _require_stored_patient(svc, reader, request.compartment[1])
        return await _search(svc, ctx, request, reader)


async def _require_stored_patient(svc: FhirService, conn: AsyncConnection, patient_id: str) -> None:
    """$everything of a patient that is not stored (or deleted) is 404, told only to a caller the access
    check has let through for that patient."""
    stored = await svc.repo.current(conn, "Patient", patient_id)
    if stored is None or stored.deleted:
        raise FhirError(Category.NOT_FOUND, f"Patient/{patient_id} is not known")


async def _before_search(
    svc: FhirService, ctx: RequestContext, request: SearchRequest, conn: AsyncConnection | None
) -> None:
    if svc.hooks.before_read:
        types = [svc.resource_type(t) for t in request.res_types]
        event = ReadEvent(
            ctx,
            _interaction(request),
            types[0].name if len(types) == 1 else None,
            None,
            request.compartment,
            tuple(request.pairs),
            conn,
        )
        await svc.hooks.run_before_read(event)


def _interaction(request: SearchRequest) -> str:
    return "everything" if request.extra_criteria or request.path.endswith("$everything") else "search"


async def search(
    svc: FhirService, ctx: RequestContext, request: SearchRequest, conn: AsyncConnection | None = None
) -> bytes:
    """A search's searchset Bundle (for the HTTP edge and bundle entries)."""
    store = _type_store(svc, request)
    if store is not None:  # a type kept outside the resource tables (the audit trail)
        return await store.search(ctx, request.pairs, request.path, request.strict, request.compartment, conn)
    return searchset_bundle(svc, ctx, request, await search_page(svc, ctx, request, conn))


def searchset_bundle(
    svc: FhirService, ctx: RequestContext, request: SearchRequest, page: SearchPage
) -> bytes:
    entries = [search_entry(svc, ctx, r, "match", page.summary, page.elements) for r in page.matches]
    entries += [search_entry(svc, ctx, r, "include", page.summary, page.elements) for r in page.included]
    issues = [Issue(w, "not-supported", severity="warning") for w in page.warnings]
    issues += [Issue(text, "incomplete", severity="warning") for text in page.incomplete]
    if issues:
        outcome = operation_outcome(issues)
        entries.append(entry_bytes({"search": {"mode": "outcome"}}, outcome_bytes(outcome)))
    return bundle_bytes(
        "searchset", entries, search_links(request, ctx, page.count, page.cursors), page.total
    )


async def search_in(
    svc: FhirService, ctx: RequestContext, conn: AsyncConnection, res_type: str, query: str
) -> bytes:
    """Type-level search from a query string, inside the caller's unit of work (batch/transaction GET)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return await search(svc, ctx, SearchRequest((res_type,), pairs, res_type), conn)


async def _search(
    svc: FhirService, ctx: RequestContext, request: SearchRequest, conn: AsyncConnection
) -> SearchPage:
    types = [svc.resource_type(t) for t in request.res_types]
    pairs = request.pairs
    interaction = _interaction(request)
    visible = svc.hooks.visible(ctx)
    # The matches of a compartment search are all the patient's: the policy may judge them knowing so.
    # Includes and what chains or _has look into are not, and keep the whole filter.
    matched = svc.hooks.visible(ctx, request.compartment) if request.compartment else visible
    inner = None if matched is visible else visible
    count, summary, elements, total_mode, direction, after = page_parameters(svc, pairs)
    includes = parse_includes(svc.registry, pairs)
    parse_ctx = ParseContext(svc.registry, svc.base_url, limits=svc.search_limits)
    typed = _typed_clauses(
        parse_ctx, types, request, EVERYTHING_PARAMS if request.extra_criteria else frozenset()
    )
    typed = [TypedClauses(t.res_type, await resolve_value_sets(svc.repo, conn, t.clauses)) for t in typed]
    sort = _sort_keys(types, single_param(pairs, "_sort"))
    backwards = direction in (paging.PREVIOUS, paging.LAST)

    rows: list[SearchRow] = []
    extra_row = False
    if typed and summary != "count":
        wants_total = total_mode != "none" and direction is None
        query = PageQuery(
            tuple(typed), sort, after, backwards, count + 1, matched, inner, count_all=wants_total
        )
        rows = await svc.repo.search_page(conn, query)
        extra_row = len(rows) > count
        rows = rows[:count]
        if backwards:
            rows.reverse()
    total = await _total(svc, conn, typed, total_mode, summary, direction, rows, extra_row, matched, inner)
    matches = [as_stored(row) for row in rows]
    resolved = await resolve_includes(svc.repo, conn, svc.registry, includes, matches, visible)
    included = resolved.resources
    if svc.hooks.after_search:
        returned = [Returned(r.res_type, r.res_id, r.version, r.pk) for r in (*matches, *included)]
        query_text = urlencode([(k, v) for k, v in pairs if k != "_cursor"])
        await svc.hooks.run_after_search(
            SearchEvent(ctx, conn, interaction, request.res_types, query_text, request.compartment, returned)
        )

    cursors = page_cursors(direction, rows, extra_row)
    incomplete = [resolved.cut] if resolved.cut else []
    return SearchPage(
        matches, included, total, cursors, count, summary, elements, list(parse_ctx.warnings), incomplete
    )


async def _total(
    svc: FhirService,
    conn: AsyncConnection,
    typed: list[TypedClauses],
    mode: str,
    summary: str | None,
    direction: str | None,
    rows: list[SearchRow],
    extra_row: bool,
    visible: RowFilter,
    inner: RowFilter | None,
) -> int | None:
    if not typed:
        return 0
    if mode == "none" and summary != "count":
        return None
    if direction is None and not extra_row and summary != "count":
        return len(rows)  # the first page holds everything: no count query needed
    if rows and rows[0].total is not None:
        return rows[0].total  # counted by the page's own statement
    return await svc.repo.search_count(conn, typed, visible, inner)


def page_cursors(direction: str | None, rows: list[SearchRow], extra_row: bool) -> dict[str, str]:
    if not rows:
        return {}
    forward = direction in (None, paging.NEXT)
    has_next = extra_row if forward else direction == paging.PREVIOUS
    has_previous = direction is not None and (forward or extra_row)
    cursors = {}
    if has_next:
        cursors["next"] = paging.encode(paging.NEXT, rows[-1].keys)
        cursors["last"] = paging.encode(paging.LAST, None)
    if has_previous:
        cursors["previous"] = paging.encode(paging.PREVIOUS, rows[0].keys)
    return cursors


def as_stored(row: SearchRow) -> StoredResource:
    return StoredResource(row.pk, row.res_type, row.res_id, row.version, row.last_updated, False, row.content)


def search_entry(
    svc: FhirService,
    ctx: RequestContext,
    stored: StoredResource,
    mode: str,
    summary: str | None,
    elements: tuple[str, ...],
) -> bytes:
    assert stored.content is not None
    content = stored.content
    if summary not in (None, "false") or elements:
        content = subset(content, svc.registry.types[stored.res_type].model, summary, elements)
    fields: dict[str, Any] = {
        "fullUrl": f"{ctx.base_url}/{stored.res_type}/{stored.res_id}",
        "search": {"mode": mode},
    }
    return entry_bytes(fields, content)


SEARCH_ALL_PAGE_SIZE = 500  # search_all's pages: fewer round trips than the default page size


async def search_all(
    svc: FhirService,
    ctx: RequestContext,
    res_type: str,
    criteria: list[tuple[str, str]],
    limit: int,
    compartment: tuple[str, str] | None = None,
    conn: AsyncConnection | None = None,
) -> list[dict[str, Any]]:
    """Every match of a search as parsed resources, following the next links, for operations that search
    on the caller's behalf (policy and audit apply as to the caller's own search). Strict, since the
    criteria are the operation's. More than `limit` matches is a 413 rather than a partial answer.
    With `conn`, the search sees that unit of work's own writes (a pack deriving data from a write)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        pairs = [*criteria, ("_count", str(SEARCH_ALL_PAGE_SIZE)), ("_total", "none")]
        if cursor:
            pairs.append(("_cursor", cursor))
        request = SearchRequest((res_type,), pairs, res_type, strict=True, compartment=compartment)
        page = await search_page(svc, ctx, request, conn)
        found += [orjson.loads(m.content) for m in page.matches if m.content is not None]
        if len(found) > limit:
            raise FhirError(Category.TOO_LARGE, f"More than {limit} {res_type} resources match", "too-costly")
        cursor = page.cursors.get("next")
        if cursor is None:
            return found
