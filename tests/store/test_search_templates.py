"""Search statements built once per shape: a query's shape and values, the statement built from bound
parameters, derived values, long lists as one expanding parameter, and the row filters kept apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import column, select, table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import BindParameter

from app.store.query import (
    Chain,
    Clause,
    DateMatch,
    IdIn,
    RangeCondition,
    ReferenceMatch,
    StringMatch,
    TokenHashIn,
    TypedClauses,
)
from app.store.search_pages import PageQuery, count_statement, page_statement
from app.store.search_templates import KEPT, TemplateCache, derived, placeholders, split
from app.store.visibility import EVERY_ROW, Unrestricted

T = table("t", column("a"), column("b"))


def test_a_query_splits_into_its_shape_and_its_values_in_order() -> None:
    query = TypedClauses("Patient", (TokenHashIn("hash_value", (11, 12)), StringMatch(7, "prefix", ("kar",))))
    shape, values = split(query)
    assert values == [11, 12, 7, "kar"]
    # the same structure with other values has the same shape; another mode or count does not
    assert (
        split(TypedClauses("Patient", (TokenHashIn("hash_value", (1, 2)), StringMatch(3, "prefix", ("x",)))))[
            0
        ]
        == shape
    )
    assert (
        split(TypedClauses("Patient", (TokenHashIn("hash_value", (1, 2)), StringMatch(3, "exact", ("x",)))))[
            0
        ]
        != shape
    )
    assert (
        split(TypedClauses("Patient", (TokenHashIn("hash_value", (1,)), StringMatch(3, "prefix", ("x",)))))[0]
        != shape
    )
    # a type group's type is structure: the SQL compares it with "*" in Python
    assert split(TypedClauses("Observation", query.clauses))[0] != shape


def test_placeholders_bind_each_value_by_its_position_in_split() -> None:
    query = Chain(5, ("Patient",), (DateMatch(8, (RangeCondition("ge", 1.0, 2.0),)),))
    _shape, values = split(query)
    bound = placeholders(query)
    assert isinstance(bound.identity, BindParameter)
    assert bound.identity.key == "v0"
    assert [p.key for p in bound.target_types] == ["v1"]
    inner = bound.inner[0]
    assert isinstance(inner, DateMatch)
    assert inner.conditions[0].prefix == "ge"  # structure stays as it was
    assert (inner.identity.key, inner.conditions[0].low.key, inner.conditions[0].high.key) == (
        "v2",
        "v3",
        "v4",
    )
    assert values == [5, "Patient", 8, 1.0, 2.0]


def test_a_long_list_is_one_expanding_parameter_so_its_length_is_not_shape() -> None:
    many = IdIn(tuple(f"id{i}" for i in range(20)))
    more = IdIn(tuple(f"id{i}" for i in range(50)))
    assert split(many)[0] == split(more)[0]
    assert split(many)[1] == [[f"id{i}" for i in range(20)]]
    bound = placeholders(many).ids
    assert isinstance(bound, BindParameter)
    assert bound.expanding
    # a short list keeps one parameter per value (an equality for one, a plain IN for a few)
    assert split(IdIn(("a",)))[0] != split(IdIn(("a", "b")))[0]


@dataclass(frozen=True)
class _Probe:
    name: str
    rule: Any = field(default=None, metadata=KEPT)


def test_kept_fields_are_neither_shape_nor_values_and_pass_through_untouched() -> None:
    marker = object()
    assert split(_Probe("x", marker)) == split(_Probe("x", "something else"))
    assert split(_Probe("x", marker))[1] == ["x"]
    assert placeholders(_Probe("x", marker)).rule is marker


def test_the_cache_builds_once_per_shape_and_binds_derived_values() -> None:
    cache = TemplateCache()
    builds: list[_Probe] = []

    def build(query: _Probe) -> Any:
        builds.append(query)
        return select(T.c.a).where(T.c.b == query.name, T.c.a < derived(query.name, "up", str.upper))

    first, params = cache.statement(_Probe("kari"), "rules", build)
    assert params == {"v0": "kari", "v0_up": "KARI"}
    again, params = cache.statement(_Probe("ola"), "rules", build)
    assert again is first
    assert params == {"v0": "ola", "v0_up": "OLA"}
    assert len(builds) == 1
    other, _params = cache.statement(_Probe("ola"), "other rules", build)
    assert other is not first
    assert len(builds) == 2
    sql = str(first.compile(dialect=sqlite.dialect()))
    assert "t.b = ?" in sql
    assert "t.a < ?" in sql


def test_derived_outside_a_template_applies_the_transform() -> None:
    assert derived("kari", "up", str.upper) == "KARI"


def test_a_derived_parameter_outside_a_template_being_built_is_refused() -> None:
    with pytest.raises(RuntimeError):
        derived(placeholders(_Probe("kari")).name, "up", str.upper)


def _page(typed: TypedClauses, limit: int = 10) -> PageQuery:
    return PageQuery((typed,), (), None, False, limit, EVERY_ROW)


def test_page_statements_are_shared_by_queries_of_one_shape() -> None:
    one, params_one = page_statement(_page(TypedClauses("Patient", (StringMatch(7, "contains", ("a_b%",)),))))
    two, params_two = page_statement(_page(TypedClauses("Patient", (StringMatch(9, "contains", ("ola",)),))))
    assert one is two
    # the LIKE pattern escapes the value's own wildcards, as SQLAlchemy's autoescape did
    assert params_one["v0"] == 7
    assert params_one["v1_like"] == "%a/_b/%%"
    assert params_two["v1_like"] == "%ola%"
    # another page size or row filter shape is another statement
    assert (
        page_statement(_page(TypedClauses("Patient", (StringMatch(9, "contains", ("o",)),)), 20))[0]
        is not one
    )
    unrestricted_again = Unrestricted("another reason")
    query = PageQuery(
        (TypedClauses("Patient", (StringMatch(9, "contains", ("o",)),)),),
        (),
        None,
        False,
        10,
        unrestricted_again,
    )
    assert page_statement(query)[0] is one  # the reason is not part of the SQL


def test_count_statements_bind_values_and_render_on_both_dialects() -> None:
    typed = [TypedClauses("Observation", (DateMatch(3, (RangeCondition("eq", 1.5, 2.5),)),))]
    statement, params = count_statement(typed, EVERY_ROW)
    assert params == {"v0": 3, "v1": 1.5, "v2": 2.5}
    for dialect in (sqlite.dialect(), postgresql.dialect()):  # type: ignore[no-untyped-call]
        compiled = statement.compile(dialect=dialect)
        assert {"v0", "v1", "v2"} <= set(compiled.binds)


def test_selective_clauses_of_a_group_are_one_intersection() -> None:
    def sql(*clauses: Clause) -> str:
        query = _page(TypedClauses("Observation", clauses))
        return str(page_statement(query)[0].compile(dialect=sqlite.dialect()))

    both = sql(ReferenceMatch("hash_target", (1,)), TokenHashIn("hash_value", (2,)))
    assert both.count("INTERSECT") == 1
    # a :not clause is a NOT IN of its own, a lone clause a plain IN
    negated = sql(ReferenceMatch("hash_target", (1,)), TokenHashIn("hash_value", (2,), negate=True))
    assert "INTERSECT" not in negated
    assert "NOT IN" in negated
    assert "INTERSECT" not in sql(ReferenceMatch("hash_target", (1,)))
