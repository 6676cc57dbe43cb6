"""The research extract's pseudonymisation and reduction (pure): pseudonyms are keyed and stable, no
identifier, name, address, free text, id or reference survives, and dates become gestational ages."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest

from app.fhir.outcome import FhirError
from app.resources.no_basis.identifiers import FNR_SYSTEM
from app.resources.no_basis.search import MUNICIPALITY_EXTENSION
from app.resources.pregnancy_card import pseudonym
from app.resources.pregnancy_card.examples import observation, quantity
from app.resources.pregnancy_card.extract import (
    FORMAT,
    Pregnancy,
    age_in_years,
    codes,
    day_of,
    finished_since,
    gestation,
    record,
)
from app.resources.pregnancy_card.extract_operation import RESEARCH_SCOPE, parse_since, refusal
from app.security.principal import Principal
from app.security.scopes import parse_scopes
from tests.resources.pregnancy_card.builders import registered_pregnancy

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
FNR = "14038512345"  # synthetic: never a check of its digits here


def mari() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "mari",
        "identifier": [{"system": FNR_SYSTEM, "value": FNR}],
        "name": [{"family": "Testesen", "given": ["Mari"]}],
        "telecom": [{"system": "phone", "value": "99887766"}],
        "birthDate": "1994-05-17",
        "address": [
            {
                "line": ["Storgata 1"],
                "postalCode": "5003",
                "city": "Bergen",
                "_district": {
                    "extension": [
                        {"url": MUNICIPALITY_EXTENSION, "valueCoding": {"code": "4601"}},
                    ]
                },
            }
        ],
    }


def finished(resources: list[dict[str, Any]]) -> Pregnancy:
    """The builders' pregnancy, ended 2027-04-08 (40+2 by the ultrasound's due date 2027-04-06)."""
    episode = next(r for r in resources if r["resourceType"] == "EpisodeOfCare")
    episode = {**episode, "status": "finished", "period": {"start": "2026-08-20", "end": "2027-04-08"}}
    own: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        if r["resourceType"] in ("Encounter", "Observation", "Condition", "ServiceRequest", "Procedure"):
            own.setdefault(r["resourceType"], []).append(r)
    own["Observation"] += [
        observation("g", "preg1", "mari", "gravida", "2026-08-20", {"valueInteger": 2}),
        observation("p", "preg1", "mari", "para", "2026-08-20", {"valueInteger": 1}),
        {
            **observation(
                "t", "preg1", "mari", "tobacco", "2026-08-20", {"valueString": "Røyker 5 om dagen"}
            ),
            "note": [{"text": "Samboer Per røyker også"}],
        },
        observation("hb", "preg1", "mari", "hb", "2026-11-02", quantity(12.1, "g/dL")),
    ]
    return Pregnancy(mari(), episode, own)


def test_pseudonyms_are_stable_keyed_and_domain_separated() -> None:
    patient = mari()
    assert pseudonym.woman(KEY, patient) == pseudonym.woman(KEY, dict(patient))
    assert pseudonym.woman(KEY, patient) != pseudonym.woman(OTHER_KEY, patient)
    assert len(pseudonym.woman(KEY, patient)) == 64
    # by her fødselsnummer: the same woman as another Patient resource has the same pseudonym
    assert pseudonym.woman(KEY, {**patient, "id": "mari-2"}) == pseudonym.woman(KEY, patient)
    assert pseudonym.person_identity({"id": "x"}) == "Patient/x"
    # a woman's and a pregnancy's pseudonym never collide, even for the same text
    assert pseudonym.pseudonym(KEY, "woman", "a") != pseudonym.pseudonym(KEY, "pregnancy", "a")
    with pytest.raises(ValueError, match="32 bytes"):
        pseudonym.woman(b"short", patient)


def test_the_record_has_no_direct_identifier_free_text_id_or_date() -> None:
    data = finished(registered_pregnancy("mari", "preg1"))
    out = record(KEY, data)
    text = orjson.dumps(out).decode()
    for leaked in (
        FNR,
        "Testesen",
        "Mari",
        "1994",
        "Storgata",
        "5003",
        "Bergen",
        "99887766",
        "4601",
        "Kan jeg fortsette",  # her question (not read, and never a field)
        "Røyker 5",  # a valueString
        "Samboer",  # an Observation note
        "preg1",  # ids and references link back to the source
        "Encounter/",
        "Patient/",
        "Legekontoret",  # who she saw
        "2026-",  # any date
        "2027-04-0",
    ):
        assert leaked not in text, leaked
    assert out["format"] == FORMAT
    assert out["woman"] == pseudonym.woman(KEY, mari())
    assert out["pregnancy"] == pseudonym.pregnancy(KEY, "preg1")
    assert out["ageAtDue"] == 32  # born 1994-05-17, due 2027-04-06
    assert out["county"] == "46"
    assert out["due"] == {"month": "2027-04", "method": "ultrasound", "byLmpDaysFromDue": 3}
    assert out["start"] == {"ga": "7+2", "gaDays": 51}
    assert out["end"] == {"ga": "40+2", "gaDays": 282}
    assert (out["gravida"], out["para"]) == (2, 1)
    first, second = out["consultations"]
    assert first["at"] == {"ga": "7+2", "gaDays": 51}
    assert second["at"] == {"ga": "17+0", "gaDays": 119}
    pressure = next(o for o in first["observations"] if o.get("key") == "bp")
    assert [c["value"]["quantity"]["value"] for c in pressure["components"]] == [112, 70]
    weight = next(o for o in second["observations"] if o.get("key") == "weight")
    assert weight["value"] == {
        "quantity": {"value": 66.0, "unit": "kg", "system": "http://unitsofmeasure.org"}
    }
    assert weight["code"] == [{"system": "http://loinc.org", "code": "29463-7"}]  # no display, no text
    loose = {o["key"]: o for o in out["observations"]}
    assert loose["lmp"]["value"] == {"daysFromDue": -279}  # a date value: days from the due date
    assert "value" not in loose["tobacco"]  # free text left out
    assert loose["hb"]["at"] == {"ga": "17+6", "gaDays": 125}
    assert out["conditions"] == []  # the pregnancy Condition itself says nothing


def test_the_same_data_gives_the_same_record_and_another_key_other_pseudonyms() -> None:
    data = finished(registered_pregnancy("mari", "preg1"))
    assert record(KEY, data) == record(KEY, data)
    other = record(OTHER_KEY, data)
    assert other["woman"] != record(KEY, data)["woman"]
    assert {**other, "woman": "", "pregnancy": ""} == {**record(KEY, data), "woman": "", "pregnancy": ""}


def test_dates_become_gestational_ages() -> None:
    due = date(2027, 4, 6)
    assert gestation(due, date(2026, 10, 27)) == {"ga": "17+0", "gaDays": 119}
    assert gestation(due, date(2020, 1, 1)) is None  # outside 0+0..45+0: no age, and no date either
    assert gestation(None, date(2026, 10, 27)) is None
    assert day_of("2026-10-27T23:30:00+00:00") == date(2026, 10, 28)  # her day in Norway
    assert day_of("2026") is None
    assert age_in_years(date(1994, 5, 17), date(2027, 4, 6)) == 32
    assert age_in_years(date(1994, 4, 6), date(2027, 4, 6)) == 33


def test_codes_keep_system_and_code_only() -> None:
    concept = {"coding": [{"system": "s", "code": "c", "display": "Mari's own words"}], "text": "free"}
    assert codes(concept) == [{"system": "s", "code": "c"}]
    assert codes([concept, {"text": "only text"}]) == [{"system": "s", "code": "c"}]


def test_finished_since() -> None:
    ended = {"status": "finished", "period": {"start": "2026-01-01", "end": "2026-09-30"}}
    assert finished_since(ended, None)
    assert finished_since(ended, date(2026, 9, 30))
    assert not finished_since(ended, date(2026, 10, 1))
    assert not finished_since({**ended, "status": "active"}, None)
    assert not finished_since({"status": "finished", "period": {"start": "2026-01-01"}}, None)
    assert parse_since(None) is None
    assert parse_since("2026-09-30") == date(2026, 9, 30)
    with pytest.raises(FhirError):
        parse_since("last week")


def principal(kind: str, scopes: str) -> Principal:
    return Principal(kind=kind, subject="s", client_id="c", issuer="i", scopes=parse_scopes(scopes))  # type: ignore[arg-type]


def test_who_may_run_the_extract() -> None:
    assert refusal(principal("system", f"system/*.rs {RESEARCH_SCOPE}")) is None
    assert refusal(principal("system", "system/*.cruds")) is not None  # no research scope
    assert refusal(principal("system", f"system/Observation.rs {RESEARCH_SCOPE}")) is not None  # too narrow
    assert refusal(principal("personnel", f"user/*.cruds {RESEARCH_SCOPE}")) is not None
    assert refusal(principal("citizen", f"patient/*.rs {RESEARCH_SCOPE}")) is not None
    assert refusal(object()) is not None
