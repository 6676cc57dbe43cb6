"""Out, on SQLite and PostgreSQL: a stay written on FHIR by a hospital tells the municipality that provides
the patient's services (its active EpisodeOfCare) of the admission and the death (MeldingInnlagtPasient,
OrienteringOmDod); a correction is an Endring in the message's conversation, the stay in error a
Kansellering of each. Every message is an outgoing Communication with an XSD-valid payload, each record
`partOf` the one before; what cannot be a message is refused with 422, and a municipality without a
HER-id (on FHIR) or none concerned gets nothing."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith.apprec import AppRecStatus
from app.adapters.plo import clock
from app.adapters.plo.model import EventCode, Kind, Logistics, PloMessage
from app.resources.no_basis.identifiers import ORGNR_SYSTEM
from tests.adapters.kith.test_routes_http import post, search
from tests.adapters.plo.test_outgoing_http import (
    FHIR,
    KOMMUNE_HER,
    PATIENT,
    _codes,
    _message,
    _outgoing,
    _put,
    _ref,
    notice_bundle,
    written,
)
from tests.conftest import app_client
from tests.databases import TestDatabase

EPISODE = "urn:uuid:00000000-0000-4000-8000-0000000000e1"


def stay_bundle(
    municipality: list[dict[str, str]], patient: list[dict[str, str]], episode: bool
) -> dict[str, Any]:
    """A hospital on FHIR: the patient, the stay (no notice) and, when `episode`, the municipality's
    active EpisodeOfCare for the patient (the municipality provides the patient's services)."""
    bundle = notice_bundle(municipality, patient)
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Task"]
    if episode:
        care = {
            "resourceType": "EpisodeOfCare",
            "status": "active",
            "patient": _ref("patient"),
            "managingOrganization": _ref("kommune"),
            "period": {"start": "2023-01-01"},
        }
        bundle["entry"].insert(
            3, {"fullUrl": EPISODE, "resource": care, "request": {"method": "POST", "url": "EpisodeOfCare"}}
        )
    return bundle


def _ends(record: dict[str, Any]) -> str | None:
    return f.ref_of((record.get("partOf") or [{}])[0])


def _chained(records: list[dict[str, Any]]) -> None:
    """Each record made from the stay follows the one before."""
    assert _ends(records[0]) is None
    for before, after in itertools.pairwise(records):
        assert _ends(after) == f"Communication/{before['id']}"


async def test_a_stay_tells_the_municipality_of_the_admission_and_the_death(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    async with written(session_databases[backend], legacy, stay_bundle(KOMMUNE_HER, PATIENT, True)) as (
        http,
        validator,
    ):
        [stay] = await search(http, "/Encounter")
        (record,) = await _outgoing(http)
        assert record["about"] == [{"reference": f"Encounter/{stay['id']}"}]
        admitted = _message(record, validator)
        assert (admitted.logistics, admitted.kind, admitted.msg_type.code) == (
            Logistics.ADMITTED,
            Kind.NEW,
            "LOG_INNLAGT",
        )
        assert _codes(admitted) == [EventCode.ADMITTED.value]
        assert (admitted.receiver.ident("HER"), admitted.sender.ident("HER")) == ("8300001", "8100001")

        assert (await _put(http, stay)).status_code == 200  # nothing the message says changed
        assert len(await _outgoing(http)) == 1
        moved = {**stay, "period": {"start": "2024-02-27T09:30:00+01:00"}}  # the admission time corrected
        assert (await _put(http, moved)).status_code == 200
        change = _message((await _outgoing(http))[-1], validator)
        assert (change.logistics, change.kind) == (Logistics.ADMITTED, Kind.CHANGE)
        assert change.conversation is not None
        assert (change.conversation.parent_id, change.conversation.conversation_id) == (
            admitted.msg_id,
            admitted.msg_id,
        )
        assert [e.time.isoformat() for e in change.events] == ["2024-02-27T09:30:00"]

        [stay] = await search(http, "/Encounter")
        dead = {
            **stay,
            "status": "finished",
            "period": {**stay["period"], "end": "2024-03-03T04:10:00+01:00"},
            "hospitalization": {"dischargeDisposition": {"text": "Død"}},
        }
        assert (await _put(http, dead)).status_code == 200
        death = _message((await _outgoing(http))[-1], validator)
        assert (death.logistics, death.kind, death.msg_type.code) == (Logistics.DEATH, Kind.NEW, "LOG_DOD")
        assert [(e.code.code if e.code else None, e.time.isoformat()) for e in death.events] == [
            (EventCode.DEAD.value, "2024-03-03T04:10:00")
        ]
        [patient] = await search(http, "/Patient")  # the same death date on the Patient: nothing new
        assert (
            await _put(http, {**patient, "deceasedDateTime": "2024-03-03T04:10:00+01:00"})
        ).status_code == 200
        assert len(await _outgoing(http)) == 3

        [stay] = await search(http, "/Encounter")
        assert (await _put(http, {**stay, "status": "entered-in-error"})).status_code == 200
        records = await _outgoing(http)
        cancels = [_message(r, validator) for r in records[-2:]]
        assert [(m.logistics, m.kind) for m in cancels] == [
            (Logistics.DEATH, Kind.CANCEL),
            (Logistics.ADMITTED, Kind.CANCEL),
        ]
        assert [m.conversation.conversation_id if m.conversation else None for m in cancels] == [
            death.msg_id,
            admitted.msg_id,
        ]
        assert cancels[1].conversation is not None
        assert cancels[1].conversation.parent_id == change.msg_id  # the last message of the conversation
        _chained(records)
        [stay] = await search(http, "/Encounter")
        assert (await _put(http, stay)).status_code == 200
        assert len(await _outgoing(http)) == 5  # cancelled already: nothing more


async def test_a_death_written_on_the_patient_while_in_hospital(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    async with written(session_databases[backend], legacy, stay_bundle(KOMMUNE_HER, PATIENT, True)) as (
        http,
        validator,
    ):
        [patient] = await search(http, "/Patient")
        assert (
            await _put(http, {**patient, "deceasedDateTime": "2024-03-02T23:50:00+01:00"})
        ).status_code == 200
        records = await _outgoing(http)
        death = _message(records[-1], validator)
        assert (death.logistics, [e.time.isoformat() for e in death.events]) == (
            Logistics.DEATH,
            ["2024-03-02T23:50:00"],
        )
        [stay] = await search(http, "/Encounter")
        assert records[-1]["basedOn"] == [{"reference": f"Encounter/{stay['id']}"}]

        [patient] = await search(http, "/Patient")  # the death date corrected: an Endring
        assert (
            await _put(http, {**patient, "deceasedDateTime": "2024-03-02T23:40:00+01:00"})
        ).status_code == 200
        change = _message((await _outgoing(http))[-1], validator)
        assert (change.logistics, change.kind) == (Logistics.DEATH, Kind.CHANGE)
        assert change.conversation is not None
        assert change.conversation.conversation_id == death.msg_id
        [patient] = await search(http, "/Patient")  # written in error: the death is taken back
        alive = {k: v for k, v in patient.items() if k != "deceasedDateTime"}
        assert (await _put(http, alive)).status_code == 200
        cancel = _message((await _outgoing(http))[-1], validator)
        assert (cancel.logistics, cancel.kind) == (Logistics.DEATH, Kind.CANCEL)
        assert len(await _outgoing(http)) == 4


async def test_no_municipality_concerned_or_one_on_fhir_gets_nothing_and_no_patient_id_is_refused(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    async with app_client(session_databases[backend], kith_xsd_dir=str(legacy / "xsd")) as (http, _app):
        response = await http.post("/", json=stay_bundle(KOMMUNE_HER, PATIENT, False), headers=FHIR)
        assert response.status_code == 200, response.text  # no EpisodeOfCare: no municipality concerned
        orgnr = [{"system": ORGNR_SYSTEM, "value": "974589095"}]
        response = await http.post("/", json=stay_bundle(orgnr, PATIENT, True), headers=FHIR)
        assert response.status_code == 200, response.text  # the municipality is on FHIR
        assert await _outgoing(http) == []

        refused = await http.post("/", json=stay_bundle(KOMMUNE_HER, [], True), headers=FHIR)
        assert refused.status_code == 422, refused.text
        assert "patient identifier" in refused.text
        assert await _outgoing(http) == []


def _kinds(messages: list[PloMessage]) -> list[tuple[Logistics | None, Kind]]:
    return [(m.logistics, m.kind) for m in messages]


async def test_a_notice_corrected_is_an_endring_and_in_error_a_kansellering(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    async with written(session_databases[backend], legacy, notice_bundle(KOMMUNE_HER, PATIENT)) as (
        http,
        validator,
    ):
        [task] = await search(http, "/Task")
        notice = _message((await _outgoing(http))[0], validator)  # the admission is in the notice
        assert _codes(notice) == [EventCode.ADMITTED.value, EventCode.DISCHARGE_READY.value]

        later = {**task, "input": [{"type": clock.part_type("noticeDate"), "valueDate": "2024-03-02"}]}
        assert (await _put(http, later)).status_code == 200
        change = _message((await _outgoing(http))[-1], validator)
        assert (change.logistics, change.kind) == (Logistics.DISCHARGE_READY, Kind.CHANGE)
        assert change.conversation is not None
        assert (change.conversation.parent_id, change.conversation.conversation_id) == (
            notice.msg_id,
            notice.msg_id,
        )
        assert [e.time.isoformat() for e in change.events][-1] == "2024-03-02"

        [task] = await search(http, "/Task")
        withdrawn = {**task, "status": "cancelled"}
        withdrawn["output"] = [{"type": clock.part_type("withdrawn"), "valueDate": "2024-03-02"}]
        assert (await _put(http, withdrawn)).status_code == 200
        again = {k: v for k, v in withdrawn.items() if k not in ("output", "statusReason")}
        assert (await _put(http, {**again, "status": "requested"})).status_code == 200
        [task] = await search(http, "/Task")
        assert (await _put(http, {**task, "status": "entered-in-error"})).status_code == 200
        records = await _outgoing(http)
        sent = [_message(r, validator) for r in records]
        assert _kinds(sent) == [
            (Logistics.DISCHARGE_READY, Kind.NEW),
            (Logistics.DISCHARGE_READY, Kind.CHANGE),
            (Logistics.WITHDRAWN, Kind.NEW),
            (Logistics.WITHDRAWN, Kind.CANCEL),  # back to requested: the withdrawal taken back
            (Logistics.DISCHARGE_READY, Kind.CANCEL),  # in error: the notice cancelled
        ]
        assert sent[3].conversation is not None
        assert sent[3].conversation.conversation_id == sent[2].msg_id
        assert sent[4].conversation is not None
        assert (sent[4].conversation.parent_id, sent[4].conversation.conversation_id) == (
            change.msg_id,
            notice.msg_id,
        )
        _chained(records)


async def test_a_discharge_without_a_notice_goes_to_the_municipality_of_the_episode_and_can_be_taken_back(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    async with written(session_databases[backend], legacy, stay_bundle(KOMMUNE_HER, PATIENT, True)) as (
        http,
        validator,
    ):
        [stay] = await search(http, "/Encounter")
        home = {"system": "urn:oid:2.16.578.1.12.4.1.1.8408", "code": "1", "display": "Bosted/arbeidssted"}
        finished = {
            **stay,
            "status": "finished",
            "period": {**stay["period"], "end": "2024-03-04"},
            "hospitalization": {"dischargeDisposition": {"coding": [home]}},
        }
        assert (await _put(http, finished)).status_code == 200
        discharged = _message((await _outgoing(http))[-1], validator)
        assert (discharged.logistics, discharged.kind, discharged.receiver.ident("HER")) == (
            Logistics.DISCHARGED,
            Kind.NEW,
            "8300001",
        )
        assert [c.code for c in discharged.discharged_to] == ["1"]
        [stay] = await search(http, "/Encounter")  # the discharge written in error: the stay is open again
        reopened = {k: v for k, v in stay.items() if k != "hospitalization"}
        reopened |= {"status": "in-progress", "period": {"start": stay["period"]["start"]}}
        assert (await _put(http, reopened)).status_code == 200
        records = await _outgoing(http)
        sent = [_message(r, validator) for r in records]
        assert _kinds(sent) == [
            (Logistics.ADMITTED, Kind.NEW),
            (Logistics.DISCHARGED, Kind.NEW),
            (Logistics.DISCHARGED, Kind.CANCEL),
        ]
        assert sent[2].conversation is not None
        assert sent[2].conversation.conversation_id == discharged.msg_id
        _chained(records)


async def test_what_is_sent_is_understood_by_a_plo_receiver(
    session_databases: dict[str, TestDatabase], backend: str, legacy: Path
) -> None:
    """The admission, its Endring and its Kansellering, posted to the PLO intake (here, this service's
    own): one received stay, its admission time the corrected one, then in error."""
    async with app_client(session_databases[backend], kith_xsd_dir=str(legacy / "xsd")) as (http, _app):
        response = await http.post("/", json=stay_bundle(KOMMUNE_HER, PATIENT, True), headers=FHIR)
        assert response.status_code == 200, response.text
        [stay] = await search(http, "/Encounter")
        assert (
            await _put(http, {**stay, "period": {"start": "2024-02-27T09:30:00+01:00"}})
        ).status_code == 200
        [stay] = await search(http, "/Encounter")
        assert (await _put(http, {**stay, "status": "entered-in-error"})).status_code == 200
        records = await _outgoing(http)
        assert len(records) == 3
        received: list[str] = []
        for record in records:
            status, apprec = await post(
                http, base64.b64decode(record["payload"][0]["contentAttachment"]["data"])
            )
            assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors
            kept = [s for s in await search(http, "/Encounter") if s["id"] != stay["id"]]
            received += [f"{s['status']} {s['period']['start']}" for s in kept]
        assert received == [
            "in-progress 2024-02-27T14:00:00+01:00",
            "in-progress 2024-02-27T09:30:00+01:00",
            "entered-in-error 2024-02-27T09:30:00+01:00",
        ]
