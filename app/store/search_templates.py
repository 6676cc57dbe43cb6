"""Search statements built once per shape of query, then run with each request's values.

Turning a search's clauses into a SQLAlchemy statement was ~30% of a search's CPU: every request built
hundreds of expression objects (operators, coercions, aliases) to get the same SQL as the request before,
only the values differing. Here a query (a tree of frozen dataclasses from app/store/query.py) is split
into its shape (the classes, the structural fields such as modes, columns and prefixes, and how many
values each tuple holds) and its values. The statement is built once per shape from a copy of the query
whose values are bound parameters (`v0`, `v1`, ...), and later queries of that shape only pass values.

Rules for the builders (app/store/search_sql.py, search_pages.py), which sees bound parameters where values were:
- compare values with columns (`column == value`, `column.in_(values)`), never inspect them in Python;
- a value transformed before it is bound (a LIKE pattern, a range's upper end) goes through `derived`;
- a long tuple of a field in `_EXPANDABLE` arrives as one expanding parameter (`IN` of any length, one
  template), so such fields are only ever used with `IN` (`_equal_or_in`).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam
from sqlalchemy.sql.elements import BindParameter

from app.store.driver_sql import DriverStatement

# Fields that decide the SQL's structure; every other field holds values (or clauses holding values).
_STRUCTURAL = frozenset(
    {
        "column",
        "mode",
        "negate",
        "prefix",
        "unit_column",
        "first_column",
        "second_kind",
        "second_column",
        "table",
        "missing",
        "include_target",
        "kind",
        "descending",
        "backwards",
        "limit",
        "count_all",
        "res_type",  # a type group's, compared with "*" in Python
    }
)
# Tuples longer than this, in these fields, are bound as one expanding parameter: a search by a hundred
# ids gets the template of any long id list instead of a template of its own.
# Metadata of a dataclass field passed through untouched and left out of the shape: the row filters,
# whose shapes the caller gives separately (their values are their own named parameters).
KEPT = MappingProxyType({"search_template": "kept"})


def _kept(field: dataclasses.Field[Any]) -> bool:
    return field.metadata.get("search_template") == "kept"


_EXPANDABLE = frozenset({"ids", "hashes", "value_hashes", "identities", "target_ids", "types"})
_EXPAND_ABOVE = 8
_MAX_TEMPLATES = 1024  # per process and kind; the least recently used goes first

Transform = Callable[[Any], Any]
_DERIVED: ContextVar[list[tuple[str, int, Transform]] | None] = ContextVar("search_derived", default=None)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Template:
    statement: Any  # the SQLAlchemy statement, its values bound parameters v0, v1, ...
    derived: tuple[tuple[str, int, Transform], ...]  # parameter, the value it is computed from, how
    # The statement compiled once per dialect, to run on the DBAPI cursor (driver_sql.py) where the
    # caller can: SQLAlchemy's per-execution work on a large statement (its cache key, a walk of every
    # element) cost the write path's conditional matches more than the database did. None for a
    # statement with an expanding parameter (rendered per execution) or one that is not a SELECT.
    driver: DriverStatement | None

    def parameters(self, values: list[Any]) -> dict[str, Any]:
        params = {f"v{i}": value for i, value in enumerate(values)}
        for name, index, transform in self.derived:
            params[name] = transform(values[index])
        return params


def derived(value: Any, suffix: str, transform: Transform) -> Any:
    """`transform(value)`, bound as a parameter of its own when `value` is a template's parameter."""
    if not isinstance(value, BindParameter):
        return transform(value)
    found = _DERIVED.get()
    if found is None:
        raise RuntimeError("a derived value outside a template being built")
    name = f"{value.key}_{suffix}"
    found.append((name, int(value.key[1:]), transform))
    return bindparam(name)


def split(query: Any) -> tuple[Hashable, list[Any]]:
    """(shape, values) of a query: equal shapes give the same SQL."""
    values: list[Any] = []
    return _shape(query, values, None), values


_VALUE, _STRUCTURE, _KEEP = 0, 1, 2
_PLANS: dict[type, tuple[tuple[str, int], ...]] = {}


def _plan(cls: type) -> tuple[tuple[str, int], ...] | None:
    """The role of each field of a dataclass (None for anything else), worked out once per class."""
    found = _PLANS.get(cls)
    if found is None:
        if not dataclasses.is_dataclass(cls):
            return None
        found = _PLANS[cls] = tuple(
            (f.name, _KEEP if _kept(f) else _STRUCTURE if f.name in _STRUCTURAL else _VALUE)
            for f in dataclasses.fields(cls)
        )
    return found


def _shape(node: Any, values: list[Any], field: str | None) -> Hashable:
    cls = type(node)
    if cls is tuple:
        if field in _EXPANDABLE and len(node) > _EXPAND_ABOVE:
            values.append(list(node))
            return "many"
        return tuple([_shape(item, values, None) for item in node])
    if node is None:
        return None
    plan = _plan(cls)
    if plan is None:
        values.append(node)
        return "v"
    parts: list[Any] = [cls]
    for name, role in plan:
        if role == _VALUE:
            parts.append(_shape(getattr(node, name), values, name))
        elif role == _STRUCTURE:
            parts.append(getattr(node, name))
    return tuple(parts)


def placeholders(query: _T) -> _T:
    """A copy of `query` with each value (in `split`'s order) replaced by its bound parameter."""
    counter = iter(range(1 << 30))
    result: _T = _replace(query, counter, None)
    return result


def _replace(node: Any, counter: Iterator[int], field: str | None) -> Any:
    cls = type(node)
    if cls is tuple:
        if field in _EXPANDABLE and len(node) > _EXPAND_ABOVE:
            return bindparam(f"v{next(counter)}", expanding=True)
        return tuple(_replace(item, counter, None) for item in node)
    if node is None:
        return None
    plan = _plan(cls)
    if plan is None:
        return bindparam(f"v{next(counter)}")
    changes = {name: _replace(getattr(node, name), counter, name) for name, role in plan if role == _VALUE}
    return dataclasses.replace(node, **changes)


class TemplateCache:
    """Statements by shape, each built on its first use from a query of bound parameters."""

    def __init__(self) -> None:
        self._templates: OrderedDict[Hashable, Template] = OrderedDict()

    def statement(self, query: _T, rules: Hashable, build: Callable[[_T], Any]) -> tuple[Any, dict[str, Any]]:
        """The statement for `query` and the parameters for its values. `rules` stands for whatever else
        `build` puts into the SQL (the row filters' shapes): equal `rules` must give equal SQL."""
        template, params = self.template(query, rules, build)
        return template.statement, params

    def template(
        self, query: _T, rules: Hashable, build: Callable[[_T], Any]
    ) -> tuple[Template, dict[str, Any]]:
        """statement()'s template (with its driver statement) and parameters."""
        shape, values = split(query)
        key = (shape, rules)
        template = self._templates.get(key)
        if template is None:
            expanding = any(type(value) is list for value in values)  # split's form of a long list
            template = self._templates[key] = self._make(query, build, expanding)
            if len(self._templates) > _MAX_TEMPLATES:
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(key)
        return template, template.parameters(values)

    @staticmethod
    def _make(query: _T, build: Callable[[_T], Any], expanding: bool) -> Template:
        found: list[tuple[str, int, Transform]] = []
        token = _DERIVED.set(found)
        try:
            statement = build(placeholders(query))
        finally:
            _DERIVED.reset(token)
        driver = None if expanding or not isinstance(statement, Select) else DriverStatement(statement)
        return Template(statement, tuple(found), driver)
