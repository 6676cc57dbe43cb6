"""The demo data set loads through the service layer, is synthetic and valid, and reloads as a no-op."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from app.demo import demo_resources, load
from app.resources.no_basis.identifiers import (
    FNR_SYSTEM,
    ORGNR_SYSTEM,
    has_valid_orgnr,
    has_valid_personal_check_digits,
)


async def test_demo_loads_once_and_reloads_without_new_versions(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    resources = demo_resources()
    first = await load(app.state.fhir)
    assert first == {201: len(resources)}
    second = await load(app.state.fhir)
    assert second == {200: len(resources)}
    history = (await client.get("/_history")).json()
    assert history["total"] == len(resources)
    kari = (await client.get("/Patient/kari")).json()
    assert kari["generalPractitioner"] == [{"reference": "PractitionerRole/fastlege-lind"}]


def test_demo_identities_are_synthetic_with_valid_check_digits() -> None:
    for resource in demo_resources():
        for identifier in resource.get("identifier", []):
            if identifier["system"] == FNR_SYSTEM:
                number = identifier["value"]
                assert has_valid_personal_check_digits(number)
                assert int(number[2:4]) > 80  # synthetic (Tenor) month range: never a real person
            if identifier["system"] == ORGNR_SYSTEM:
                assert has_valid_orgnr(identifier["value"])
