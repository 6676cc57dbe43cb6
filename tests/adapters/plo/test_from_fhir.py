"""Pasientlogistikk back out: XML -> model -> FHIR -> model -> XML for every official 1.6 logistics
sample, pure (the intake's transaction as the FHIR side) and through the store on both databases (the
sample posted to `POST /$kith-message`, the stay read back through the engine); the XML validates against
the official XSDs and the model keeps every field but those named in NOT_KEPT."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.adapters.kith import from_fhir as ff
from app.adapters.kith.apprec import AppRecStatus
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.plo.build import build_plo
from app.adapters.plo.from_fhir import logistics_from_resources
from app.adapters.plo.logistics_fhir import logistics_bundle
from app.adapters.plo.model import PloMessage
from app.adapters.plo.parse import parse_plo
from app.adapters.plo.store import stored_logistics
from app.fhir.context import RequestContext, SystemPrincipal
from tests.adapters.kith.test_routes_http import post
from tests.adapters.plo.conftest import LOGISTICS, assert_xsd_valid, legacy_files, sample

BASE = "http://test"
READER = SystemPrincipal("plo-test", "the PLO tests read what the intake stored")
# Read from the message but deliberately not stored by the intake for Pasientlogistikk (README "Left
# out"): the hospital unit and nurse to contact are not the stay's or the notice's content.
NOT_KEPT = {
    "responsible": "AnsvarForRapport of a logistics message is not stored",
    "contact_units": "TilknyttetEnhet of a logistics message is not stored",
}


def _same_content(before: PloMessage, after: PloMessage) -> None:
    """Field by field; the patient's death date is the stored Patient's (the death message sets it), which
    the MsgHead does not carry, so it is compared without it."""
    assert before.patient is not None
    assert after.patient is not None
    assert replace(after.patient, death_date=None) == before.patient
    for field in fields(PloMessage):
        if field.name in NOT_KEPT or field.name == "patient":
            continue
        assert getattr(after, field.name) == getattr(before, field.name), field.name


def _resource(bundle: dict[str, Any], res_type: str) -> dict[str, Any] | None:
    return next((e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == res_type), None)


@pytest.mark.parametrize("path", legacy_files(LOGISTICS))
def test_every_logistics_sample_maps_back_to_valid_xml(path: Path) -> None:
    before = parse_plo(parse_xml(path.read_bytes()))
    bundle, _ = logistics_bundle(before, None, None)
    encounter, task = _resource(bundle, "Encounter"), _resource(bundle, "Task")
    after = logistics_from_resources(encounter, task, ff.bundle_resolver(bundle))
    _same_content(before, after)
    assert_xsd_valid(build_plo(after))
    again = parse_plo(parse_xml(to_bytes(build_plo(after))))
    assert after.patient is not None
    # what is written reads back as the same message (the MsgHead carries no death date)
    assert again == replace(after, patient=replace(after.patient, death_date=None))


@pytest.mark.parametrize("path", legacy_files(LOGISTICS))
async def test_stored_logistics_maps_back_to_valid_xml(
    path: Path, client: httpx.AsyncClient, app: FastAPI
) -> None:
    data = sample(path.name)
    status, apprec = await post(client, data)
    assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors
    engine = app.state.engine
    ctx = RequestContext(BASE, READER, "plo-test")
    [stay] = await engine.search(ctx, "Encounter", [], 10)
    after = await stored_logistics(engine, ctx, stay)
    _same_content(parse_plo(parse_xml(data)), after)
    assert_xsd_valid(build_plo(after))
