"""The pack through the REST API, on SQLite and PostgreSQL: identifier checks, normalisation, extensions,
the municipality and middlename searches, and transactions."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from app.resources.no_basis.identifiers import FNR_SYSTEM, HPR_SYSTEM, MUNICIPALITY_SYSTEM, ORGNR_SYSTEM
from app.resources.no_basis.search import MIDDLENAME_URL, MUNICIPALITY_URL
from tests.fhir.bundles import bundle, post, send, urn
from tests.fhir.fixtures import FHIR_JSON
from tests.resources.no_basis.resources import (
    HNR_TYPE,
    KARI_FNR,
    address,
    kari,
    ola,
    organization,
)

BAD_FNR = KARI_FNR[:10] + str((int(KARI_FNR[10]) + 1) % 10)
FNR_ALIAS = "http://hl7.no/fhir/NamingSystem/FNR"


async def post_resource(client: httpx.AsyncClient, resource: dict[str, Any]) -> httpx.Response:
    return await client.post(
        f"/{resource['resourceType']}", content=orjson.dumps(resource), headers=FHIR_JSON
    )


async def created(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = await post_resource(client, resource)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def refused(response: httpx.Response, expression: str, *named: str) -> dict[str, Any]:
    """A 422 OperationOutcome whose first issue points at `expression` and names `named`."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue: dict[str, Any] = body["issue"][0]
    assert expression in issue["expression"]
    for text in named:
        assert text in issue["diagnostics"]
    return issue


async def found(client: httpx.AsyncClient, query: str) -> set[str]:
    response = await client.get(query)
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"}


async def test_wrong_check_digit_is_422_naming_the_identifier_not_the_number(
    client: httpx.AsyncClient,
) -> None:
    body = kari()
    body["identifier"][0]["value"] = BAD_FNR
    response = await post_resource(client, body)
    issue = refused(
        response, "Patient.identifier[0].value", "Patient.identifier[0]", "fødselsnummer", FNR_SYSTEM
    )
    assert issue["code"] == "value"
    assert "check digit" in issue["diagnostics"]
    assert BAD_FNR not in response.text
    assert await found(client, "/Patient") == set()


async def test_valid_synthetic_person_with_every_no_basis_extension_is_stored_as_sent(
    client: httpx.AsyncClient,
) -> None:
    body = kari()
    stored = await created(client, body)
    read = (await client.get(f"/Patient/{stored['id']}")).json()
    assert {k: read[k] for k in ("identifier", "name", "address")} == {
        k: body[k] for k in ("identifier", "name", "address")
    }
    assert read["meta"]["profile"] == body["meta"]["profile"]


async def test_alternative_uri_is_stored_and_indexed_as_the_oid(client: httpx.AsyncClient) -> None:
    body = kari()
    body["identifier"][0]["system"] = FNR_ALIAS
    stored = await created(client, body)
    assert stored["identifier"][0]["system"] == FNR_SYSTEM
    read = (await client.get(f"/Patient/{stored['id']}")).json()
    assert read["identifier"][0] == {"use": "official", "system": FNR_SYSTEM, "value": KARI_FNR}
    assert await found(client, f"/Patient?identifier={FNR_SYSTEM}|{KARI_FNR}") == {stored["id"]}
    assert await found(client, f"/Patient?identifier={FNR_SYSTEM}|") == {stored["id"]}


async def test_alias_with_a_bad_value_is_checked_under_its_oid(client: httpx.AsyncClient) -> None:
    body = kari()
    body["identifier"][0].update(system=FNR_ALIAS, value=BAD_FNR)
    refused(await post_resource(client, body), "Patient.identifier[0].value", "fødselsnummer", FNR_SYSTEM)


async def test_organization_with_bad_organisasjonsnummer_is_422(client: httpx.AsyncClient) -> None:
    response = await post_resource(client, organization("311900413"))
    refused(response, "Organization.identifier[0].value", "organisasjonsnummer", ORGNR_SYSTEM)
    assert "311900413" not in response.text
    await created(client, organization())


async def test_practitioner_hpr_with_letters_is_422(client: httpx.AsyncClient) -> None:
    practitioner = {
        "resourceType": "Practitioner",
        "identifier": [{"system": HPR_SYSTEM, "value": "91OO001"}],
        "name": [{"family": "Lind", "given": ["Øyvind"]}],
    }
    refused(await post_resource(client, practitioner), "Practitioner.identifier[0].value", "HPR-nummer")
    practitioner["identifier"] = [{"system": "http://hl7.no/fhir/NamingSystem/HPR", "value": "9100001"}]
    stored = await created(client, practitioner)
    assert stored["identifier"][0]["system"] == HPR_SYSTEM


async def test_h_nummer_requires_an_assigner(client: httpx.AsyncClient) -> None:
    body = ola()
    body["identifier"] = [
        {"type": HNR_TYPE, "system": "urn:oid:2.16.578.1.12.4.1.7.1", "value": "13497210083"}
    ]
    issue = refused(
        await post_resource(client, body), "Patient.identifier[0].assigner", "H-nummer", "assigner"
    )
    assert issue["code"] == "required"
    body["identifier"][0]["assigner"] = {"display": "Sykehuset Innlandet HF"}
    await created(client, body)


async def test_reference_identifiers_are_normalised_and_checked(client: httpx.AsyncClient) -> None:
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"identifier": {"system": FNR_ALIAS, "value": KARI_FNR}},
        "requester": {"identifier": {"system": "http://hl7.no/fhir/NamingSystem/HPR", "value": "9100001"}},
    }
    stored = await created(client, request)
    assert stored["subject"]["identifier"]["system"] == FNR_SYSTEM
    assert stored["requester"]["identifier"]["system"] == HPR_SYSTEM
    by_requester = f"/ServiceRequest?requester:identifier={HPR_SYSTEM}|9100001"
    assert await found(client, by_requester) == {stored["id"]}

    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"identifier": {"system": FNR_SYSTEM, "value": KARI_FNR}},
        "serviceProvider": {"identifier": {"system": ORGNR_SYSTEM, "value": "311900413"}},
    }
    refused(
        await post_resource(client, encounter),
        "Encounter.serviceProvider.identifier.value",
        "organisasjonsnummer",
    )
    encounter["contained"] = [
        {"resourceType": "Patient", "id": "p", "identifier": [{"system": FNR_SYSTEM, "value": BAD_FNR}]}
    ]
    encounter["serviceProvider"] = {"identifier": {"system": ORGNR_SYSTEM, "value": "311900412"}}
    refused(
        await post_resource(client, encounter), "Encounter.contained[0].identifier[0].value", "fødselsnummer"
    )


async def test_update_and_patch_are_checked_and_the_old_version_stays(client: httpx.AsyncClient) -> None:
    stored = await created(client, kari())
    url = f"/Patient/{stored['id']}"
    bad = {**stored, "identifier": [{"system": FNR_SYSTEM, "value": BAD_FNR}]}
    refused(
        await client.put(url, content=orjson.dumps(bad), headers=FHIR_JSON), "Patient.identifier[0].value"
    )
    patch = [{"op": "replace", "path": "/identifier/0/value", "value": BAD_FNR}]
    response = await client.patch(
        url, content=orjson.dumps(patch), headers={"Content-Type": "application/json-patch+json"}
    )
    refused(response, "Patient.identifier[0].value")
    current = (await client.get(url)).json()
    assert current["meta"]["versionId"] == "1"
    assert current["identifier"][0]["value"] == KARI_FNR
    assert (await client.delete(url)).status_code in (200, 204)


async def test_municipality_search(client: httpx.AsyncClient) -> None:
    kari_id = (await created(client, kari()))["id"]
    ola_id = (await created(client, ola()))["id"]
    org_id = (await created(client, organization()))["id"]
    location = {
        "resourceType": "Location",
        "name": "St. Olavs hospital",
        "address": address("Prinsesse Kristinas gate 3", "7030", "Trondheim", "5001"),
    }
    location_id = (await created(client, location))["id"]

    assert await found(client, "/Patient?municipality=0301") == {kari_id}
    assert await found(client, f"/Patient?municipality={MUNICIPALITY_SYSTEM}|0301") == {kari_id}
    assert await found(client, f"/Patient?municipality={MUNICIPALITY_SYSTEM}|4601,0301") == {kari_id, ola_id}
    assert await found(client, "/Patient?municipality=urn:oid:1.2.3|0301") == set()
    assert await found(client, "/Patient?municipality=5001") == set()
    assert await found(client, "/Organization?municipality=0301") == {org_id}
    assert await found(client, "/Location?municipality=5001") == {location_id}


async def test_middlename_search(client: httpx.AsyncClient) -> None:
    kari_id = (await created(client, kari()))["id"]
    await created(client, ola())
    assert await found(client, "/Patient?middlename=sørli") == {kari_id}
    assert await found(client, "/Patient?middlename=SØR") == {kari_id}
    assert await found(client, "/Patient?middlename=Nordmann") == set()


async def test_capability_statement_lists_the_pack_parameters(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/metadata")).json()
    params = {r["type"]: {p["name"]: p for p in r["searchParam"]} for r in statement["rest"][0]["resource"]}
    for res_type in ("Patient", "Person", "RelatedPerson", "Practitioner", "Organization", "Location"):
        assert params[res_type]["municipality"]["type"] == "token"
        assert params[res_type]["municipality"]["definition"] == MUNICIPALITY_URL
    assert params["Patient"]["middlename"]["definition"] == MIDDLENAME_URL
    assert "municipality" not in params["Observation"]


async def test_transaction_with_one_bad_identifier_stores_nothing(client: httpx.AsyncClient) -> None:
    bad = ola()
    bad["identifier"][0]["value"] = "12345678901"
    org = organization()
    transaction = bundle(post(kari(), urn()), post(org, urn()), post(bad, urn()))
    response = await send(client, transaction)
    assert response.status_code == 422, response.text
    assert "fødselsnummer" in response.text
    assert "12345678901" not in response.text
    assert await found(client, "/Patient") == set()
    assert await found(client, "/Organization") == set()

    single = await send(client, bundle(post(bad, urn())))
    refused(single, "Bundle.entry[0].resource.identifier[0].value", "Bundle.entry[0]", "fødselsnummer")
    assert await found(client, "/Patient") == set()
