"""A municipality hears of a discharge-ready notice at once: its system's Subscription on its notices
(`Task?code=plo-task|discharge-ready&owner=Organization/<its id>`, as documented) is notified when the
hospital's Pasientlogistikk arrives; another municipality's is not (both databases, a real HTTP receiver)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from app.adapters.plo.clock import TASK_TOKEN
from tests.adapters.kith.test_routes_http import XML
from tests.adapters.plo.conftest import sample
from tests.fhir.subscriptions.conftest import FHIR_JSON, AppFactory, Receiver, subscription
from tests.security.helpers import auth_header

KLAR = "Pasientlogistikk_Utskrivningsklar_pasient_v1-6_Ny.xml"
INNLAGT = "Pasientlogistikk_Innlagt_pasient_v1-6_Ny.xml"
HER = "urn:oid:2.16.578.1.12.4.1.2"


async def test_municipality_is_notified_of_a_new_notice(
    make_app: AppFactory, dev_key_file: Path, mint: Callable[..., str], receiver: Receiver
) -> None:
    settings = {"auth_mode": "jwt", "auth_dev_issuer": True, "auth_dev_key_file": str(dev_key_file)}
    gateway = auth_header(mint(subject="gateway", scopes="system/*.cruds", client_id="gateway"))
    kommune = auth_header(
        mint(subject="kommune", client_id="kommune", scopes="system/Subscription.cruds system/Task.rs")
    )
    async with make_app(**settings) as (_app, client):
        ids = {}
        for name, her in (("Alvdal Kommune", "99387"), ("Tynset Kommune", "99388")):
            org = {
                "resourceType": "Organization",
                "name": name,
                "identifier": [{"system": HER, "value": her}],
            }
            created = await client.post("/Organization", json=org, headers={**gateway, **FHIR_JSON})
            assert created.status_code == 201, created.text
            ids[her] = created.json()["id"]
        for her, path in (("99387", "/alvdal"), ("99388", "/tynset")):
            criteria = f"Task?code={TASK_TOKEN}&owner=Organization/{ids[her]}"
            body = subscription(receiver.url + path, criteria=criteria)
            created = await client.post("/Subscription", json=body, headers={**kommune, **FHIR_JSON})
            assert created.status_code == 201, created.text

        admitted = await client.post("/$kith-message", content=sample(INNLAGT), headers={**gateway, **XML})
        assert admitted.status_code == 200, admitted.text
        notice = await client.post("/$kith-message", content=sample(KLAR), headers={**gateway, **XML})
        assert notice.status_code == 200, notice.text

        [delivered] = await receiver.wait_for(1)
        assert delivered.path.startswith("/hook/alvdal/Task/")
        task = delivered.json()
        assert task["status"] == "requested"
        assert task["input"][0]["valueDate"] == "2018-01-31"
        assert task["owner"]["reference"] == f"Organization/{ids['99387']}"
        await asyncio.sleep(0.5)  # Tynset's subscription does not match: nothing else arrives
        assert len(receiver.requests) == 1
