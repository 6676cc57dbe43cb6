"""The pregnancy's dates (pure): due date by last menstrual period (Naegele) and by ultrasound, which of them
is in force, and the gestational age in weeks+days ("12+3") on a day or at an instant in Norway.

Everything counts whole days on the calendar (`date`), never hours: a gestational age is a property of the
woman's local day, so an instant is first converted to the Europe/Oslo date (`gestational_age_at`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")
TERM_DAYS = 280  # 40+0: the due date is 280 days after the first day of the last menstrual period
STANDARD_CYCLE = 28  # Naegele's rule assumes ovulation on day 14 of a 28-day cycle
# Cycle lengths Naegele's correction is meaningful for; outside them the LMP dates nothing (ultrasound does).
MIN_CYCLE, MAX_CYCLE = 21, 45
# Gestational ages the card shows: from 0+0 (the LMP) up to and including 45+0. Outside them the dates are
# wrong (a typo in a date, an old episode never closed), so the functions refuse rather than clamp: a
# clamped "45+0" on the card would look like a real, very overdue pregnancy.
MAX_GA_DAYS = 45 * 7
_WEEKS_DAYS = re.compile(r"^(\d{1,2})\+([0-6])$")


class DatingMethod(StrEnum):
    """How the due date in force was set."""

    LMP = "lmp"  # termin etter siste menstruasjon
    ULTRASOUND = "ultrasound"  # termin etter ultralyd


@dataclass(frozen=True, order=True)
class GestationalAge:
    """A gestational age as whole days since the LMP-equivalent day; shown as weeks+days ("12+3")."""

    days: int

    def __post_init__(self) -> None:
        if not 0 <= self.days <= MAX_GA_DAYS:
            raise ValueError(f"gestational age of {self.days} days is outside 0+0..45+0")

    @classmethod
    def of(cls, weeks: int, days: int = 0) -> GestationalAge:
        if not 0 <= days <= 6:
            raise ValueError(f"days of a week must be 0..6, not {days}")
        return cls(weeks * 7 + days)

    @classmethod
    def parse(cls, text: str) -> GestationalAge:
        """ "12+3" -> 12 weeks and 3 days (the card's and programme.json's notation)."""
        match = _WEEKS_DAYS.match(text.strip())
        if match is None:
            raise ValueError(f"not a gestational age in weeks+days: {text!r}")
        return cls.of(int(match.group(1)), int(match.group(2)))

    @property
    def weeks(self) -> int:
        return self.days // 7

    @property
    def day(self) -> int:
        """The days past the completed weeks (0..6)."""
        return self.days % 7

    def __str__(self) -> str:
        return f"{self.weeks}+{self.day}"


def naegele_due_date(lmp: date, cycle_length_days: int = STANDARD_CYCLE) -> date:
    """Due date by the last menstrual period: LMP + 280 days, moved by how much longer or shorter the
    woman's cycle is than 28 days (a later ovulation means a later due date)."""
    if not MIN_CYCLE <= cycle_length_days <= MAX_CYCLE:
        raise ValueError(f"cycle length {cycle_length_days} days is outside {MIN_CYCLE}..{MAX_CYCLE}")
    return lmp + timedelta(days=TERM_DAYS + cycle_length_days - STANDARD_CYCLE)


def due_date_from_ultrasound(scan_date: date, gestational_age_days: int) -> date:
    """Due date by ultrasound: the scan measured the gestational age on the scan date."""
    age = GestationalAge(gestational_age_days)
    return scan_date + timedelta(days=TERM_DAYS - age.days)


def due_date_in_force(by_lmp: date | None, by_ultrasound: date | None) -> tuple[date, DatingMethod]:
    """The due date the card shows. Norwegian practice: termin fastsettes ved ultralyd, so an ultrasound
    date wins as soon as there is one, whatever the difference to the LMP date."""
    if by_ultrasound is not None:
        return by_ultrasound, DatingMethod.ULTRASOUND
    if by_lmp is not None:
        return by_lmp, DatingMethod.LMP
    raise ValueError("no due date: neither by LMP nor by ultrasound")


def gestational_age(due: date, on: date) -> GestationalAge:
    """The gestational age on a day: 280 days less the days left to the due date. ValueError before the
    LMP-equivalent day (0+0) and after 45+0 (see MAX_GA_DAYS)."""
    days = TERM_DAYS - (due - on).days
    if not 0 <= days <= MAX_GA_DAYS:
        raise ValueError(f"{on.isoformat()} is outside the pregnancy due {due.isoformat()} (0+0..45+0)")
    return GestationalAge(days)


def gestational_age_at(due: date, instant: datetime) -> GestationalAge:
    """The gestational age at an instant: its date in Oslo (so 23:30 UTC in summer is already the next day,
    and DST changes move nothing), then `gestational_age`. A naive datetime is refused: its day is unknown."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("an instant must carry its UTC offset")
    return gestational_age(due, local_date(instant))


def local_date(instant: datetime) -> date:
    """The calendar day of an aware instant in Norway."""
    return instant.astimezone(OSLO).date()


def date_at(due: date, age: GestationalAge) -> date:
    """The day the pregnancy reaches a gestational age (the inverse of `gestational_age`)."""
    return due - timedelta(days=TERM_DAYS - age.days)
