"""What the pregnancy panel (app/portal/static/pregnancy.js) says, as the browser tests expect it: dates
and gestational ages written the Norwegian way, and the «Neste konsultasjon» part's text from `$next`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from app.resources.pregnancy_card import programme
from tests.portal.server import on_day


def norwegian(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def weeks(days: int) -> str:
    return f"{days // 7}+{days % 7}"


def next_text(due: date, key: str, status: str) -> str:
    """The part's facts of a programme consultation: what, when, gestational weeks, whether booked."""
    consultation = programme.by_id()[key]
    first, last = consultation.start.days, consultation.end.days
    return (
        f"Hva\n{consultation.title}\n"
        f"Når\nMellom {norwegian(on_day(due, first))} – {norwegian(on_day(due, last))}\n"
        f"Svangerskapsuke\n{weeks(first)} – {weeks(last)}\n"
        f"Status\n{status}"
    )


def missed_text(keys: Iterable[str]) -> str:
    """How the part begins naming the programme consultations whose window ended without being held."""
    missed = [programme.by_id()[key] for key in keys]
    return "Ikke gjennomført: " + ", ".join(
        f"{c.title} (uke {weeks(c.start.days)} – {weeks(c.end.days)})" for c in missed
    )
