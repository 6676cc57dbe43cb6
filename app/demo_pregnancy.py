"""The demo's pregnant woman (app/demo.py): Sigrid, with an ongoing pregnancy dated from the load day.

Her dates follow the day the demo is loaded (`today`, Oslo), so her card is meaningful whenever `make
run` starts: she is GA_TODAY into the pregnancy by the due date in force. Her GP registered the
pregnancy with her last period and cycle; the hospital's early ultrasound (a completed order) moved the
due date ULTRASOUND_SHIFT days earlier (the due date in force: *termin fastsettes ved ultralyd*), and it
did the routine ultrasound at 18 weeks; three
consultations of the basic programme were held (CONSULTATIONS), the one at week 24 by the midwife at the
municipal health station; she has written a question for the next one. The pack's flow derives the due
dates and her CarePlan itself when the demo is loaded. Synthetic identities only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from app.resources.pregnancy_card import examples as card
from app.resources.pregnancy_card.dates import STANDARD_CYCLE, TERM_DAYS

PATIENT, EPISODE = "sigrid", "svangerskap-sigrid"
TEAM = f"{EPISODE}-team"
GP = ("PractitionerRole/fastlege-lind", "Øyvind Lind", "Fastlege")
GP_OFFICE = ("Organization/legekontor-fjordby", "Fjordby legekontor (demo)")
MIDWIFE = ("PractitionerRole/jordmor-dahl", "Hanne Dahl", "Jordmor")
HEALTH_STATION = ("Organization/helsestasjon-fjordby", "Fjordby helsestasjon (demo)")
HOSPITAL = ("Organization/sykehuset-fjordby", "Sykehuset Fjordby HF (demo)")
GA_TODAY = 29 * 7 + 3  # past week 28's window: the plan's next consultation is week 32's
CYCLE_DAYS = 30  # Naegele: the due date by her last period is two days later than for a 28-day cycle
ULTRASOUND_SHIFT = 4  # the early ultrasound's due date is this many days before the one by her period
ULTRASOUND_GA = 12 * 7 + 2
ROUTINE_ULTRASOUND_GA = 18 * 7 + 3
QUESTION = "Kan jeg fortsatt trene styrke på treningssenteret?"


@dataclass(frozen=True)
class Consultation:
    ga_days: int  # gestational age (by the due date in force) the day it was held
    where: tuple[str, str]  # the Organization (reference, display)
    who: tuple[str, str, str]  # the PractitionerRole (reference, display, role) who held it
    weight: float  # kg
    systolic: int
    diastolic: int
    sf_height: float | None  # cm; from week 24, with the fetal heart rate (programme.json)
    fetal_heart_rate: int | None  # beats per minute


CONSULTATIONS = (
    Consultation(9 * 7 + 2, GP_OFFICE, GP, 63.8, 114, 72, None, None),  # uke-6-12
    Consultation(24 * 7 + 1, HEALTH_STATION, MIDWIFE, 69.5, 118, 74, 23.5, 142),  # uke-24
    Consultation(28 * 7 + 2, GP_OFFICE, GP, 71.9, 121, 76, 27.5, 138),  # uke-28
)


def due_date(today: date) -> date:
    """The due date in force (the ultrasound's) for a load on `today`."""
    return today + timedelta(days=TERM_DAYS - GA_TODAY)


def on_day(today: date, ga_days: int) -> date:
    """The day she was `ga_days` into the pregnancy."""
    return due_date(today) - timedelta(days=TERM_DAYS - ga_days)


def last_period(today: date) -> date:
    """Her last period: the due date by it (Naegele with her cycle) is ULTRASOUND_SHIFT days later."""
    by_lmp = due_date(today) + timedelta(days=ULTRASOUND_SHIFT)
    return by_lmp - timedelta(days=TERM_DAYS + CYCLE_DAYS - STANDARD_CYCLE)


def pregnancy_resources(today: date) -> list[dict[str, Any]]:
    """Her EpisodeOfCare, Condition, CareTeam, dating, consultations and question (not the Patient, nor
    the midwife and health station, which app/demo.py lists with the other demo identities)."""
    eid, pid = EPISODE, PATIENT
    lmp = last_period(today).isoformat()
    registered = on_day(today, CONSULTATIONS[0].ga_days).isoformat()
    scanned = on_day(today, ULTRASOUND_GA).isoformat()
    members = [GP, (*GP_OFFICE, "Fastlegekontor"), MIDWIFE, (*HOSPITAL, "Fødeavdeling")]
    resources = [
        card.care_team(TEAM, pid, members),
        card.episode(eid, pid, registered, team=TEAM, follow_up="begge"),
        card.pregnancy(eid, pid, lmp),
        card.observation(f"{eid}-lmp", eid, pid, "lmp", registered, {"valueDateTime": lmp}),
        card.observation(
            f"{eid}-syklus", eid, pid, "cycle_length", registered, card.quantity(CYCLE_DAYS, "d")
        ),
        card.observation(
            f"{eid}-termin-ul",
            eid,
            pid,
            "edd_ultrasound",
            scanned,
            {"valueDateTime": due_date(today).isoformat()},
        ),
        card.order(f"{eid}-tidlig-ul", eid, pid, "early_ultrasound", scanned, HOSPITAL[0]),
        card.order(
            f"{eid}-rutine-ul",
            eid,
            pid,
            "routine_ultrasound",
            on_day(today, ROUTINE_ULTRASOUND_GA).isoformat(),
            HOSPITAL[0],
        ),
    ]
    for number, held in enumerate(CONSULTATIONS, 1):
        day, cid = on_day(today, held.ga_days).isoformat(), f"{eid}-k{number}"
        resources += [
            {
                **card.consultation(cid, eid, pid, day, *held.where),
                "participant": [{"individual": {"reference": held.who[0], "display": held.who[1]}}],
            },
            card.observation(f"{cid}-vekt", eid, pid, "weight", day, card.quantity(held.weight, "kg"), cid),
            card.blood_pressure(f"{cid}-bt", eid, pid, day, cid, held.systolic, held.diastolic),
        ]
        if held.sf_height is not None:
            sf = card.quantity(held.sf_height, "cm")
            resources.append(card.observation(f"{cid}-sf", eid, pid, "sf_height", day, sf, cid))
        if held.fetal_heart_rate is not None:
            heart = card.quantity(held.fetal_heart_rate, "/min")
            resources.append(
                card.observation(f"{cid}-fosterlyd", eid, pid, "fetal_heart_rate", day, heart, cid)
            )
    sent = f"{(today - timedelta(days=1)).isoformat()}T20:00:00+01:00"
    resources.append(card.note(f"{eid}-sporsmal-1", eid, pid, QUESTION, sent))
    return resources
