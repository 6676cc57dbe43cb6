"""Token search: code, system|code, |code, system|, :not, :text, :of-type, booleans (both databases)."""

from __future__ import annotations

import httpx
import pytest

from app.resources.no_basis.identifiers import DNR_SYSTEM, FNR_SYSTEM, synthetic_fnr
from tests.fhir.search.helpers import SNOMED, observation, patient, put_all, search_ids

ICD10 = "http://hl7.org/fhir/sid/icd-10"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
KARI_FNR = synthetic_fnr(13, 9, 1972, 101)
OLA_DNR = "41828010067"  # a synthetic D-nummer (day + 40, month + 80)


def coded(res_id: str, *codings: dict[str, str], text: str | None = None) -> dict[str, object]:
    concept: dict[str, object] = {"coding": list(codings)}
    if text is not None:
        concept["text"] = text
    return {
        "resourceType": "Condition",
        "id": res_id,
        "subject": {"reference": "Patient/kari"},
        "code": concept,
    }


@pytest.fixture
async def conditions(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        coded("snomed-dm", {"system": SNOMED, "code": "44054006", "display": "Type 2 diabetes mellitus"}),
        coded("icd-dm", {"system": ICD10, "code": "E11", "display": "Diabetes mellitus type 2"}),
        coded("nosys", {"code": "E11"}, text="Sukkersyke"),
        coded("same-code-other-system", {"system": "urn:oid:2.16.578.1.12.4.1.1.7170", "code": "E11"}),
        coded("asthma", {"system": SNOMED, "code": "195967001", "display": "Asthma"}, text="Astma, lett"),
    )
    return client


async def test_code_alone_matches_any_system(conditions: httpx.AsyncClient) -> None:
    assert await search_ids(conditions, "Condition", {"code": "E11"}) == {
        "icd-dm",
        "nosys",
        "same-code-other-system",
    }
    assert await search_ids(conditions, "Condition", {"code": "44054006"}) == {"snomed-dm"}
    assert await search_ids(conditions, "Condition", {"code": "e11"}) == set()  # codes are case-sensitive


async def test_system_and_code(conditions: httpx.AsyncClient) -> None:
    assert await search_ids(conditions, "Condition", {"code": f"{ICD10}|E11"}) == {"icd-dm"}
    assert await search_ids(conditions, "Condition", {"code": f"{SNOMED}|E11"}) == set()
    # Found by the code, then told apart by the system: E11 is in three systems here.
    assert await search_ids(conditions, "Condition", {"code": f"{ICD10}|E11,{SNOMED}|44054006"}) == {
        "icd-dm",
        "snomed-dm",
    }
    assert await search_ids(conditions, "Condition", {"code:not": f"{ICD10}|E11"}) == {
        "snomed-dm",
        "nosys",
        "same-code-other-system",
        "asthma",
    }


async def test_empty_system_means_no_system(conditions: httpx.AsyncClient) -> None:
    assert await search_ids(conditions, "Condition", {"code": "|E11"}) == {"nosys"}


async def test_system_with_any_code(conditions: httpx.AsyncClient) -> None:
    assert await search_ids(conditions, "Condition", {"code": f"{SNOMED}|"}) == {"snomed-dm", "asthma"}


async def test_not_excludes_matches_and_keeps_resources_without_the_code(
    conditions: httpx.AsyncClient,
) -> None:
    await put_all(
        conditions, {"resourceType": "Condition", "id": "uncoded", "subject": {"reference": "Patient/x"}}
    )
    assert await search_ids(conditions, "Condition", {"code:not": "E11"}) == {
        "snomed-dm",
        "asthma",
        "uncoded",
    }
    assert await search_ids(conditions, "Condition", {"code:not": f"{SNOMED}|"}) == {
        "icd-dm",
        "nosys",
        "same-code-other-system",
        "uncoded",
    }
    # One :not with alternatives excludes every alternative.
    assert await search_ids(conditions, "Condition", {"code:not": f"E11,{SNOMED}|44054006"}) == {
        "asthma",
        "uncoded",
    }


async def test_text_searches_concept_text_and_coding_display(conditions: httpx.AsyncClient) -> None:
    assert await search_ids(conditions, "Condition", {"code:text": "diabetes"}) == {"icd-dm"}
    assert await search_ids(conditions, "Condition", {"code:text": "type 2"}) == {"snomed-dm"}
    assert await search_ids(conditions, "Condition", {"code:text": "SUKKER"}) == {"nosys"}
    assert await search_ids(conditions, "Condition", {"code:text": "astma"}) == {
        "asthma"
    }  # CodeableConcept.text
    assert await search_ids(conditions, "Condition", {"code:text": "asthma"}) == {"asthma"}  # Coding.display
    assert await search_ids(conditions, "Condition", {"code:text": "E11"}) == set()  # never the code


@pytest.fixture
async def people(client: httpx.AsyncClient) -> httpx.AsyncClient:
    journal = {
        "type": {"coding": [{"system": V2_0203, "code": "MR"}], "text": "Journalnummer"},
        "system": "urn:sykehus:journal",
        "value": "J-1001",
    }
    await put_all(
        client,
        patient(
            "kari",
            identifier=[{"system": FNR_SYSTEM, "value": KARI_FNR}, journal],
            gender="female",
            active=True,
            telecom=[
                {"system": "phone", "value": "+4791234567"},
                {"system": "email", "value": "kari@example.no"},
            ],
        ),
        patient("ola", identifier=[{"system": DNR_SYSTEM, "value": OLA_DNR}], gender="male", active=False),
        patient("anon", identifier=None, gender="unknown"),
    )
    return client


async def test_identifier_token(people: httpx.AsyncClient) -> None:
    assert await search_ids(people, "Patient", {"identifier": f"{FNR_SYSTEM}|{KARI_FNR}"}) == {"kari"}
    assert await search_ids(people, "Patient", {"identifier": KARI_FNR}) == {"kari"}
    assert await search_ids(people, "Patient", {"identifier": f"{DNR_SYSTEM}|{KARI_FNR}"}) == set()
    assert await search_ids(people, "Patient", {"identifier": f"{DNR_SYSTEM}|"}) == {"ola"}


async def test_identifier_of_type(people: httpx.AsyncClient) -> None:
    assert await search_ids(people, "Patient", {"identifier:of-type": f"{V2_0203}|MR|J-1001"}) == {"kari"}
    assert await search_ids(people, "Patient", {"identifier:of-type": f"{V2_0203}|MR|J-9999"}) == set()
    assert await search_ids(people, "Patient", {"identifier:of-type": f"{V2_0203}|PT|J-1001"}) == set()


async def test_identifier_text_searches_the_identifier_type_text(people: httpx.AsyncClient) -> None:
    assert await search_ids(people, "Patient", {"identifier:text": "journal"}) == {"kari"}


async def test_boolean_tokens(people: httpx.AsyncClient) -> None:
    assert await search_ids(people, "Patient", {"active": "true"}) == {"kari"}
    assert await search_ids(people, "Patient", {"active": "false"}) == {"ola"}
    assert await search_ids(people, "Patient", {"active:not": "true"}) == {"ola", "anon"}
    assert await search_ids(people, "Patient", {"active:missing": "true"}) == {"anon"}


async def test_code_tokens_and_contact_points(people: httpx.AsyncClient) -> None:
    assert await search_ids(people, "Patient", {"gender": "female"}) == {"kari"}
    assert await search_ids(people, "Patient", {"gender": "male,unknown"}) == {"ola", "anon"}
    assert await search_ids(people, "Patient", {"gender:not": "female"}) == {"ola", "anon"}
    assert await search_ids(people, "Patient", {"phone": "+4791234567"}) == {"kari"}
    assert await search_ids(people, "Patient", {"email": "kari@example.no"}) == {"kari"}
    assert await search_ids(people, "Patient", {"telecom": "+4791234567"}) == {"kari"}


async def test_deceased_flag(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        patient("dead-bool", deceasedBoolean=True),
        patient("dead-date", deceasedDateTime="2020-01-01"),
        patient("alive-bool", deceasedBoolean=False),
        patient("alive"),
    )
    assert await search_ids(client, "Patient", {"deceased": "true"}) == {"dead-bool", "dead-date"}
    assert await search_ids(client, "Patient", {"deceased": "false"}) == {"alive-bool", "alive"}


async def test_observation_code_and_status(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        observation("hr"),
        observation("hr-prelim", status="preliminary"),
        observation("weight", code={"system": "http://loinc.org", "code": "29463-7"}),
    )
    assert await search_ids(client, "Observation", {"code": "http://loinc.org|8867-4"}) == {"hr", "hr-prelim"}
    assert await search_ids(client, "Observation", {"code": "8867-4", "status": "final"}) == {"hr"}
    assert await search_ids(client, "Observation", {"status:not": "final"}) == {"hr-prelim"}


async def test_a_concept_with_only_text_is_not_missing(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        {
            "resourceType": "Condition",
            "id": "text-only",
            "subject": {"reference": "Patient/p"},
            "code": {"text": "Sukkersyke"},
        },
        {"resourceType": "Condition", "id": "no-code", "subject": {"reference": "Patient/p"}},
        coded("coded", {"system": SNOMED, "code": "44054006"}),
    )
    assert await search_ids(client, "Condition", {"code:missing": "true"}) == {"no-code"}
    assert await search_ids(client, "Condition", {"code:missing": "false"}) == {"text-only", "coded"}
    assert await search_ids(client, "Condition", {"code:text": "sukker"}) == {"text-only"}
    # The row that marks it present matches no token value.
    assert await search_ids(client, "Condition", {"code:not": "44054006"}) == {"text-only", "no-code"}
    assert await search_ids(client, "Condition", {"code": f"{SNOMED}|"}) == {"coded"}
