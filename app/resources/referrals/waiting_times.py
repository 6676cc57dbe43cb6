"""Norwegian working days and waiting-time figures for referral assessment.

A working day (virkedag) is Monday–Friday that is not a public holiday (helligdag/høytidsdag; lov om
helligdager og helligdagsfred, lov om 1. og 17. mai). Saturdays are not working days here, which is how
the health services count the 10-day assessment deadline (pasient- og brukerrettighetsloven § 2-2).
Christmas Eve and New Year's Eve are ordinary working days by law.

The holidays come from the `holidays` package (Norway, without its optional Sundays). For every day of
1947–2100 it gives the same answers as the hand-written calendar it replaced (issue 13). Outside that
range it differs: it covers only 1901–2100 (no holidays at all after 2100), and before 1947, when the
law of 1 and 17 May came, it has neither day.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import holidays
from dateutil.easter import EASTER_WESTERN, easter

ASSESSMENT_WORKING_DAYS = 10


def easter_sunday(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (dateutil's, which the `holidays` package counts from)."""
    return easter(year, EASTER_WESTERN)


@lru_cache(maxsize=256)
def public_holidays(year: int) -> dict[date, str]:
    """Norwegian public holidays of a year, date -> Norwegian name ("; " between two on one day)."""
    # A plain dict: a HolidayBase converts every key it is asked about and adds the years it is asked for.
    return dict(holidays.country_holidays("NO", years=year, language="no", include_sundays=False))


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in public_holidays(day.year)


def add_working_days(start: date, n: int) -> date:
    """The n-th working day after `start` (start itself never counts; n = 0 returns start).

    Receipt on a Friday with n = 1 gives the Monday after (or later, across holidays). Negative n counts
    backwards.
    """
    step = 1 if n >= 0 else -1
    remaining = abs(n)
    day = start
    while remaining:
        day += timedelta(days=step)
        if is_working_day(day):
            remaining -= 1
    return day


def working_days_between(start: date, end: date) -> int:
    """Working days d with start < d <= end (negative when end is before start).

    The inverse of add_working_days: working_days_between(a, add_working_days(a, n)) == n.
    """
    if end < start:
        return -working_days_between(end, start)
    return sum(1 for k in range(1, (end - start).days + 1) if is_working_day(start + timedelta(days=k)))


def assessment_deadline(received: date) -> date:
    """The legal deadline for assessing a referral: 10 working days after receipt."""
    return add_working_days(received, ASSESSMENT_WORKING_DAYS)


@dataclass(frozen=True)
class WaitingTimes:
    """Assessment waiting-time figures of one organisation on the date `today`.

    - received: referrals in the input; assessed / pending: with / without an assessment date.
    - overdue: pending referrals whose assessment deadline has passed (deadline < today).
    - assessed_late: assessed after their deadline.
    - median_days / median_working_days: median from receipt to assessment over assessed referrals
      (None when nothing is assessed).
    - share_in_time: assessed within the deadline / assessed (None when nothing is assessed).
    """

    received: int
    assessed: int
    pending: int
    overdue: int
    assessed_late: int
    median_days: float | None
    median_working_days: float | None
    share_in_time: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def waiting_times(entries: Iterable[tuple[date, date | None]], today: date) -> WaitingTimes:
    """Figures from (received date, assessed date or None) pairs; raises ValueError on an assessment dated
    before its receipt, since that is a data error the figures must not hide."""
    days: list[int] = []
    working: list[int] = []
    pending = overdue = late = 0
    total = 0
    for received, assessed in entries:
        total += 1
        deadline = assessment_deadline(received)
        if assessed is None:
            pending += 1
            overdue += deadline < today
            continue
        if assessed < received:
            raise ValueError(f"assessed {assessed.isoformat()} before received {received.isoformat()}")
        days.append((assessed - received).days)
        working.append(working_days_between(received, assessed))
        late += assessed > deadline
    assessed_count = len(days)
    return WaitingTimes(
        received=total,
        assessed=assessed_count,
        pending=pending,
        overdue=overdue,
        assessed_late=late,
        median_days=float(statistics.median(days)) if days else None,
        median_working_days=float(statistics.median(working)) if working else None,
        share_in_time=(assessed_count - late) / assessed_count if assessed_count else None,
    )


def waiting_times_by_organisation(
    entries: Iterable[tuple[str, date, date | None]], today: date
) -> dict[str, WaitingTimes]:
    """Figures per organisation from (organisation key, received, assessed or None) triples."""
    grouped: dict[str, list[tuple[date, date | None]]] = {}
    for organisation, received, assessed in entries:
        grouped.setdefault(organisation, []).append((received, assessed))
    return {organisation: waiting_times(pairs, today) for organisation, pairs in sorted(grouped.items())}


def figures_json(figures: Mapping[str, WaitingTimes]) -> dict[str, dict[str, Any]]:
    return {organisation: f.to_dict() for organisation, f in figures.items()}
