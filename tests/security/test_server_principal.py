"""The server acting on its own account names itself and a reason, and is audited as such; nothing is let
through because a principal is missing or because it is the unauthenticated one of AUTH_MODE=off."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from app.fhir.context import UNAUTHENTICATED, RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.outcome import FhirError
from tests.security.helpers import World

PATIENT = {"resourceType": "Patient", "id": "server-made", "gender": "female"}


async def test_the_servers_own_writes_are_audited_with_its_name_and_reason(
    secure_app: FastAPI, world: World
) -> None:
    engine: Engine = secure_app.state.engine
    loader = SystemPrincipal("demo-loader", "load the synthetic demo data")
    await engine.update(RequestContext("http://fhir.test", loader), "Patient", "server-made", PATIENT)
    events = await world.audit("patient=Patient/server-made")
    assert len(events) == 1
    (agent,) = [a for a in events[0]["agent"] if a.get("requestor")]
    assert agent["who"]["identifier"]["value"] == "helsebro/demo-loader"
    assert agent["name"] == "load the synthetic demo data"


async def test_the_unauthenticated_principal_is_refused_when_authentication_is_on(
    secure_app: FastAPI,
) -> None:
    engine: Engine = secure_app.state.engine
    with pytest.raises(FhirError) as refused:
        await engine.read(RequestContext("http://fhir.test", UNAUTHENTICATED), "Patient", "kari")
    assert refused.value.status == 401
