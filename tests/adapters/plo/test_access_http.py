"""`GET /Task/$discharge-ready` reads through the engine as the caller: in the secured care setting of
tests/security, a stranger organisation and another citizen find none of Kari's notices."""

from __future__ import annotations

from app.adapters.plo.clock import CLOCK_SYSTEM, TASK_CODE
from tests.security.conftest import world
from tests.security.helpers import World

__all__ = ["world"]


def notice() -> dict[str, object]:
    return {
        "resourceType": "Task",
        "id": "kari-discharge-ready",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [TASK_CODE]},
        "for": {"reference": "Patient/kari"},
        "owner": {"reference": "Organization/gp-office"},
        "input": [
            {"type": {"coding": [{"system": CLOCK_SYSTEM, "code": "noticeDate"}]}, "valueDate": "2026-12-01"}
        ],
    }


async def test_a_stranger_organisation_and_another_citizen_find_no_notice(world: World) -> None:
    assert (await world.put(notice())).status_code == 201
    url = "/Task/$discharge-ready?today=2026-12-07"
    seen = await world.http.get(url, headers=world.gp)
    assert seen.status_code == 200, seen.text
    assert "Patient/kari" in seen.text  # the care relation's organisation sees the notice
    for stranger in (world.other, world.nils):
        answer = await world.http.get(url, headers=stranger)
        assert answer.status_code == 200, answer.text
        assert "kari" not in answer.text
