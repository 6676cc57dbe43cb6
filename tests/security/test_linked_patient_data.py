"""Patient data with no Patient-compartment search parameter (issue 11, hole 7): a Binary by its
securityContext, a stored document Bundle by its entries, a Device by Device.patient. They follow their
patient's rules; ones that name no patient stay ordinary data."""

from __future__ import annotations

import base64
from typing import Any

from tests.security.helpers import World, ids
from tests.security.scenario import ref


def binary(res_id: str, context: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Binary",
        "id": res_id,
        "contentType": "text/plain",
        "data": base64.b64encode(b"Epikrise: innlagt med pneumoni").decode(),
    }
    if context is not None:
        body["securityContext"] = ref(context)
    return body


def document(res_id: str, subject: str, full_url: str | None = None) -> dict[str, Any]:
    composition = {
        "resourceType": "Composition",
        "status": "final",
        "type": {"text": "Epikrise"},
        "subject": ref(subject),
        "date": "2026-01-05",
        "author": [ref("Organization/hospital")],
        "title": "Epikrise",
    }
    return {
        "resourceType": "Bundle",
        "id": res_id,
        "type": "document",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{res_id}"},
        "timestamp": "2026-01-05T10:00:00+01:00",
        "entry": [{"fullUrl": full_url or f"urn:uuid:composition-{res_id}", "resource": composition}],
    }


async def status(world: World, path: str, who: dict[str, str]) -> int:
    response = await world.http.get(path, headers={**who, "Accept": "application/fhir+json"})
    return response.status_code


async def test_a_binary_follows_the_patient_of_its_security_context(world: World) -> None:
    for res_id, context in (
        ("kari-pdf", "Patient/kari"),
        ("kari-discharge-pdf", "DocumentReference/kari-discharge"),
    ):
        assert (await world.put(binary(res_id, context))).status_code == 201
        path = f"/Binary/{res_id}"
        assert await status(world, path, world.other) == 403, context
        assert await status(world, path, world.nils) == 403
        for who in (world.gp, world.hospital, world.kari, world.system):
            assert await status(world, path, who) == 200, context
    found = await world.http.get("/Binary", headers={**world.other, "Accept": "application/fhir+json"})
    assert ids(found.json()) == set()
    # The GP's read is audited as Kari's data.
    assert await world.audit("entity=Binary/kari-discharge-pdf&patient=Patient/kari&action=R")
    # Personnel cannot attach a Binary to a patient they have no relation with.
    refused = await world.put(binary("other-pdf", "Patient/kari"), world.other)
    assert refused.status_code == 403


async def test_a_binary_without_a_patient_is_ordinary_data(world: World) -> None:
    assert (await world.put(binary("logo", None))).status_code == 201
    assert await status(world, "/Binary/logo", world.other) == 200
    assert (await world.put(binary("clinic-logo", "Organization/other-clinic"))).status_code == 201
    assert await status(world, "/Binary/clinic-logo", world.other) == 200


async def test_a_stored_document_bundle_is_its_patients_data(world: World) -> None:
    assert (await world.put(document("nils-epikrise", "Patient/nils"))).status_code == 201
    assert await status(world, "/Bundle/nils-epikrise", world.other) == 403
    assert await status(world, "/Bundle/nils-epikrise", world.kari) == 403
    assert await status(world, "/Bundle/nils-epikrise", world.nils) == 200
    found = await world.http.get("/Bundle?type=document", headers=world.gp)
    assert ids(found.json()) == set()
    # A document from another server names that server's patient: whose it is here cannot be told, so
    # only system clients see it.
    foreign = document("foreign", "Patient/kari", "http://other.example/fhir/Composition/1")
    assert (await world.put(foreign)).status_code == 201
    assert await status(world, "/Bundle/foreign", world.gp) == 403
    assert await status(world, "/Bundle/foreign", world.system) == 200


async def test_a_device_is_its_patients_data(world: World) -> None:
    pump = {"resourceType": "Device", "id": "kari-pump", "patient": ref("Patient/kari")}
    stock = {"resourceType": "Device", "id": "stock-meter"}
    for device in (pump, stock):
        assert (await world.put(device)).status_code == 201
    assert await status(world, "/Device/kari-pump", world.other) == 403
    assert await status(world, "/Device/kari-pump", world.gp) == 200
    assert await status(world, "/Device/stock-meter", world.other) == 200
    found = await world.http.get("/Device", headers=world.other)
    assert ids(found.json()) == {"Device/stock-meter"}
