"""transaction Bundles: one unit of work, R4 processing order, references resolved (both databases)."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime
from typing import Any

import httpx
import orjson

from app.resources.no_basis.identifiers import FNR_SYSTEM, ORGNR_SYSTEM, synthetic_fnr
from tests.fhir.bundles import (
    bundle,
    call,
    encounter,
    location_id,
    organization,
    post,
    put,
    send,
    statuses,
    urn,
)
from tests.fhir.fixtures import FHIR_JSON, observation, patient

FNR = synthetic_fnr(3, 4, 1980, 210)
OTHER_FNR = synthetic_fnr(5, 6, 1991, 320)


async def total(client: httpx.AsyncClient, path: str = "/_history") -> int:
    return int((await client.get(path)).json()["total"])


async def read(client: httpx.AsyncClient, reference: str) -> dict[str, Any]:
    response = await client.get(f"/{reference}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def create(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        f"/{resource['resourceType']}", content=orjson.dumps(resource), headers=FHIR_JSON
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def issue(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]  # type: ignore[no-any-return]


async def test_urn_uuid_references_resolve_everywhere(client: httpx.AsyncClient) -> None:
    pat, enc = urn(), urn()
    obs = observation(pat)
    obs["encounter"] = {"reference": enc}
    obs["extension"] = [{"url": "http://example.org/focus", "valueReference": {"reference": pat}}]
    obs["contained"] = [{"resourceType": "Device", "id": "d1", "patient": {"reference": pat}}]
    obs["device"] = {"reference": "#d1"}
    response = await send(client, bundle(post(patient(), pat), post(encounter(pat), enc), post(obs)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "Bundle"
    assert body["type"] == "transaction-response"
    assert statuses(response) == ["201 Created"] * 3
    patient_id, encounter_id, observation_id = (location_id(e) for e in body["entry"])
    stored = await read(client, f"Observation/{observation_id}")
    assert stored["subject"]["reference"] == f"Patient/{patient_id}"
    assert stored["encounter"]["reference"] == f"Encounter/{encounter_id}"
    assert stored["extension"][0]["valueReference"]["reference"] == f"Patient/{patient_id}"
    assert stored["contained"][0]["patient"]["reference"] == f"Patient/{patient_id}"
    assert stored["device"]["reference"] == "#d1"
    assert (await read(client, f"Encounter/{encounter_id}"))["subject"][
        "reference"
    ] == f"Patient/{patient_id}"
    # the representation in the response is what was stored
    assert body["entry"][2]["resource"] == stored


async def test_invalid_last_entry_leaves_nothing_behind(client: httpx.AsyncClient) -> None:
    pat = urn()
    bad = {**observation(pat), "valueQuantity": {"value": "many"}}
    response = await send(
        client, bundle(post(patient(), pat), post(encounter(pat)), post(observation(pat)), post(bad))
    )
    assert response.status_code == 400
    first = issue(response)
    assert "Bundle.entry[3] (POST Observation)" in first["diagnostics"]
    assert first["expression"][0] == "Bundle.entry[3]"
    assert "Bundle.entry[3].resource.valueQuantity.value" in first["expression"]
    assert await total(client) == 0


async def test_failure_late_in_the_unit_of_work_rolls_back_every_write(client: httpx.AsyncClient) -> None:
    existing = await create(client, patient())
    pat = urn()
    response = await send(
        client,
        bundle(
            call("DELETE", f"Patient/{existing['id']}"),
            post(patient(fnr=FNR), pat),
            post(observation(pat)),
            call("GET", "Patient/does-not-exist"),
        ),
    )
    assert response.status_code == 404
    assert "Bundle.entry[3] (GET Patient/does-not-exist)" in issue(response)["diagnostics"]
    assert await total(client) == 1
    assert (await read(client, f"Patient/{existing['id']}"))["meta"]["versionId"] == "1"


async def test_stale_if_match_rolls_back(client: httpx.AsyncClient) -> None:
    current = await create(client, patient())
    changed = {**current, "gender": "male"}
    await client.put(f"/Patient/{current['id']}", content=orjson.dumps(changed), headers=FHIR_JSON)
    response = await send(
        client,
        bundle(
            post(patient(fnr=FNR)),
            put(f"Patient/{current['id']}", {**changed, "gender": "other"}, if_match='W/"1"'),
        ),
    )
    assert response.status_code == 412
    assert f"Bundle.entry[1] (PUT Patient/{current['id']})" in issue(response)["diagnostics"]
    assert await total(client) == 2
    assert (await read(client, f"Patient/{current['id']}"))["gender"] == "male"
    fresh = await send(
        client, bundle(put(f"Patient/{current['id']}", {**changed, "gender": "other"}, if_match='W/"2"'))
    )
    assert statuses(fresh) == ["200 OK"]
    assert fresh.json()["entry"][0]["response"]["etag"] == 'W/"3"'


async def test_deletes_run_before_posts_and_gets_see_the_writes(client: httpx.AsyncClient) -> None:
    existing = await create(client, patient())
    response = await send(
        client,
        bundle(
            call("GET", "Patient/_history"),
            post(patient(fnr=FNR, given="Åse"), urn()),
            call("DELETE", f"Patient/{existing['id']}"),
        ),
    )
    assert response.status_code == 200, response.text
    assert statuses(response) == ["200 OK", "201 Created", "204 No Content"]
    entries = response.json()["entry"]
    new_id = location_id(entries[1])
    history = entries[0]["resource"]
    assert history["type"] == "history"
    assert history["total"] == 3
    # newest first: the POST was processed after the DELETE, although it comes first in the Bundle
    assert history["entry"][0]["resource"]["id"] == new_id
    assert history["entry"][1]["request"] == {"method": "DELETE", "url": f"Patient/{existing['id']}"}
    assert entries[2]["response"]["etag"] == 'W/"2"'


async def test_reads_vreads_and_history_inside_a_transaction(client: httpx.AsyncClient) -> None:
    existing = await create(client, patient())
    url = f"Patient/{existing['id']}"
    changed = {**existing, "gender": "male"}
    response = await send(
        client,
        bundle(
            call("GET", url),
            call("GET", f"{url}/_history/1"),
            call("GET", f"{url}/_history"),
            put(url, changed),
            call("GET", f"http://fhir.test/{url}"),
        ),
    )
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert entries[0]["resource"]["gender"] == "male"  # the read sees the PUT of the same transaction
    assert entries[0]["response"]["etag"] == 'W/"2"'
    assert entries[1]["resource"]["gender"] == "female"
    assert entries[2]["resource"]["total"] == 2
    assert entries[4]["resource"]["meta"]["versionId"] == "2"


async def test_conditional_create_twice_points_references_at_the_existing_resource(
    client: httpx.AsyncClient,
) -> None:
    criteria = f"identifier={ORGNR_SYSTEM}|974760673"

    def make() -> dict[str, Any]:
        org = urn()
        pat = patient(managingOrganization={"reference": org})
        return bundle(
            post(organization("974760673", ORGNR_SYSTEM), org, if_none_exist=criteria), post(pat, urn())
        )

    first = await send(client, make())
    assert statuses(first) == ["201 Created", "201 Created"]
    org_id = location_id(first.json()["entry"][0])
    second = await send(client, make())
    assert statuses(second) == ["200 OK", "201 Created"]
    entries = second.json()["entry"]
    assert location_id(entries[0]) == org_id
    assert entries[0]["resource"]["id"] == org_id
    assert entries[1]["resource"]["managingOrganization"]["reference"] == f"Organization/{org_id}"
    assert await total(client, "/Organization/_history") == 1


async def test_the_same_if_none_exist_twice_in_one_transaction_creates_once(
    client: httpx.AsyncClient,
) -> None:
    criteria = f"identifier={ORGNR_SYSTEM}|974760673"
    org_a, org_b = urn(), urn()
    response = await send(
        client,
        bundle(
            post(organization("974760673", ORGNR_SYSTEM), org_a, if_none_exist=criteria),
            post(organization("974760673", ORGNR_SYSTEM), org_b, if_none_exist=criteria),
            post(patient(managingOrganization={"reference": org_b})),
        ),
    )
    assert statuses(response) == ["201 Created", "200 OK", "201 Created"]
    entries = response.json()["entry"]
    org_id = location_id(entries[0])
    assert location_id(entries[1]) == org_id
    assert entries[2]["resource"]["managingOrganization"]["reference"] == f"Organization/{org_id}"
    assert await total(client, "/Organization/_history") == 1


async def test_conditional_references_need_exactly_one_match(client: httpx.AsyncClient) -> None:
    org = await create(client, organization("974760673", ORGNR_SYSTEM))
    by_orgnr = f"Organization?identifier={ORGNR_SYSTEM}|974760673"
    resolved = await send(client, bundle(post(patient(managingOrganization={"reference": by_orgnr}))))
    assert resolved.status_code == 200, resolved.text
    stored = resolved.json()["entry"][0]["resource"]
    assert stored["managingOrganization"]["reference"] == f"Organization/{org['id']}"

    unknown = f"Organization?identifier={ORGNR_SYSTEM}|999999999"
    none = await send(
        client, bundle(post(patient()), post(patient(managingOrganization={"reference": unknown})))
    )
    assert none.status_code == 412
    assert "Bundle.entry[1] (POST Patient)" in issue(none)["diagnostics"]
    assert "matches no resource" in issue(none)["diagnostics"]

    await create(client, organization("974760673", ORGNR_SYSTEM))
    several = await send(client, bundle(post(patient(managingOrganization={"reference": by_orgnr}))))
    assert several.status_code == 412
    assert "more than one" in issue(several)["diagnostics"]
    assert await total(client, "/Patient/_history") == 1


async def test_conditional_update_and_delete_entries(client: httpx.AsyncClient) -> None:
    kept = await create(client, patient(fnr=FNR))
    doomed = await create(client, patient(fnr=OTHER_FNR))
    new_fnr = synthetic_fnr(7, 8, 1999, 430)
    pat = urn()
    response = await send(
        client,
        bundle(
            put(f"Patient?identifier={FNR_SYSTEM}|{FNR}", patient(fnr=FNR, given="Bjørn")),
            call("DELETE", f"Patient?identifier={FNR_SYSTEM}|{OTHER_FNR}"),
            put(f"Patient?identifier={FNR_SYSTEM}|{new_fnr}", patient(fnr=new_fnr), full_url=pat),
            post(observation(pat)),
        ),
    )
    assert response.status_code == 200, response.text
    assert statuses(response) == ["200 OK", "204 No Content", "201 Created", "201 Created"]
    entries = response.json()["entry"]
    assert entries[0]["response"]["location"] == f"Patient/{kept['id']}/_history/2"
    assert entries[0]["resource"]["name"][0]["given"] == ["Bjørn"]
    assert entries[1]["response"]["etag"] == 'W/"2"'
    assert (await client.get(f"/Patient/{doomed['id']}")).status_code == 410
    created_id = location_id(entries[2])
    assert entries[3]["resource"]["subject"]["reference"] == f"Patient/{created_id}"


async def test_two_entries_writing_one_resource_are_rejected(client: httpx.AsyncClient) -> None:
    existing = await create(client, patient(fnr=FNR))
    url = f"Patient/{existing['id']}"
    same_id = await send(client, bundle(put(url, {**existing, "gender": "male"}), call("DELETE", url)))
    assert same_id.status_code == 400
    assert "Bundle.entry[1]" in issue(same_id)["diagnostics"]
    assert "only once" in issue(same_id)["diagnostics"]
    via_criteria = await send(
        client,
        bundle(
            call("DELETE", f"Patient?identifier={FNR_SYSTEM}|{FNR}"), put(url, {**existing, "gender": "male"})
        ),
    )
    assert via_criteria.status_code == 400
    assert await total(client) == 1


async def test_unresolvable_placeholder_reference_is_400(client: httpx.AsyncClient) -> None:
    response = await send(client, bundle(post(patient(), urn()), post(observation(urn()))))
    assert response.status_code == 400
    assert "Bundle.entry[1] (POST Observation)" in issue(response)["diagnostics"]
    assert "fullUrl of no entry" in issue(response)["diagnostics"]
    assert await total(client) == 0


async def test_bundle_shape_errors(client: httpx.AsyncClient) -> None:
    not_a_bundle = await send(client, patient())
    assert not_a_bundle.status_code == 400
    collection = await send(client, bundle(post(patient()), kind="collection"))
    assert collection.status_code == 400
    assert "batch or transaction" in issue(collection)["diagnostics"]
    no_request = await send(client, bundle(post(patient()), {"resource": patient()}))
    assert no_request.status_code == 400
    assert issue(no_request)["expression"][0] == "Bundle.entry[1]"
    wrong_type = await send(
        client, bundle({"resource": patient(), "request": {"method": "POST", "url": "Observation"}})
    )
    assert wrong_type.status_code == 400
    assert "does not match" in issue(wrong_type)["diagnostics"]
    bad_method = await send(client, bundle(call("FETCH", "Patient/1")))
    assert bad_method.status_code == 400
    assert await total(client) == 0


async def test_response_order_and_fields(client: httpx.AsyncClient) -> None:
    client_id = {**patient(), "id": "tx-order-1"}
    response = await send(
        client,
        bundle(
            call("GET", "Patient/tx-order-1"),
            call("DELETE", "Patient/never-existed"),
            put("Patient/tx-order-1", client_id),
            post(observation("Patient/tx-order-1")),
        ),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert statuses(response) == ["200 OK", "204 No Content", "201 Created", "201 Created"]
    got, deleted, created, observed = response.json()["entry"]
    assert got["resource"]["id"] == "tx-order-1"
    assert created["response"]["location"] == "Patient/tx-order-1/_history/1"
    assert created["response"]["etag"] == 'W/"1"'
    last_modified = created["response"]["lastModified"]
    assert last_modified == created["resource"]["meta"]["lastUpdated"]
    assert datetime.fromisoformat(last_modified.replace("Z", "+00:00")).tzinfo is not None
    assert "etag" not in deleted["response"]
    assert observed["response"]["location"].startswith("Observation/")
    assert observed["response"]["location"].endswith("/_history/1")
    assert "resource" not in deleted


async def test_prefer_minimal_and_operation_outcome(client: httpx.AsyncClient) -> None:
    minimal = await send(client, bundle(post(patient()), call("GET", "Patient/_history")), prefer="minimal")
    first, history = minimal.json()["entry"]
    assert "resource" not in first
    assert first["response"]["status"] == "201 Created"
    assert first["response"]["location"].startswith("Patient/")
    assert history["resource"]["total"] == 1  # reads still answer with their resource
    outcome = await send(client, bundle(post(patient())), prefer="OperationOutcome")
    (entry,) = outcome.json()["entry"]
    assert "resource" not in entry
    assert entry["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert entry["response"]["outcome"]["issue"][0]["diagnostics"].startswith("Created Patient/")


async def test_patch_entry_applies_a_json_patch(client: httpx.AsyncClient) -> None:
    existing = await create(client, patient())
    operations = [{"op": "replace", "path": "/gender", "value": "male"}]
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(orjson.dumps(operations)).decode(),
    }
    entry = {"resource": binary, "request": {"method": "PATCH", "url": f"Patient/{existing['id']}"}}
    response = await send(client, bundle(entry, post(observation(f"Patient/{existing['id']}"))))
    assert response.status_code == 200, response.text
    assert statuses(response) == ["200 OK", "201 Created"]
    assert response.json()["entry"][0]["resource"]["gender"] == "male"
    assert (await read(client, f"Patient/{existing['id']}"))["meta"]["versionId"] == "2"


async def test_synthea_style_bundle_loads_twice(client: httpx.AsyncClient) -> None:
    synthea = "https://github.com/synthetichealth/synthea"
    npi = "http://hl7.org/fhir/sid/us-npi"

    def make() -> dict[str, Any]:
        org, doctor, pat, enc = urn(), urn(), urn(), urn()
        practitioner = {
            "resourceType": "Practitioner",
            "identifier": [{"system": npi, "value": "9999912345"}],
            "name": [{"family": "Lege", "given": ["Øyvind"]}],
        }
        visit = encounter(
            pat,
            serviceProvider={"reference": f"Organization?identifier={synthea}|org-1"},
            participant=[{"individual": {"reference": f"Practitioner?identifier={npi}|9999912345"}}],
        )
        observations = [post({**observation(pat), "encounter": {"reference": enc}}, urn()) for _ in range(20)]
        return bundle(
            post(organization("org-1"), org, if_none_exist=f"identifier={synthea}|org-1"),
            post(practitioner, doctor, if_none_exist=f"identifier={npi}|9999912345"),
            post(patient(generalPractitioner=[{"reference": doctor}]), pat),
            post(visit, enc),
            *observations,
        )

    first = await send(client, make())
    assert first.status_code == 200, first.text
    assert set(statuses(first)) == {"201 Created"}
    entries = first.json()["entry"]
    org_id, doctor_id, patient_id, encounter_id = (location_id(e) for e in entries[:4])
    visit = entries[3]["resource"]
    assert visit["serviceProvider"]["reference"] == f"Organization/{org_id}"
    assert visit["participant"][0]["individual"]["reference"] == f"Practitioner/{doctor_id}"
    assert visit["subject"]["reference"] == f"Patient/{patient_id}"
    assert entries[4]["resource"]["encounter"]["reference"] == f"Encounter/{encounter_id}"

    second = await send(client, make())
    assert second.status_code == 200, second.text
    assert statuses(second)[:3] == ["200 OK", "200 OK", "201 Created"]
    again = second.json()["entry"]
    assert again[2]["resource"]["generalPractitioner"][0]["reference"] == f"Practitioner/{doctor_id}"
    assert again[3]["resource"]["serviceProvider"]["reference"] == f"Organization/{org_id}"
    assert await total(client, "/Organization/_history") == 1
    assert await total(client, "/Observation/_history") == 40


async def test_absolute_full_url_of_a_put_on_this_server_resolves(client: httpx.AsyncClient) -> None:
    full_url = "http://fhir.test/Patient/abs-1"
    response = await send(
        client,
        bundle(
            post(observation(full_url)),
            put("Patient/abs-1", {**patient(), "id": "abs-1"}, full_url=full_url),
        ),
    )
    assert response.status_code == 200, response.text
    assert response.json()["entry"][0]["resource"]["subject"]["reference"] == "Patient/abs-1"


async def test_concurrent_transactions_with_one_conditional_create_share_it(
    client: httpx.AsyncClient,
) -> None:
    criteria = f"identifier={ORGNR_SYSTEM}|974760673"

    def make() -> dict[str, Any]:
        org = urn()
        return bundle(
            post(organization("974760673", ORGNR_SYSTEM), org, if_none_exist=criteria),
            post(patient(managingOrganization={"reference": org})),
        )

    responses = await asyncio.gather(*(send(client, make()) for _ in range(6)))
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    org_ids = {location_id(r.json()["entry"][0]) for r in responses}
    assert len(org_ids) == 1
    references = {r.json()["entry"][1]["resource"]["managingOrganization"]["reference"] for r in responses}
    assert references == {f"Organization/{org_ids.pop()}"}
    assert sorted(statuses(r)[0] for r in responses) == ["200 OK"] * 5 + ["201 Created"]
    assert await total(client, "/Organization/_history") == 1


async def test_search_entries_see_the_transactions_own_writes(client: httpx.AsyncClient) -> None:
    await create(client, patient(fnr=OTHER_FNR))
    response = await send(
        client,
        bundle(
            call("GET", f"Patient?identifier={FNR_SYSTEM}|{FNR}"),
            post(patient(fnr=FNR), urn()),
            call("GET", f"Patient?identifier={FNR_SYSTEM}|{OTHER_FNR}"),
        ),
    )
    assert response.status_code == 200, response.text
    first, created, other = response.json()["entry"]
    assert first["resource"]["type"] == "searchset"
    assert first["resource"]["total"] == 1
    assert first["resource"]["entry"][0]["resource"]["id"] == location_id(created)
    assert other["resource"]["total"] == 1


async def test_conditional_updates_of_one_type_each_find_their_own(client: httpx.AsyncClient) -> None:
    """Several conditional PUTs of one type in one transaction (a message's medicines, say): each keeps the
    match it was given before the writes, and sending the same bundle again changes nothing."""
    existing = await create(client, patient(fnr=FNR))
    fnrs = [FNR, OTHER_FNR, synthetic_fnr(9, 10, 1977, 540)]
    body = bundle(
        *(put(f"Patient?identifier={FNR_SYSTEM}|{fnr}", patient(fnr=fnr, given="Ny")) for fnr in fnrs)
    )
    first = await send(client, body)
    assert first.status_code == 200, first.text
    assert statuses(first) == ["200 OK", "201 Created", "201 Created"]
    ids = [e["resource"]["id"] for e in first.json()["entry"]]
    assert ids[0] == existing["id"]
    assert len(set(ids)) == 3
    again = await send(client, body)
    assert statuses(again) == ["200 OK", "200 OK", "200 OK"]
    assert [e["resource"]["id"] for e in again.json()["entry"]] == ids
    assert [e["resource"]["meta"]["versionId"] for e in again.json()["entry"]] == ["2", "1", "1"]


async def test_a_conditional_update_met_by_another_entrys_new_resource_is_refused(
    client: httpx.AsyncClient,
) -> None:
    """Matched before the writes it found nothing; the POST before it then made a resource its criteria
    meet, so the match is made again and finds it: another resource than the one the entry was to write."""
    response = await send(
        client,
        bundle(
            post(patient(fnr=FNR)),
            put(f"Patient?identifier={FNR_SYSTEM}|{FNR}", patient(fnr=FNR, given="Andre")),
        ),
    )
    assert response.status_code == 400, response.text
    assert "Bundle.entry[1]" in issue(response)["diagnostics"]
    assert "The criteria match Patient/" in issue(response)["diagnostics"]
    assert await total(client) == 0
