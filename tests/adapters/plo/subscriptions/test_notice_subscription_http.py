"""A municipality hears of a discharge-ready notice at once: its system's Subscription on the notices
(Task code plo-task|discharge-ready, owner = the municipality) is notified when the hospital's
Pasientlogistikk arrives (both databases, a real HTTP receiver)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.adapters.plo.clock import TASK_TOKEN
from tests.adapters.kith.test_routes_http import XML
from tests.adapters.plo.conftest import sample
from tests.fhir.subscriptions.conftest import FHIR_JSON, AppFactory, Receiver, subscription
from tests.security.helpers import auth_header

KLAR = "Pasientlogistikk_Utskrivningsklar_pasient_v1-6_Ny.xml"
INNLAGT = "Pasientlogistikk_Innlagt_pasient_v1-6_Ny.xml"


async def test_municipality_is_notified_of_a_new_notice(
    make_app: AppFactory, dev_key_file: Path, mint: Callable[..., str], receiver: Receiver
) -> None:
    settings = {"auth_mode": "jwt", "auth_dev_issuer": True, "auth_dev_key_file": str(dev_key_file)}
    gateway = auth_header(mint(subject="gateway", scopes="system/*.cruds", client_id="gateway"))
    kommune = auth_header(
        mint(subject="kommune", client_id="kommune", scopes="system/Subscription.cruds system/Task.rs")
    )
    async with make_app(**settings) as (_app, client):
        # the municipality subscribes to the notices (narrowed to its own Organization with &owner=...)
        body = subscription(receiver.url, criteria=f"Task?code={TASK_TOKEN}")
        created = await client.post("/Subscription", json=body, headers={**kommune, **FHIR_JSON})
        assert created.status_code == 201, created.text

        admitted = await client.post("/$kith-message", content=sample(INNLAGT), headers={**gateway, **XML})
        assert admitted.status_code == 200, admitted.text
        notice = await client.post("/$kith-message", content=sample(KLAR), headers={**gateway, **XML})
        assert notice.status_code == 200, notice.text

        [delivered] = await receiver.wait_for(1)
        task = delivered.json()
        assert task["resourceType"] == "Task"
        assert task["status"] == "requested"
        assert task["input"][0]["valueDate"] == "2018-01-31"
        assert task["owner"]["display"] == "Alvdal Kommune"
