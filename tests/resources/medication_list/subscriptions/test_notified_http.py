"""Subscribers are told when the medication list changes, through the engine's subscriptions and within
the access rules: the GP office's system's subscription on Kari's List is notified of a reconciliation,
an identical subscription by a client that may not read Lists gets nothing (both databases, a real HTTP
receiver). Subscriptions are registered by system clients only (the engine's rule)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson

from tests.fhir.subscriptions.conftest import (
    FHIR_JSON,
    AppFactory,
    Receiver,
    eventually,
    outbox,
    subscription,
)
from tests.resources.medication_list.builders import metformin
from tests.resources.medication_list.test_operations_http import reconcile_body
from tests.security.helpers import auth_header
from tests.security.scenario import (
    GP_HPR,
    GP_OFFICE_ORGNR,
    OTHER_CLINIC_ORGNR,
    scenario,
    transaction,
)


async def test_gp_is_notified_and_a_stranger_is_not(
    make_app: AppFactory, dev_key_file: Path, mint: Callable[..., str], receiver: Receiver
) -> None:
    settings = {"auth_mode": "jwt", "auth_dev_issuer": True, "auth_dev_key_file": str(dev_key_file)}
    system = auth_header(mint(subject="seeder", scopes="system/*.cruds", client_id="seeder"))
    gp = auth_header(
        mint(subject="hpr-gp", scopes="user/*.cruds", hpr=GP_HPR, orgnr=GP_OFFICE_ORGNR, category="LE")
    )
    gp_system = auth_header(
        mint(
            subject="epj",
            client_id="epj",
            scopes="system/Subscription.cruds system/List.rs",
            orgnr=GP_OFFICE_ORGNR,
        )
    )
    blind = auth_header(
        mint(subject="blind", client_id="blind", scopes="system/Subscription.cruds", orgnr=OTHER_CLINIC_ORGNR)
    )
    async with make_app(**settings) as (app, client):
        seeded = await client.post(
            "/", content=orjson.dumps(transaction(scenario())), headers={**FHIR_JSON, **system}
        )
        assert seeded.status_code == 200, seeded.text
        criteria = "List?subject=Patient/kari"
        for who, path in ((gp_system, "/gp"), (blind, "/blind")):
            body = subscription(receiver.url + path, criteria=criteria)
            created = await client.post("/Subscription", json=body, headers={**who, **FHIR_JSON})
            assert created.status_code == 201, created.text

        applied = await client.post(
            "/Patient/kari/$reconcile",
            content=orjson.dumps(reconcile_body(metformin(), apply=True)),
            headers={**FHIR_JSON, **gp, "If-Match": 'W/"0"'},
        )
        assert applied.status_code == 200, applied.text
        list_id = next(p for p in applied.json()["parameter"] if p["name"] == "list")["resource"]["id"]

        # the created (empty) List and the reconciled one, each to both subscriptions: the GP office's
        # delivered, the blind client's withheld
        async def settled() -> bool:
            rows = await outbox(app)
            return len(rows) == 4 and all(state in ("delivered", "withheld") for _, _, state, _ in rows)

        await eventually(settled)
        paths = sorted({r.path for r in receiver.requests})
        assert paths == [f"/hook/gp/List/{list_id}"]
        newest = max(receiver.requests, key=lambda r: int(r.json()["meta"]["versionId"]))
        assert "MedicationStatement/" in orjson.dumps(newest.json()["entry"]).decode()
