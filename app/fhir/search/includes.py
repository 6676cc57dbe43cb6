"""_include and _revinclude (with :iterate), resolved through the reference index."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.outcome import Category, FhirError
from app.fhir.registry import Registry
from app.fhir.search.extract import identity_hash
from app.store.repository import Repository, StoredResource
from app.store.visibility import RowFilter

MAX_INCLUDED = 1000  # per page: a guard against an include fan-out that would never finish
MAX_ITERATIONS = 4


@dataclass(frozen=True)
class IncludeSpec:
    source_type: str
    param: str  # "*" for every reference parameter
    target_type: str | None
    iterate: bool
    reverse: bool


def parse_includes(registry: Registry, pairs: list[tuple[str, str]]) -> list[IncludeSpec]:
    specs = []
    for name, value in pairs:
        base, _, modifier = name.partition(":")
        if base not in ("_include", "_revinclude"):
            continue
        if modifier not in ("", "iterate", "recurse"):
            raise FhirError(Category.INVALID, f"Unknown modifier on {name}", "value")
        for item in value.split(","):
            parts = item.split(":")
            if len(parts) not in (2, 3) or registry.get(parts[0]) is None:
                raise FhirError(
                    Category.INVALID, f"{base} value '{item[:80]}' is not Type:param[:targetType]", "value"
                )
            rtype = registry.types[parts[0]]
            if parts[1] != "*" and (
                parts[1] not in rtype.search_params or rtype.search_params[parts[1]].type != "reference"
            ):
                raise FhirError(
                    Category.INVALID,
                    f"{base}: '{parts[1]}' is not a reference parameter of {parts[0]}",
                    "value",
                )
            specs.append(
                IncludeSpec(
                    parts[0],
                    parts[1],
                    parts[2] if len(parts) == 3 else None,
                    modifier in ("iterate", "recurse"),
                    base == "_revinclude",
                )
            )
    return specs


def _identities(registry: Registry, spec: IncludeSpec) -> list[int]:
    rtype = registry.types[spec.source_type]
    if spec.param == "*":
        return [
            identity_hash(rtype.name, p.code) for p in rtype.search_params.values() if p.type == "reference"
        ]
    return [identity_hash(rtype.name, spec.param)]


@dataclass(frozen=True)
class Included:
    resources: list[StoredResource]
    cut: str | None = None  # why some were left out (the page's caps), to tell the client


NOTHING_INCLUDED = Included([])


async def resolve_includes(
    repo: Repository,
    conn: AsyncConnection,
    registry: Registry,
    specs: list[IncludeSpec],
    matches: list[StoredResource],
    visible: RowFilter,
) -> Included:
    """Resources to add with search mode "include"; never one that is already a match, never one the
    caller may not see (`visible` is applied in the queries, so nothing hidden is fetched). A page holds
    at most MAX_INCLUDED of them and follows :iterate MAX_ITERATIONS deep; when a cap leaves some out,
    `cut` says so, since a client must never take a partial page for the whole."""
    if not specs or not matches:
        return NOTHING_INCLUDED
    seen = {(m.res_type, m.res_id) for m in matches}
    included: list[StoredResource] = []
    frontier = list(matches)
    cut: str | None = None
    for round_number in range(MAX_ITERATIONS):
        active = [s for s in specs if round_number == 0 or s.iterate]
        found: list[StoredResource] = []
        for spec in active:
            sources = (
                [r for r in frontier if r.res_type == spec.source_type] if not spec.reverse else frontier
            )
            if not sources:
                continue
            if spec.reverse:
                pks = await repo.referencing(
                    conn,
                    _identities(registry, spec),
                    [(r.res_type, r.res_id) for r in sources],
                    MAX_INCLUDED + 1,
                    visible,
                )
                if len(pks) > MAX_INCLUDED:
                    cut = _cap_message()
                found.extend(await repo.current_by_pks(conn, pks[:MAX_INCLUDED], visible=visible))
            else:
                targets = await repo.reference_targets(
                    conn,
                    [r.pk for r in sources],
                    _identities(registry, spec),
                    [spec.target_type] if spec.target_type else [],
                )
                found.extend(await repo.current_by_keys(conn, targets, visible))
        new = []
        for resource in found:
            key = (resource.res_type, resource.res_id)
            if key not in seen and not resource.deleted:
                seen.add(key)
                new.append(resource)
        included.extend(new)
        if len(included) > MAX_INCLUDED:
            cut = _cap_message()
        if not new or cut or not any(s.iterate for s in specs):
            break
        if round_number == MAX_ITERATIONS - 1:
            cut = f":iterate followed references {MAX_ITERATIONS} levels deep and stopped; there may be more"
        frontier = new
    return Included(included[:MAX_INCLUDED], cut)


def _cap_message() -> str:
    return (
        f"_include/_revinclude: this page holds the first {MAX_INCLUDED:,} included resources and leaves "
        "out the rest; search with a smaller _count to get them all"
    )
