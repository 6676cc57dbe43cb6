"""The demo citizens the development sign-in offers: the Patients of the demo data set (app/demo.py).

Derived from the demo resources, not listed again, so the portal offers exactly the people `make run`
loads. Synthetic identities only (Tenor-style fødselsnummer, month + 80).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from app.demo import demo_resources
from app.resources.no_basis.identifiers import FNR_SYSTEM


@dataclass(frozen=True)
class DemoCitizen:
    patient_id: str  # the Patient's id in the demo data
    name: str  # given names and family name, as a portal greets them
    birth_date: str  # YYYY-MM-DD
    pid: str  # the synthetic fødselsnummer, the token's pid claim; never sent to the page

    def public(self) -> dict[str, str]:
        """What the sign-in page shows: no fødselsnummer (the page has no use for it)."""
        return {"patient": self.patient_id, "name": self.name, "birthDate": self.birth_date}


def _citizen(patient: dict[str, Any]) -> DemoCitizen | None:
    pid = next((i["value"] for i in patient.get("identifier", []) if i.get("system") == FNR_SYSTEM), None)
    if pid is None:
        return None
    name = (patient.get("name") or [{}])[0]
    full_name = " ".join([*name.get("given", []), name.get("family", "")]).strip()
    return DemoCitizen(patient["id"], full_name or patient["id"], patient.get("birthDate", ""), pid)


@cache
def demo_citizens() -> tuple[DemoCitizen, ...]:
    """Every demo Patient with a fødselsnummer, in the order of the demo data."""
    patients = (r for r in demo_resources() if r["resourceType"] == "Patient")
    return tuple(c for c in map(_citizen, patients) if c is not None)


def demo_citizen(patient_id: str) -> DemoCitizen | None:
    return next((c for c in demo_citizens() if c.patient_id == patient_id), None)
