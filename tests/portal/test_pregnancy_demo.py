"""The demo's pregnant woman in the portal, as `make run` loads her: nothing is written for her here.

Sigrid's pregnancy comes from app/demo.py alone (the server's `python -m app.demo`, dated from the day it
ran): her card's panel shows her due date and week, the plan's next consultation (`$next` on the plan the
pack's flow built from her dating), the consultations so far and the charts of what was measured at them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.demo_pregnancy import CONSULTATIONS, GA_TODAY, QUESTION, due_date, on_day
from app.resources.pregnancy_card.dates import OSLO
from tests.portal.browser import BRAND, PREGNANCY_PANEL, element_shot, go_to, open_portal, screenshot, sign_in
from tests.portal.pregnancy_text import next_text, norwegian, weeks
from tests.portal.server import PortalServer, start_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

NAME = "Sigrid Fjeldheim"
NEXT = "uke-32"  # her last consultation, at 28+2, held week 28's


@pytest.fixture(scope="module")
def demo_server(
    chromium: Path, tmp_path_factory: pytest.TempPathFactory, dev_key_file: Path
) -> Iterator[PortalServer]:
    """A server with the demo data only, as `make run` starts it (nothing seeded through the API)."""
    server = start_server(tmp_path_factory.mktemp("demo"), dev_key_file)
    try:
        yield server
    finally:
        server.stop()


def number(value: float, unit: str) -> str:
    return f"{value:g} {unit}".replace(".", ",")


def test_the_demo_pregnant_woman_sees_her_card_as_make_run_loads_it(
    page: Page, demo_server: PortalServer, tmp_path: Path
) -> None:
    server = demo_server
    today = datetime.now(OSLO).date()  # the day the server's demo data was loaded (the same test run)
    due = due_date(today)
    open_portal(page, server)
    sign_in(page, NAME)
    page.wait_for_selector("#card-gravid-status:not(:empty)")
    assert page.locator("#card-gravid-status").inner_text() == "Tilgjengelig"
    go_to(page, PREGNANCY_PANEL)
    content = page.locator("#panel-gravid-content")
    assert content.get_by_role("heading", level=2).all_inner_texts() == [
        "Termin og svangerskapslengde",
        "Neste konsultasjon",
        "Konsultasjoner så langt",
        "Målingene dine over tid",
        "Mine notater og spørsmål",
    ]
    assert page.get_by_role("alert").is_hidden()

    # The due date in force is the early ultrasound's; her week today follows from it.
    dating = content.locator("#gravid-dating").inner_text()
    assert f"Termin\n{norwegian(due)} (fastsatt etter ultralyd)" in dating
    assert (
        f"Svangerskapslengde i dag\n{weeks(GA_TODAY)} ({GA_TODAY // 7} uker og {GA_TODAY % 7} dager)"
        in dating
    )
    assert f"Til termin\n{(due - today).days} dager" in dating

    # The next consultation, from `$next` on the plan the pack built: week 28's was held (its Encounter),
    # so week 32's (not yet booked); the ultrasounds were held (their orders completed): nothing is missed.
    assert next_text(due, NEXT, "Ikke avtalt ennå") in content.locator("#gravid-neste").inner_text()
    assert content.locator("#gravid-ikke-gjennomfort").count() == 0

    # The three consultations so far, oldest first: where, and what was measured.
    table = content.get_by_role("table", name=f"Konsultasjonene dine ({len(CONSULTATIONS)})")
    rows = table.locator("tbody tr")
    assert rows.count() == len(CONSULTATIONS)
    for row, held in zip(rows.all(), CONSULTATIONS, strict=True):
        cells = [c.strip() for c in row.locator("th, td").all_inner_texts()]
        heart = f"Fosterlyd: {held.fetal_heart_rate} /min" if held.fetal_heart_rate else "–"
        assert cells == [
            norwegian(on_day(today, held.ga_days)),
            weeks(held.ga_days),
            number(held.weight, "kg"),
            f"{held.systolic}/{held.diastolic} mmHg",
            number(held.sf_height, "cm") if held.sf_height is not None else "–",
            heart,
            held.where[1],
        ]

    # The charts: a point per measurement, at her weeks.
    with_sf = [c for c in CONSULTATIONS if c.sf_height is not None]
    assert content.locator("svg[role='img']").count() == 3
    weight = content.get_by_role(
        "img", name=f"Vekt (kg) etter svangerskapsuke: {len(CONSULTATIONS)} målinger"
    )
    points = weight.locator(".chart__point")
    assert [float(v) for v in points.evaluate_all("ps => ps.map(p => p.dataset.value)")] == [
        c.weight for c in CONSULTATIONS
    ]
    assert points.evaluate_all("ps => ps.map(p => p.dataset.week)") == [
        weeks(c.ga_days) for c in CONSULTATIONS
    ]
    assert content.locator("#chart-blodtrykk .chart__point").count() == 2 * len(CONSULTATIONS)
    assert content.locator("#chart-sf figcaption").inner_text() == (
        "Symfyse-fundusmål: "
        + ", ".join(f"{number(c.sf_height, 'cm')} i uke {weeks(c.ga_days)}" for c in with_sf if c.sf_height)
        + "."
    )
    screenshot(page, tmp_path / "gravid-demo.png")
    assert element_shot(content.locator("#chart-vekt svg"), tmp_path / "vekt-demo.png").share(BRAND) > 0

    # Her question for the next consultation.
    notes = content.locator("#gravid-notater li")
    assert notes.count() == 1
    assert QUESTION in notes.first.inner_text()
    assert "Spørsmål til neste konsultasjon" in notes.first.inner_text()
