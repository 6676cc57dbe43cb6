"""The Provenance of a core-journal source (pure): who, on whose behalf, with which system."""

from __future__ import annotations

from typing import Any

from app.resources.core_journal.classify import Writer, source_extension
from app.resources.core_journal.provenance import source_provenance
from app.resources.no_basis.identifiers import HPR_SYSTEM, ORGNR_SYSTEM
from tests.resources.core_journal.builders import PENICILLIN, allergy


def agents(provenance: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    return [(a["type"]["coding"][0]["code"], a["who"], a.get("onBehalfOf")) for a in provenance["agent"]]


def test_the_author_acts_on_behalf_of_the_organisation_with_the_system_as_assembler() -> None:
    extension = source_extension(
        "AllergyIntolerance/a1", allergy(PENICILLIN), Writer(("998765432",), "1234567", "DIPS")
    )
    provenance = source_provenance(
        "AllergyIntolerance/e1", "Patient/kari", extension, "2026-12-07T06:00:00Z", True
    )
    organisation = {"identifier": {"system": ORGNR_SYSTEM, "value": "998765432"}}
    assert agents(provenance) == [
        ("author", {"identifier": {"system": HPR_SYSTEM, "value": "1234567"}}, organisation),
        ("assembler", {"display": "DIPS"}, None),
    ]
    assert provenance["target"] == [{"reference": "AllergyIntolerance/e1"}, {"reference": "Patient/kari"}]
    assert provenance["entity"] == [{"role": "source", "what": {"reference": "AllergyIntolerance/a1"}}]
    assert provenance["activity"]["coding"][0]["code"] == "CREATE"


def test_an_organisation_without_a_person_is_the_author_and_nothing_known_still_names_an_agent() -> None:
    by_org = source_extension("AllergyIntolerance/a1", allergy(PENICILLIN), Writer(("998765432",)))
    [(kind, who, behalf)] = agents(
        source_provenance("X/e", "Patient/kari", by_org, "2026-12-07T06:00:00Z", False)
    )
    assert (kind, who, behalf) == (
        "author",
        {"identifier": {"system": ORGNR_SYSTEM, "value": "998765432"}},
        None,
    )
    unknown = source_extension("AllergyIntolerance/a1", allergy(PENICILLIN), Writer())
    [(kind, who, _)] = agents(
        source_provenance("X/e", "Patient/kari", unknown, "2026-12-07T06:00:00Z", False)
    )
    assert (kind, who) == ("author", {"display": "ukjent kilde"})
