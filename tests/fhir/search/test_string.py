"""String search: default prefix match, :exact, :contains, case- and accent-insensitivity, and the
normalisation chosen for Norwegian and Sámi names (both databases)."""

from __future__ import annotations

import httpx
import pytest

from app.fhir.search.normalize import STRING_INDEX_LENGTH
from tests.fhir.search.helpers import organization, patient, put_all, search_ids


@pytest.fixture
async def people(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        patient("aase", family="Ås", given="Åse"),
        patient("ase", family="Aspelund", given="Ase"),
        patient("oyvind", family="Bjørnstad", given="Øyvind"),
        patient("bjorn", family="Berg", given="Bjørn"),
        patient("aero", family="Ærø", given="Ærlig"),
        patient("ailu", family="Gaup", given="Áilu"),
        patient("ca", family="Čáhppes", given="Ánte"),
        patient("jose", family="García", given="José"),
    )
    return client


async def test_default_is_a_case_insensitive_prefix_match(people: httpx.AsyncClient) -> None:
    assert await search_ids(people, "Patient", {"family": "berg"}) == {"bjorn"}
    assert await search_ids(people, "Patient", {"family": "BJØRN"}) == {"oyvind"}
    assert await search_ids(people, "Patient", {"name": "bjø"}) == {"bjorn", "oyvind"}
    assert await search_ids(people, "Patient", {"given": "jo"}) == {"jose"}
    # A prefix, not a substring.
    assert await search_ids(people, "Patient", {"family": "stad"}) == set()


async def test_name_covers_family_and_given(people: httpx.AsyncClient) -> None:
    assert await search_ids(people, "Patient", {"name": "gaup"}) == {"ailu"}
    assert await search_ids(people, "Patient", {"name": "áilu"}) == {"ailu"}


NAME_QUERIES = {
    "åse": {"aase"},
    "ÅSE": {"aase"},
    "Åse": {"aase"},
    "ØYVIND": {"oyvind"},
    "øyvind": {"oyvind"},
    "bjørn": {"bjorn"},
    "ærlig": {"aero"},
    "ÆRLIG": {"aero"},
    "ailu": {"ailu"},  # Sámi á folds to a
    "AILU": {"ailu"},
    "ante": {"ca"},
    "jose": {"jose"},  # é folds to e
}


async def test_norwegian_and_sami_given_names(people: httpx.AsyncClient) -> None:
    found = {query: await search_ids(people, "Patient", {"given": query}) for query in NAME_QUERIES}
    assert found == NAME_QUERIES


async def test_name_parameter_with_norwegian_and_sami_letters(people: httpx.AsyncClient) -> None:
    assert await search_ids(people, "Patient", {"name": "åse"}) == {"aase"}
    assert await search_ids(people, "Patient", {"name": "ØYVIND"}) == {"oyvind"}
    assert await search_ids(people, "Patient", {"name": "ailu"}) == {"ailu"}
    assert await search_ids(people, "Patient", {"name": "ca"}) == {"ca"}
    assert await search_ids(people, "Patient", {"name": "ærø"}) == {"aero"}


async def test_sami_c_caron_folds_to_c(people: httpx.AsyncClient) -> None:
    assert await search_ids(people, "Patient", {"family": "ca"}) == {"ca"}
    assert await search_ids(people, "Patient", {"family": "čá"}) == {"ca"}
    assert await search_ids(people, "Patient", {"family": "CAHPPES"}) == {"ca"}
    assert await search_ids(people, "Patient", {"family": "garcia"}) == {"jose"}


async def test_aa_is_a_letter_of_its_own(people: httpx.AsyncClient) -> None:
    """Deliberate (app/fhir/search/normalize.py): å does not fold to a, because Åse and Ase are different
    Norwegian names. So "ase" finds Ase but not Åse, and "åse" finds Åse but not Ase."""
    assert await search_ids(people, "Patient", {"given": "ase"}) == {"ase"}
    assert await search_ids(people, "Patient", {"given": "åse"}) == {"aase"}
    assert await search_ids(people, "Patient", {"family": "as"}) == {"ase"}
    assert await search_ids(people, "Patient", {"family": "ås"}) == {"aase"}


async def test_ae_and_oe_are_letters_of_their_own(people: httpx.AsyncClient) -> None:
    # æ and ø have no decomposition: they never fold to a/e or o.
    assert await search_ids(people, "Patient", {"given": "oyvind"}) == set()
    assert await search_ids(people, "Patient", {"family": "aero"}) == set()
    assert await search_ids(people, "Patient", {"given": "bjorn"}) == set()


async def test_exact_is_case_and_accent_sensitive(people: httpx.AsyncClient) -> None:
    assert await search_ids(people, "Patient", {"given:exact": "Åse"}) == {"aase"}
    assert await search_ids(people, "Patient", {"given:exact": "åse"}) == set()
    assert await search_ids(people, "Patient", {"given:exact": "Ase"}) == {"ase"}
    assert await search_ids(people, "Patient", {"given:exact": "Ailu"}) == set()
    assert await search_ids(people, "Patient", {"given:exact": "Áilu"}) == {"ailu"}
    # Whole value only, never a prefix.
    assert await search_ids(people, "Patient", {"family:exact": "Bjørn"}) == set()
    assert await search_ids(people, "Patient", {"family:exact": "Bjørnstad"}) == {"oyvind"}
    # Several values: any of them.
    assert await search_ids(people, "Patient", {"given:exact": "Åse,Áilu,ase"}) == {"aase", "ailu"}


async def test_exact_compares_the_whole_value_beyond_the_indexed_length(client: httpx.AsyncClient) -> None:
    """:exact enters by the normalised value, which is cut at STRING_INDEX_LENGTH, and compares the whole
    exact value: two names alike in their first 200 characters stay apart."""
    stem = "Langnavn" * (STRING_INDEX_LENGTH // 8 + 5)
    await put_all(client, organization("one", f"{stem} En"), organization("two", f"{stem} To"))
    assert await search_ids(client, "Organization", {"name:exact": f"{stem} En"}) == {"one"}
    assert await search_ids(client, "Organization", {"name:exact": f"{stem} to"}) == set()
    assert await search_ids(client, "Organization", {"name": stem.lower()}) == {"one", "two"}


async def test_contains_matches_anywhere(people: httpx.AsyncClient) -> None:
    assert await search_ids(people, "Patient", {"family:contains": "STAD"}) == {"oyvind"}
    assert await search_ids(people, "Patient", {"name:contains": "ørn"}) == {"bjorn", "oyvind"}
    assert await search_ids(people, "Patient", {"family:contains": "hpp"}) == {"ca"}
    assert await search_ids(people, "Patient", {"given:contains": "ilu"}) == {"ailu"}
    assert await search_ids(people, "Patient", {"given:contains": "se"}) == {"aase", "ase", "jose"}


async def test_contains_treats_like_wildcards_literally(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        organization("pct", "Legekontor 100% Nord"),
        organization("plain", "Legekontor 1000 Nord"),
        organization("under", "Hel_se Vest"),
        organization("no-under", "Helse Vest"),
    )
    assert await search_ids(client, "Organization", {"name:contains": "0%"}) == {"pct"}
    assert await search_ids(client, "Organization", {"name:contains": "l_s"}) == {"under"}
    assert await search_ids(client, "Organization", {"name": "hel_"}) == {"under"}


async def test_address_parts_are_searchable(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        patient("tromso", address=[{"line": ["Storgata 1"], "city": "Tromsø", "postalCode": "9008"}]),
        patient("alta", address=[{"line": ["Markveien 2"], "city": "Alta", "postalCode": "9510"}]),
    )
    assert await search_ids(client, "Patient", {"address-city": "TROMSØ"}) == {"tromso"}
    assert await search_ids(client, "Patient", {"address": "markv"}) == {"alta"}
    assert await search_ids(client, "Patient", {"address-postalcode": "95"}) == {"alta"}
    assert await search_ids(client, "Patient", {"address": "9"}) == {"tromso", "alta"}
