"""RFC 6902 JSON Patch engine as a pure function, including the RFC's Appendix A examples."""

from __future__ import annotations

from typing import Any

import pytest

from app.fhir.outcome import Category, FhirError
from app.fhir.patch.json_patch import (
    apply_json_patch,
    format_pointer,
    json_equal,
    parse_json_patch,
    parse_pointer,
)


def patched(doc: Any, ops: list[Any]) -> Any:
    return apply_json_patch(doc, parse_json_patch(ops))


def failure(doc: Any, ops: list[Any]) -> FhirError:
    with pytest.raises(FhirError) as caught:
        patched(doc, ops)
    return caught.value


def test_add_object_member_and_array_element() -> None:
    assert patched({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}]) == {
        "foo": "bar",
        "baz": "qux",
    }
    doc = {"foo": ["bar", "baz"]}
    assert patched(doc, [{"op": "add", "path": "/foo/1", "value": "qux"}]) == {"foo": ["bar", "qux", "baz"]}
    assert patched(doc, [{"op": "add", "path": "/foo/-", "value": "end"}]) == {"foo": ["bar", "baz", "end"]}
    assert patched(doc, [{"op": "add", "path": "/foo/2", "value": "end"}]) == {"foo": ["bar", "baz", "end"]}
    nested = patched({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}])
    assert nested == {"foo": "bar", "child": {"grandchild": {}}}
    array_value = patched({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}])
    assert array_value == {"foo": ["bar", ["abc", "def"]]}


def test_add_replaces_an_existing_member_and_the_root() -> None:
    assert patched({"a": 1}, [{"op": "add", "path": "/a", "value": 2}]) == {"a": 2}
    assert patched({"a": 1}, [{"op": "add", "path": "", "value": {"b": 1}}]) == {"b": 1}


def test_remove() -> None:
    assert patched({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}]) == {"foo": "bar"}
    doc = {"foo": ["bar", "qux", "baz"]}
    assert patched(doc, [{"op": "remove", "path": "/foo/1"}]) == {"foo": ["bar", "baz"]}


def test_replace() -> None:
    doc = {"baz": "qux", "foo": "bar"}
    assert patched(doc, [{"op": "replace", "path": "/baz", "value": "boo"}]) == {"baz": "boo", "foo": "bar"}
    assert patched({"a": [1, 2]}, [{"op": "replace", "path": "/a/0", "value": 9}]) == {"a": [9, 2]}
    assert failure(doc, [{"op": "replace", "path": "/nope", "value": 1}]).status == 422


def test_move_and_copy() -> None:
    doc = {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}
    moved = patched(doc, [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])
    assert moved == {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}
    items = {"foo": ["all", "grass", "cows", "eat"]}
    moved_item = patched(items, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}])
    assert moved_item == {"foo": ["all", "cows", "eat", "grass"]}
    copied = patched({"a": {"b": [1]}}, [{"op": "copy", "from": "/a/b", "path": "/c"}])
    assert copied == {"a": {"b": [1]}, "c": [1]}
    copied["c"].append(2)
    assert copied["a"]["b"] == [1], "copy must not alias the source"


def test_move_into_own_child_is_refused() -> None:
    error = failure({"a": {"b": {}}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}])
    assert error.status == 422
    assert "own children" in error.message


def test_test_op() -> None:
    doc = {"baz": "qux", "foo": ["a", 2, "c"]}
    ok = [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}]
    assert patched(doc, ok) == doc
    error = failure(doc, [{"op": "test", "path": "/baz", "value": "bar"}])
    assert error.category is Category.UNPROCESSABLE
    assert "operation 0 (test /baz)" in error.message
    assert failure({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}]).status == 422
    assert failure({"a": True}, [{"op": "test", "path": "/a", "value": 1}]).status == 422


def test_pointer_escapes() -> None:
    assert parse_pointer("/a~1b/m~0n/~01") == ("a/b", "m~n", "~1")
    assert format_pointer(("a/b", "m~n")) == "/a~1b/m~0n"
    doc = {"/": 9, "~1": 10}
    assert patched(doc, [{"op": "test", "path": "/~01", "value": 10}]) == doc
    assert patched({"a/b": 1}, [{"op": "remove", "path": "/a~1b"}]) == {}


def test_bad_paths_are_unprocessable() -> None:
    doc = {"foo": ["a"], "bar": "x"}
    for ops in (
        [{"op": "add", "path": "/baz/bat", "value": "qux"}],  # parent missing (RFC A.12)
        [{"op": "remove", "path": "/nope"}],
        [{"op": "remove", "path": "/foo/1"}],
        [{"op": "add", "path": "/foo/5", "value": 1}],
        [{"op": "add", "path": "/foo/01", "value": 1}],  # leading zero is not an index
        [{"op": "replace", "path": "/foo/-", "value": 1}],
        [{"op": "add", "path": "/bar/x", "value": 1}],  # a string has no members
        [{"op": "remove", "path": ""}],
        [{"op": "copy", "from": "/nope", "path": "/x"}],
    ):
        error = failure(doc, ops)
        assert error.status == 422, ops
        assert error.category is Category.UNPROCESSABLE


def test_malformed_documents_are_bad_requests() -> None:
    for document in (
        {"op": "add", "path": "/a", "value": 1},  # not an array
        ["add"],
        [{"op": "delete", "path": "/a"}],
        [{"op": "add", "path": "/a"}],  # no value
        [{"path": "/a", "value": 1}],
        [{"op": "remove"}],
        [{"op": "remove", "path": "a"}],  # not a pointer
        [{"op": "remove", "path": "/a~2"}],  # bad escape
        [{"op": "move", "path": "/a"}],  # no from
        [{"op": "test", "path": 3, "value": 1}],
    ):
        with pytest.raises(FhirError) as caught:
            parse_json_patch(document)
        assert caught.value.status == 400, document


def test_unknown_members_are_ignored_and_null_is_a_value() -> None:
    assert (
        patched({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}])["baz"] == "qux"
    )
    assert patched({"a": 1}, [{"op": "replace", "path": "/a", "value": None}]) == {"a": None}


def test_patch_is_atomic_and_never_mutates_its_input() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    ops = [{"op": "remove", "path": "/a/0"}, {"op": "add", "path": "/b/d", "value": 2}]
    assert patched(doc, ops) == {"a": [2], "b": {"c": 1, "d": 2}}
    assert doc == {"a": [1, 2], "b": {"c": 1}}
    failure(doc, [*ops, {"op": "test", "path": "/b/c", "value": 2}])
    assert doc == {"a": [1, 2], "b": {"c": 1}}


def test_json_equal_follows_json_not_python() -> None:
    assert json_equal({"a": [1, "x"]}, {"a": [1.0, "x"]})
    assert not json_equal(True, 1)
    assert not json_equal(0, False)
    assert not json_equal([1], [1, 2])
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal("1", 1)
    assert json_equal(None, None)
