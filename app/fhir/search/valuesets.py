"""token:in and token:not-in against value sets stored on this server.

The value set is found by canonical URL (or as ValueSet/id) and expanded from what it holds: an
expansion, or compose.include with explicit concepts or whole code systems. Includes with filters or
other value sets, and excludes, cannot be expanded here and are refused (400), never half-applied.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.outcome import Category, FhirError
from app.fhir.search.hashing import hash64
from app.fhir.search.parse import system_code_hashes
from app.store.query import AnyOf, Chain, Clause, Has, Not, TokenHashIn, UriMatch, ValueSetIn
from app.store.repository import Repository
from app.store.visibility import Unrestricted

# Value sets used by :in / :not-in are terminology the server applies for everyone, not patient data.
TERMINOLOGY = Unrestricted("value sets for :in and :not-in are terminology, not patient data")


async def _find_value_set(repo: Repository, conn: AsyncConnection, ref: str) -> dict[str, Any]:
    if ref.startswith("ValueSet/"):
        stored = await repo.current(conn, "ValueSet", ref.split("/", 1)[1])
        pks = [stored.pk] if stored and not stored.deleted else []
    else:
        url = ref.split("|", 1)[0]
        clause = UriMatch(hash64("ValueSet", "url"), "eq", (url,), (hash64("ValueSet", "url", url),))
        pks = await repo.find(conn, "ValueSet", [clause], 2, TERMINOLOGY)
    if len(pks) != 1:
        raise FhirError(
            Category.INVALID,
            f"Value set '{ref[:120]}' is {'ambiguous' if pks else 'not known'} here",
            "not-found",
        )
    (stored_vs,) = await repo.current_by_pks(conn, pks, TERMINOLOGY)
    assert stored_vs.content is not None
    value_set: dict[str, Any] = orjson.loads(stored_vs.content)
    return value_set


def _expand(value_set: dict[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    """(system, code) pairs and whole systems that the value set contains."""
    codes: list[tuple[str, str]] = []
    systems: list[str] = []

    def walk(contains: list[dict[str, Any]]) -> None:
        for item in contains:
            if item.get("system") and item.get("code"):
                codes.append((item["system"], item["code"]))
            walk(item.get("contains") or [])

    if value_set.get("expansion"):
        walk(value_set["expansion"].get("contains") or [])
        return codes, systems
    compose = value_set.get("compose") or {}
    if compose.get("exclude"):
        raise FhirError(
            Category.INVALID, "Value sets with compose.exclude cannot be expanded here", "not-supported"
        )
    for include in compose.get("include") or []:
        if include.get("filter") or include.get("valueSet") or not include.get("system"):
            raise FhirError(
                Category.INVALID,
                "Value sets with filters or imported value sets cannot be expanded here",
                "not-supported",
            )
        concepts = include.get("concept")
        if concepts:
            codes.extend((include["system"], c["code"]) for c in concepts if c.get("code"))
        else:
            systems.append(include["system"])
    return codes, systems


async def _token_clause(repo: Repository, conn: AsyncConnection, clause: ValueSetIn) -> Clause:
    codes, systems = _expand(await _find_value_set(repo, conn, clause.value_set))
    groups: list[tuple[Clause, ...]] = []
    if codes:
        groups.append((system_code_hashes(clause.res_type, clause.param, codes),))
    if systems:
        groups.append(
            (TokenHashIn("hash_sys", tuple(hash64(clause.res_type, clause.param, s) for s in systems)),)
        )
    positive: Clause = AnyOf(tuple(groups)) if groups else TokenHashIn("hash_sys_value", ())
    return Not(positive) if clause.negate else positive


async def resolve_value_sets(
    repo: Repository, conn: AsyncConnection, clauses: tuple[Clause, ...]
) -> tuple[Clause, ...]:
    """Replace every ValueSetIn (also inside chains, _has, :not and OR groups) by token clauses."""
    out: list[Clause] = []
    for clause in clauses:
        if isinstance(clause, ValueSetIn):
            out.append(await _token_clause(repo, conn, clause))
        elif isinstance(clause, Chain):
            out.append(
                Chain(
                    clause.identity, clause.target_types, await resolve_value_sets(repo, conn, clause.inner)
                )
            )
        elif isinstance(clause, Has):
            out.append(
                Has(clause.source_type, clause.identity, await resolve_value_sets(repo, conn, clause.inner))
            )
        elif isinstance(clause, Not):
            (inner,) = await resolve_value_sets(repo, conn, (clause.clause,))
            out.append(Not(inner))
        elif isinstance(clause, AnyOf):
            out.append(AnyOf(tuple([await resolve_value_sets(repo, conn, g) for g in clause.groups])))
        else:
            out.append(clause)
    return tuple(out)
