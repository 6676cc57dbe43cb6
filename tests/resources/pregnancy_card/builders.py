"""One synthetic pregnancy as FHIR resources with fixed ids, for the pack's HTTP tests.

Mari (a synthetic woman) is registered by her GP with her last menstrual period; the hospital's early
ultrasound then dates the pregnancy; the midwife records consultations; Mari writes a question. The
resources are built with the pack's own builders (app/resources/pregnancy_card/examples.py).
"""

from __future__ import annotations

from app.resources.pregnancy_card.examples import (
    Resource,
    blood_pressure,
    care_team,
    consultation,
    episode,
    note,
    observation,
    pregnancy,
    quantity,
)


def patient(pid: str, birth_date: str = "1994-05-17") -> Resource:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": "Testesen", "given": ["Mari"]}],
        "gender": "female",
        "birthDate": birth_date,
    }


def care_setting() -> list[Resource]:
    """The GP office, the health station and the GP the pregnancy's resources name."""
    return [
        {"resourceType": "Organization", "id": "gp-office", "name": "Legekontoret"},
        {"resourceType": "Organization", "id": "health-station", "name": "Helsestasjonen"},
        {"resourceType": "Practitioner", "id": "gp", "name": [{"family": "Lege", "given": ["Kari"]}]},
    ]


def registered_pregnancy(pid: str, eid: str) -> list[Resource]:
    """Registered by the GP on 2026-08-20 with LMP 2026-07-01 and a 30-day cycle (due 2027-04-09 by
    LMP); the hospital's ultrasound on 2026-09-22 measured 12+0 (due 2027-04-06, which wins); two
    consultations; a question from Mari."""
    return [
        *care_setting(),
        patient(pid),
        care_team(f"{eid}-team", pid, [("Practitioner/gp", "Fastlege Kari Lege", "Fastlege")]),
        episode(eid, pid, "2026-08-20", team=f"{eid}-team"),
        pregnancy(eid, pid, "2026-07-01"),
        observation(f"{eid}-lmp", eid, pid, "lmp", "2026-08-20", {"valueDateTime": "2026-07-01"}),
        observation(f"{eid}-cycle", eid, pid, "cycle_length", "2026-08-20", quantity(30, "d")),
        observation(
            f"{eid}-edd-us", eid, pid, "edd_ultrasound", "2026-09-22", {"valueDateTime": "2027-04-06"}
        ),
        consultation(f"{eid}-c1", eid, pid, "2026-08-20", "Organization/gp-office", "Legekontoret"),
        observation(f"{eid}-w1", eid, pid, "weight", "2026-08-20", quantity(64.2, "kg"), f"{eid}-c1"),
        blood_pressure(f"{eid}-bp1", eid, pid, "2026-08-20", f"{eid}-c1", 112, 70),
        consultation(f"{eid}-c2", eid, pid, "2026-10-27", "Organization/health-station", "Helsestasjonen"),
        observation(f"{eid}-w2", eid, pid, "weight", "2026-10-27", quantity(66.0, "kg"), f"{eid}-c2"),
        observation(f"{eid}-sf2", eid, pid, "sf_height", "2026-10-27", quantity(19, "cm"), f"{eid}-c2"),
        note(f"{eid}-q1", eid, pid, "Kan jeg fortsette å løpe?", "2026-10-30T20:00:00+01:00"),
    ]
