"""$medication-list and $reconcile with authentication on, on SQLite and PostgreSQL: the GP reads and
reconciles Kari's list, Kari reads her own, and neither a stranger organisation nor another citizen gets
anything of it (tests/security/scenario.py's synthetic care setting)."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from tests.fhir.fixtures import FHIR_JSON
from tests.resources.medication_list.builders import metformin, tran
from tests.resources.medication_list.test_operations_http import listed, reconcile_body
from tests.security.helpers import World, auth_header
from tests.security.scenario import (
    GP_HPR,
    GP_OFFICE_ORGNR,
    KARI_FNR,
    NILS_FNR,
)


async def test_gp_citizen_and_stranger(world: World, mint: Callable[..., str]) -> None:
    http, system, gp, stranger = world.http, world.system, world.gp, world.other
    # Citizen tokens with the launch patient, as the portal's are.
    kari = auth_header(mint(subject="kari", scopes="patient/*.rs", pid=KARI_FNR, patient="kari"))
    nils = auth_header(mint(subject="nils", scopes="patient/*.rs", pid=NILS_FNR, patient="nils"))

    # the GP (Kari's regular GP) reconciles and reads
    body = orjson.dumps(reconcile_body(metformin(), tran(), apply=True, reason="Oppstart av listen"))
    applied = await http.post(
        "/Patient/kari/$reconcile", content=body, headers={**FHIR_JSON, **gp, "If-Match": 'W/"0"'}
    )
    assert applied.status_code == 200, applied.text
    (stored_list,) = [p["resource"] for p in applied.json()["parameter"] if p["name"] == "list"]
    assert stored_list["meta"]["versionId"] == "2"
    by_gp = await http.get("/Patient/kari/$medication-list", headers=gp)
    assert by_gp.status_code == 200, by_gp.text
    assert listed(by_gp.json()) == ["Metformin tablett 500 mg", "Tran, flytende"]
    recorded = (await http.get("/Provenance", headers=system)).json()["entry"]
    assert {e["resource"]["agent"][0]["who"]["identifier"]["value"] for e in recorded} == {GP_HPR}
    assert {e["resource"]["agent"][0]["onBehalfOf"]["identifier"]["value"] for e in recorded} == {
        GP_OFFICE_ORGNR
    }

    # Kari reads her own list, as the GP sees it
    own = await http.get("/Patient/kari/$medication-list", headers=kari)
    assert own.status_code == 200, own.text
    assert listed(own.json()) == listed(by_gp.json())
    assert own.headers["ETag"] == by_gp.headers["ETag"]

    # the List itself changes only through the operations: a plain write or delete by the GP is refused
    list_id = stored_list["id"]
    current = (await http.get(f"/List/{list_id}", headers=gp)).json()
    emptied = {k: v for k, v in current.items() if k not in ("entry", "meta")}
    for attempt in (
        http.put(f"/List/{list_id}", json=emptied, headers=gp),
        http.delete(f"/List/{list_id}", headers=gp),
        http.post("/List", json=emptied, headers=gp),
    ):
        refused_write = await attempt
        assert refused_write.status_code == 422, refused_write.text
        assert "$reconcile" in refused_write.text
    assert (await http.get(f"/List/{list_id}", headers=gp)).json()["meta"]["versionId"] == "2"

    # Kari may diff her own list but not change it (PLL is changed by health personnel)
    kari_writes = auth_header(mint(subject="kari", scopes="patient/*.cruds", pid=KARI_FNR, patient="kari"))
    for apply in (False, True):
        answer = await http.post(
            "/Patient/kari/$reconcile",
            content=orjson.dumps(reconcile_body(metformin(), apply=apply)),
            headers={**FHIR_JSON, **kari_writes, "If-Match": by_gp.headers["ETag"]},
        )
        assert answer.status_code == (403 if apply else 200), answer.text

    # a clinic with no care relation, and another citizen, get nothing of it
    for who in (stranger, nils):
        refused = await http.get("/Patient/kari/$medication-list", headers=who)
        assert refused.status_code == 403, refused.text
        assert "Metformin" not in refused.text
    diff_refused = await http.post(
        "/Patient/kari/$reconcile",
        content=orjson.dumps(reconcile_body(metformin())),
        headers={**FHIR_JSON, **stranger},
    )
    assert diff_refused.status_code == 403, diff_refused.text
    apply_refused = await http.post(
        "/Patient/kari/$reconcile",
        content=orjson.dumps(reconcile_body(apply=True)),
        headers={**FHIR_JSON, **stranger, "If-Match": by_gp.headers["ETag"]},
    )
    assert apply_refused.status_code == 403, apply_refused.text
    # the Provenance names Kari as a target, so it is her data: hidden from the stranger
    hidden = await http.get("/Provenance", headers=stranger)
    assert hidden.status_code == 200, hidden.text
    assert "entry" not in hidden.json() or not [
        e for e in hidden.json()["entry"] if e["search"]["mode"] == "match"
    ]
    after = await http.get("/Patient/kari/$medication-list", headers=gp)
    assert listed(after.json()) == [
        "Metformin tablett 500 mg",
        "Tran, flytende",
    ]  # the stranger stopped nothing
