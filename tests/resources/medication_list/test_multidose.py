"""Multidose ownership as pure rules: who may change the multidose part, and the proposal Task."""

from __future__ import annotations

from datetime import UTC, datetime

from app.resources.medication_list.codes import MULTIDOSE_RESPONSIBLE_EXTENSION, Aspect
from app.resources.medication_list.diff import diff
from app.resources.medication_list.multidose import proposal_task, responsible, split
from app.resources.no_basis.identifiers import HPR_SYSTEM, ORGNR_SYSTEM
from tests.resources.medication_list.builders import in_multidose, metformin, simvastatin, tran

GP_ORGNR, HOSPITAL_ORGNR = "912345680", "987654321"


def medication_list() -> dict[str, object]:
    return {
        "resourceType": "List",
        "id": "l1",
        "extension": [
            {
                "url": MULTIDOSE_RESPONSIBLE_EXTENSION,
                "extension": [
                    {
                        "url": "practitioner",
                        "valueReference": {"identifier": {"system": HPR_SYSTEM, "value": "1000001"}},
                    },
                    {
                        "url": "organization",
                        "valueReference": {"identifier": {"system": ORGNR_SYSTEM, "value": GP_ORGNR}},
                    },
                ],
            }
        ],
    }


def test_without_multidose_anyone_with_access_changes_everything() -> None:
    changes = diff([{**in_multidose(metformin()), "id": "a"}], [tran()])
    assert split(changes, responsible({"resourceType": "List"}), [HOSPITAL_ORGNR]) == (changes, [])


def test_only_the_responsible_organisation_changes_the_multidose_part() -> None:
    owner = responsible(medication_list())
    assert owner is not None
    assert owner.orgnr == GP_ORGNR
    shared = [{**in_multidose(metformin()), "id": "a"}, {**simvastatin(), "id": "b"}]
    incoming = [
        in_multidose(metformin(dose="2 tabletter", dose_value=2)),
        tran(),
        in_multidose(simvastatin()),
    ]
    changes = diff(shared, incoming)
    assert split(changes, owner, [GP_ORGNR, None]) == (changes, [])
    applied, proposed = split(changes, owner, [HOSPITAL_ORGNR])
    # the dose change of a multidose medicine, and making simvastatin multidose, go to the doctor
    assert [(c.key, c.aspects) for c in proposed] == [
        ("fest:ID_TEST-METFORMIN-500", (Aspect.DOSE,)),
        ("atc:C10AA01", (Aspect.MULTIDOSE,)),
    ]
    assert [c.key for c in applied] == ["text:tranflytende"]
    assert split(changes, owner, [None])[1] == proposed  # no organisation: proposes too


def test_proposal_task() -> None:
    owner = responsible(medication_list())
    assert owner is not None
    (change,) = diff([{**in_multidose(metformin()), "id": "a"}], [in_multidose(metformin(dose_value=2))])
    task = proposal_task(
        change,
        "kari",
        "l1",
        owner,
        {"display": "Sykehuset"},
        "Endret ved innleggelse",
        datetime(2026, 12, 7, tzinfo=UTC),
    )
    assert (task["status"], task["intent"]) == ("requested", "proposal")
    assert task["owner"] == {"identifier": {"system": HPR_SYSTEM, "value": "1000001"}}
    assert task["for"] == {"reference": "Patient/kari"}
    assert task["contained"][0]["id"] == "proposed"
    inputs = {i["type"]["text"]: i for i in task["input"]}
    assert inputs["shared"]["valueReference"] == {"reference": "MedicationStatement/a"}
    assert inputs["aspect"]["valueCode"] == "dose"
