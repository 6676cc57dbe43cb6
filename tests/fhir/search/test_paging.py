"""Paging with _count: first/next/previous/last links, every match exactly once, and stability of the
keyset cursors while other clients write (both databases)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from tests.conftest import BASE
from tests.fhir.search.helpers import Resource, ids, link, patient, put, put_all, require_link, search

FAMILIES = ["Berg", "Dahl", "Eide", "Fjeld", "Haug", "Lie", "Moe"]


@pytest.fixture
async def seven(client: httpx.AsyncClient) -> httpx.AsyncClient:
    # Ids in a different order than the family names, so that the sort is what orders the pages.
    await put_all(client, *(patient(f"p{7 - i}", family=family) for i, family in enumerate(FAMILIES)))
    return client


async def follow(client: httpx.AsyncClient, url: str) -> Resource:
    assert url.startswith(f"{BASE}/")
    return await search(client, url)


async def walk(client: httpx.AsyncClient, first: Resource) -> list[list[str]]:
    """The match ids of every page, following next links from `first`."""
    pages = [ids(first)]
    bundle = first
    while (next_url := link(bundle, "next")) is not None:
        bundle = await follow(client, next_url)
        pages.append(ids(bundle))
        assert len(pages) < 20, "next links never end"
    return pages


async def test_walking_next_visits_every_match_once(seven: httpx.AsyncClient) -> None:
    first = await search(seven, "Patient", {"_count": "2", "_sort": "family"})
    assert first["total"] == 7
    pages = await walk(seven, first)
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert [i for page in pages for i in page] == ["p7", "p6", "p5", "p4", "p3", "p2", "p1"]


async def test_walking_next_in_default_order(seven: httpx.AsyncClient) -> None:
    pages = await walk(seven, await search(seven, "Patient", {"_count": "3"}))
    visited = [i for page in pages for i in page]
    assert sorted(visited) == sorted(f"p{i}" for i in range(1, 8))
    assert len(visited) == 7


async def test_links_keep_the_search_and_page_size(seven: httpx.AsyncClient) -> None:
    first = await search(seven, "Patient", {"family": "b,d,e,f,h", "_count": "2", "_sort": "-family"})
    assert ids(first) == ["p3", "p4"]
    assert first["total"] == 5
    self_url, first_url, next_url = (require_link(first, r) for r in ("self", "first", "next"))
    assert link(first, "previous") is None
    for url in (self_url, first_url, next_url):
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BASE}/Patient"
        query = dict(parse_qsl(parts.query))
        assert query["family"] == "b,d,e,f,h"
        assert query["_count"] == "2"
        assert query["_sort"] == "-family"
    assert "_cursor" in dict(parse_qsl(urlsplit(next_url).query))
    assert ids(await follow(seven, first_url)) == ["p3", "p4"]
    second = await follow(seven, next_url)
    assert ids(second) == ["p5", "p6"]
    assert second["total"] == 5
    assert ids(await follow(seven, require_link(second, "self"))) == ["p5", "p6"]


async def test_previous_goes_back_to_the_same_page(seven: httpx.AsyncClient) -> None:
    first = await search(seven, "Patient", {"_count": "2", "_sort": "family"})
    second = await follow(seven, require_link(first, "next"))
    third = await follow(seven, require_link(second, "next"))
    assert ids(third) == ["p3", "p2"]
    back_to_second = await follow(seven, require_link(third, "previous"))
    assert ids(back_to_second) == ids(second) == ["p5", "p4"]
    back_to_first = await follow(seven, require_link(back_to_second, "previous"))
    assert ids(back_to_first) == ids(first)
    assert link(back_to_first, "previous") is None
    # And forward again from a page reached backwards.
    assert ids(await follow(seven, require_link(back_to_first, "next"))) == ids(second)


async def test_last_link_gives_the_last_page(seven: httpx.AsyncClient) -> None:
    first = await search(seven, "Patient", {"_count": "3", "_sort": "family"})
    last_url = link(first, "last")
    assert last_url is not None
    last = await follow(seven, last_url)
    # A keyset "last" page is the last _count matches.
    assert ids(last) == ["p3", "p2", "p1"]
    assert link(last, "next") is None
    assert last["total"] == 7
    before_last = await follow(seven, require_link(last, "previous"))
    assert ids(before_last) == ["p6", "p5", "p4"]


async def test_the_only_page_has_no_next_previous_or_last(seven: httpx.AsyncClient) -> None:
    bundle = await search(seven, "Patient", {"_count": "10"})
    assert len(ids(bundle)) == 7
    assert link(bundle, "next") is None
    assert link(bundle, "previous") is None
    assert link(bundle, "last") is None
    assert link(bundle, "self") is not None
    assert link(bundle, "first") is not None


async def test_pages_are_stable_while_others_write(seven: httpx.AsyncClient) -> None:
    first = await search(seven, "Patient", {"_count": "2", "_sort": "family"})
    second = await follow(seven, require_link(first, "next"))
    assert ids(first) + ids(second) == ["p7", "p6", "p5", "p4"]
    # New resources sorting before the current page, and one sorting after it.
    await put(seven, patient("new-early", family="Aas"))
    await put(seven, patient("new-middle", family="Dybwad"))  # between Dahl and Eide: before page 3
    await put(seven, patient("new-late", family="Nilsen"))  # after Moe: on a later page
    # A resource of a later page is deleted.
    assert (await seven.delete("/Patient/p2")).status_code in (200, 204)
    rest = await walk(seven, await follow(seven, require_link(second, "next")))
    later = [i for page in rest for i in page]
    assert later == ["p3", "p1", "new-late"]
    seen = ids(first) + ids(second) + later
    assert len(seen) == len(set(seen))


async def test_an_update_that_moves_a_resource_is_seen_once(seven: httpx.AsyncClient) -> None:
    first = await search(seven, "Patient", {"_count": "3", "_sort": "family"})
    assert ids(first) == ["p7", "p6", "p5"]
    # p6 (Dahl) was seen; renaming it to sort at the end makes it appear again, once, where it now sorts.
    await put(seven, patient("p6", family="Ås"))
    rest = [i for page in await walk(seven, await follow(seven, require_link(first, "next"))) for i in page]
    assert rest == ["p4", "p3", "p2", "p1", "p6"]


async def test_count_zero_gives_only_the_total(seven: httpx.AsyncClient) -> None:
    bundle = await search(seven, "Patient", {"_count": "0"})
    assert bundle.get("entry", []) == []
    assert bundle["total"] == 7


async def test_count_is_capped_and_validated(seven: httpx.AsyncClient) -> None:
    assert len(ids(await search(seven, "Patient", {"_count": "100000"}))) == 7
    for bad in ("-1", "two", "1.5"):
        response = await seven.get("/Patient", params={"_count": bad})
        assert response.status_code == 400, bad
        assert response.json()["resourceType"] == "OperationOutcome"


async def test_malformed_cursor_is_400(seven: httpx.AsyncClient) -> None:
    for cursor in ("not-a-cursor", "eyJkIjoieCIsImsiOltdfQ"):  # the second is {"d":"x","k":[]}
        response = await seven.get("/Patient", params={"_cursor": cursor})
        assert response.status_code == 400, cursor
        assert response.json()["resourceType"] == "OperationOutcome"


@pytest.fixture
async def mixed(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Ties, missing sort keys and non-ASCII values: what keyset cursors must get right."""
    people = [
        patient("m1", family="Østby", birthDate="1980", gender="male"),
        patient("m2", family="Berg", birthDate="1972-09-13", gender="female"),
        patient("m3", family="Berg", gender="female"),
        patient("m4", family="Ås", birthDate="1972-09-13", gender="male"),
        patient("m5", family="Ærø", gender=None),
        {"resourceType": "Patient", "id": "m6"},
        patient("m7", family="berg", birthDate="2001-01-01", gender="other"),
        {"resourceType": "Patient", "id": "m8", "birthDate": "1972"},
    ]
    for body in people:
        await put(client, body)
        await asyncio.sleep(0.002)  # distinct lastUpdated
    return client


SORTS = [
    "family",
    "-family",
    "birthdate",
    "-birthdate",
    "gender",
    "-gender",
    "_id",
    "-_id",
    "_lastUpdated",
    "-_lastUpdated",
    "family,-birthdate",
    "-gender,family,_id",
]


async def test_pages_concatenate_to_the_unpaged_order(mixed: httpx.AsyncClient) -> None:
    mismatches = {}
    for sort in SORTS:
        whole = ids(await search(mixed, "Patient", {"_sort": sort, "_count": "100"}))
        assert sorted(whole) == [f"m{i}" for i in range(1, 9)]
        for count in ("1",):  # a page boundary between every two resources
            paged = [
                i
                for page in await walk(
                    mixed, await search(mixed, "Patient", {"_sort": sort, "_count": count})
                )
                for i in page
            ]
            if paged != whole:
                mismatches[(sort, count)] = (paged, whole)
    assert mismatches == {}


async def test_walking_backwards_from_the_last_page(mixed: httpx.AsyncClient) -> None:
    mismatches = {}
    for sort in SORTS:
        whole = ids(await search(mixed, "Patient", {"_sort": sort, "_count": "100"}))
        bundle = await follow(
            mixed, require_link(await search(mixed, "Patient", {"_sort": sort, "_count": "3"}), "last")
        )
        pages = [ids(bundle)]
        while (previous := link(bundle, "previous")) is not None:
            bundle = await follow(mixed, previous)
            pages.insert(0, ids(bundle))
            assert len(pages) < 20
        backwards = [i for page in pages for i in page]
        if backwards != whole:
            mismatches[sort] = (backwards, whole)
    assert mismatches == {}


async def test_sort_order_with_ties_and_missing_values(mixed: httpx.AsyncClient) -> None:
    by_birth = ids(await search(mixed, "Patient", {"_sort": "birthdate,_id"}))
    # 1972 starts before 1972-09-13; then 1980, 2001; no birth date last (by _id).
    assert by_birth == ["m8", "m2", "m4", "m1", "m7", "m3", "m5", "m6"]
    by_family = ids(await search(mixed, "Patient", {"_sort": "family,_id"}))
    assert by_family[:3] == ["m2", "m3", "m7"]  # Berg, Berg, berg: case-insensitive ties
    assert by_family[-2:] == ["m6", "m8"]  # no family name: last, ordered by the next key


async def test_a_first_page_counts_its_matches_in_its_own_statement(
    app: FastAPI, seven: httpx.AsyncClient
) -> None:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = app.state.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        first = await search(seven, "Patient", {"family": "b,d,e,f,h", "_count": "2"})
        assert first["total"] == 5
        assert len(ids(first)) == 2
        assert not [s for s in statements if "count(*) AS count_1" in s]  # no second walk
        statements.clear()
        second = await follow(seven, require_link(first, "next"))
        assert second["total"] == 5  # a later page: counted by a statement of its own
        assert [s for s in statements if "count(*) AS count_1" in s]
        none = await search(seven, "Patient", {"family": "b,d,e,f,h", "_count": "2", "_total": "none"})
        assert "total" not in none
        assert len(ids(none)) == 2
    finally:
        event.remove(engine, "before_cursor_execute", record)
