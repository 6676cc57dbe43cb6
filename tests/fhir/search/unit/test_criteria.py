"""criteria: conditional criteria parsed strictly, and a new resource judged against its own criteria on
the rows of the parameters they name."""

from __future__ import annotations

from typing import Any

import pytest

from app.fhir.outcome import FhirError
from app.fhir.registry import Registry
from app.fhir.search.criteria import parse_criteria, require_match, resource_matches
from app.fhir.search.extract import index_rows
from app.resources.no_basis.identifiers import FNR_SYSTEM, synthetic_fnr

REGISTRY = Registry.standard()
BASE = "http://fhir.test"
FNR = synthetic_fnr(14, 2, 1969, 230)
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "identifier": [
        {
            "system": FNR_SYSTEM,
            "value": FNR,
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}]},
        }
    ],
    "active": True,
    "gender": "female",
    "name": [{"family": "Fjeldheim", "given": ["Sigrid"]}],
}
CRITERIA = [
    f"identifier={FNR_SYSTEM}|{FNR}",
    f"identifier={FNR}",
    f"identifier=urn:other|{FNR}",
    f"identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|NI|{FNR}",
    f"identifier={FNR_SYSTEM}|{FNR}&gender=female",
    f"identifier={FNR_SYSTEM}|{FNR}&gender=male",
    "active=true&gender=female",
    "_id=p1&gender=female",
    f"identifier={FNR_SYSTEM}|{FNR}&name=Fjeldheim",  # a string clause: judged in the database
]


def test_the_criteria_name_their_parameters_without_modifiers_or_chains() -> None:
    rtype = REGISTRY.types["Observation"]
    criteria = parse_criteria(
        rtype, "subject:Patient.identifier=a|b&code:text=x&status=final", REGISTRY, BASE
    )
    assert criteria.params == {"subject", "code", "status"}


@pytest.mark.parametrize("query", CRITERIA)
def test_the_named_parameters_judge_as_every_row_does(query: str) -> None:
    rtype = REGISTRY.types["Patient"]
    criteria = parse_criteria(rtype, query, REGISTRY, BASE)
    every_row = index_rows(rtype, PATIENT).token
    named_rows = index_rows(rtype, PATIENT, only=criteria.params).token
    assert len(named_rows) < len(every_row)
    for res_id in ("p1", None):
        assert resource_matches(criteria, res_id, named_rows) == resource_matches(criteria, res_id, every_row)


def test_a_resource_that_does_not_match_its_criteria_is_refused() -> None:
    rtype = REGISTRY.types["Patient"]
    require_match(parse_criteria(rtype, CRITERIA[0], REGISTRY, BASE), rtype, None, PATIENT)
    with pytest.raises(FhirError, match="does not match its own conditional criteria"):
        require_match(parse_criteria(rtype, CRITERIA[2], REGISTRY, BASE), rtype, None, PATIENT)
    with pytest.raises(FhirError, match="does not match its own conditional criteria"):
        require_match(parse_criteria(rtype, CRITERIA[5], REGISTRY, BASE), rtype, None, PATIENT)
