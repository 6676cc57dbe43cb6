"""The Provenance of a core-journal entry's source: one each time a source is recorded in an entry (a new
entry, a further source merged in, a source that changed), so the entry's history says who, where and
with which system every part of it came from. Pure functions; flow.py writes them.

`target` is the entry and the patient (so the Provenance is in the patient's compartment and under her
access rules, as the medication list's Provenances are), `entity` the source resource (role `source`),
`agent` the author (`recorder`/`asserter`, or the writer's HPR number) on behalf of the organisation,
else the organisation itself, and the source system as the `assembler` (by name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"


def _parts(extension: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["url"]: p for p in extension.get("extension", []) if isinstance(p, dict) and "url" in p}


def _agent(kind: str, who: dict[str, Any], on_behalf_of: dict[str, Any] | None = None) -> dict[str, Any]:
    agent: dict[str, Any] = {"type": {"coding": [{"system": PARTICIPANT_TYPE, "code": kind}]}, "who": who}
    if on_behalf_of is not None:
        agent["onBehalfOf"] = on_behalf_of
    return agent


def source_provenance(
    entry: str, patient: str, extension: Mapping[str, Any], recorded: str, created: bool
) -> dict[str, Any]:
    """The Provenance of one source (its core-journal source `extension`) recorded in `entry`."""
    parts = _parts(extension)
    source = parts["resource"]["valueReference"]
    organisation = parts.get("organization", {}).get("valueReference")
    author = parts.get("author", {}).get("valueReference")
    agents = []
    if author is not None:
        agents.append(_agent("author", author, organisation))
    elif organisation is not None:
        agents.append(_agent("author", organisation))
    system = parts.get("system", {}).get("valueString")
    if system:
        agents.append(_agent("assembler", {"display": system}))
    if not agents:  # R4 requires an agent: the source resource's own writer is all that is known
        agents.append(_agent("author", {"display": "ukjent kilde"}))
    return {
        "resourceType": "Provenance",
        "target": [{"reference": entry}, {"reference": patient}],
        "recorded": recorded,
        "activity": {"coding": [{"system": DATA_OPERATION, "code": "CREATE" if created else "UPDATE"}]},
        "reason": [{"text": "Kritisk informasjon registrert i kjernejournalen"}],
        "agent": agents,
        "entity": [{"role": "source", "what": source}],
    }
