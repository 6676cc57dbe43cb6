"""The pregnancy's dating as recorded (pure): what the dating Observations say, and the due date in force.

The card records the dating as Observations (codes.Section.DATING): the last menstrual period and the
cycle length as the GP or midwife wrote them, the due date by ultrasound as the hospital wrote it, and
the due dates the pack computes from them (flow.py). `dating()` reads the latest value of each from a
pregnancy's Observations, so the write hook and the card agree on one answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.resources.pregnancy_card import dates
from app.resources.pregnancy_card.codes import key_of

_LIVE = frozenset({"final", "amended", "corrected", "preliminary", "registered"})


@dataclass(frozen=True)
class Dating:
    lmp: date | None = None
    cycle_length: int | None = None
    by_lmp: date | None = None  # computed from lmp and cycle_length (Naegele)
    by_ultrasound: date | None = None  # as the ultrasound examination set it
    # the due date in force and how it was set (None when nothing dates the pregnancy yet)
    due: date | None = None
    method: dates.DatingMethod | None = None


def observation_key(observation: Mapping[str, Any]) -> str | None:
    for coding in observation.get("code", {}).get("coding", []):
        key = key_of(coding)
        if key is not None:
            return key
    return None


def _effective(observation: Mapping[str, Any]) -> str:
    value = observation.get("effectiveDateTime") or observation.get("issued") or ""
    return str(value)


def latest(observations: Sequence[Mapping[str, Any]], key: str) -> Mapping[str, Any] | None:
    """The most recent live Observation of `key` (by effective time, then last update, then id)."""
    found = [o for o in observations if observation_key(o) == key and o.get("status") in _LIVE]
    if not found:
        return None
    return max(
        found,
        key=lambda o: (_effective(o), str(o.get("meta", {}).get("lastUpdated", "")), str(o.get("id", ""))),
    )


def value_date(observation: Mapping[str, Any] | None) -> date | None:
    """The day an Observation's valueDateTime (or valuePeriod.start) names; None if it names none."""
    if observation is None:
        return None
    text = observation.get("valueDateTime") or observation.get("valuePeriod", {}).get("start")
    if not isinstance(text, str) or len(text) < 10:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def value_days(observation: Mapping[str, Any] | None) -> int | None:
    """A whole number of days from valueQuantity (unit d, or wk converted) or valueInteger."""
    if observation is None:
        return None
    if isinstance(observation.get("valueInteger"), int):
        return int(observation["valueInteger"])
    quantity = observation.get("valueQuantity", {})
    value = quantity.get("value")
    if not isinstance(value, int | float):
        return None
    unit = quantity.get("code") or quantity.get("unit")
    return round(value * 7) if unit in ("wk", "week", "weeks", "uker") else round(value)


def dating(observations: Sequence[Mapping[str, Any]]) -> Dating:
    """The dating of one pregnancy from its Observations. The due date by LMP is computed from the LMP
    and cycle length when both are recorded (a stored edd_lmp is used only when the LMP itself is not:
    the computation is the pack's, not a client's); the ultrasound's due date wins once there is one."""
    lmp = value_date(latest(observations, "lmp"))
    cycle = value_days(latest(observations, "cycle_length"))
    by_lmp: date | None = None
    if lmp is not None:
        try:
            by_lmp = dates.naegele_due_date(lmp, cycle or dates.STANDARD_CYCLE)
        except ValueError:  # a cycle outside what Naegele's correction is for: no LMP dating
            by_lmp = None
    else:
        by_lmp = value_date(latest(observations, "edd_lmp"))
    by_ultrasound = value_date(latest(observations, "edd_ultrasound"))
    if by_lmp is None and by_ultrasound is None:
        return Dating(lmp, cycle)
    due, method = dates.due_date_in_force(by_lmp, by_ultrasound)
    return Dating(lmp, cycle, by_lmp, by_ultrasound, due, method)


def age_on(dated: Dating, day: date) -> dates.GestationalAge | None:
    """The gestational age on `day`, or None when undated or outside 0+0..45+0."""
    if dated.due is None:
        return None
    try:
        return dates.gestational_age(dated.due, day)
    except ValueError:
        return None
