"""The citizen portal in headless Chromium against a real server: real clicks and keys, real API calls.

The server, the browser and the pages are conftest.py's fixtures (skipped where chromium is missing).

Each test checks the DOM text a citizen reads, and screenshots: a PNG of the viewport's width, and for
the key elements their own screenshot, decoded to check what the eye would (the highlight colour of an
emergency-access row, absent from an ordinary one).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from app.resources.pregnancy_card import programme
from app.resources.referrals.taskjson import OSLO
from tests.portal.browser import (
    BRAND,
    PREGNANCY_PANEL,
    element_shot,
    go_to,
    open_portal,
    screenshot,
    sign_in,
)
from tests.portal.pregnancy_text import missed_text, next_text, norwegian, weeks
from tests.portal.server import (
    ANAPHYLAXIS,
    ASE_REFERRAL,
    CONSULTATIONS,
    CURRENT_CONSULTATION,
    EMERGENCY_CLINIC,
    EMERGENCY_DOCTOR,
    EMERGENCY_HPR,
    EMERGENCY_REASON,
    FREE_TEXT_MEDICINE,
    GP_NAME,
    GP_OFFICE,
    GP_SYSTEM,
    HOSPITAL,
    HOSPITAL_DOCTOR,
    HOSPITAL_HPR,
    HOSPITAL_ORGNR,
    HOSPITAL_SYSTEM,
    KARI_QUESTION,
    KARI_REFERRAL,
    LATEX,
    MEDICINE,
    MISSED_CONSULTATIONS,
    NEXT_CONSULTATION,
    VACCINE,
    PortalServer,
    Seeded,
    consultation_id,
    gp_token,
    on_day,
)
from tests.resources.core_journal.builders import PACEMAKER

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

EMERGENCY_WASH = (255, 241, 221)  # --emergency-wash in portal.css
EMERGENCY_EDGE = (179, 71, 0)  # --emergency-edge
NO_PREGNANCY = "Du har ikke noe registrert svangerskap."
PAGE_SIZE = 50  # the access log's page (accesslog.js)


def test_a_citizen_signs_in_sees_her_referral_and_who_has_seen_her_record_and_signs_out(
    page: Page, portal: tuple[PortalServer, Seeded], tmp_path: Path
) -> None:
    server, seeded = portal
    open_portal(page, server)
    assert page.locator("html").get_attribute("lang") == "nb"
    assert page.get_by_role("heading", level=1).inner_text() == "Logg inn"
    assert page.get_by_role("navigation", name="Hovedmeny").is_hidden()
    screenshot(page, tmp_path / "login.png")

    sign_in(page, "Kari Nordmann")
    assert page.get_by_role("heading", level=1, name="Hei, Kari Nordmann").is_visible()
    page.wait_for_selector("#status:text-is('Du er logget inn som Kari Nordmann.')")
    # The overview reads /metadata: $summary, $medication-list and $pregnancy-card are offered.
    page.wait_for_selector("#card-kjernejournal-status:not(:empty)")
    for panel_id in ("kjernejournal", "gravid"):
        assert page.locator(f"#card-{panel_id}-status").inner_text() == "Tilgjengelig"
    assert page.locator("#card-legemidler-status").inner_text() == "Tilgjengelig"
    screenshot(page, tmp_path / "oversikt.png")

    # Mine legemidler: the list her GP reconciled, each medicine with its codes, dosage, status and marks.
    go_to(page, "Mine legemidler")
    medicines = page.locator("#panel-legemidler-content")
    assert medicines.get_by_role("heading", level=2).inner_text() == "Pasientens legemiddelliste"
    entries = medicines.locator("li.record")
    assert sorted(entries.locator("h3").all_inner_texts()) == [MEDICINE, FREE_TEXT_MEDICINE]
    coded = entries.filter(has_text=MEDICINE)
    assert coded.locator(".badge").all_text_contents() == ["Status: I bruk", "Multidose"]
    coded_text = coded.inner_text()
    for expected in (
        "ATC-kode\nA10BA02",
        "FEST-legemiddel\nID_TEST-METFORMIN-500",
        "Styrke\n500 mg",
        "Dosering\n1 tablett morgen og kveld",
        "Pakkes i multidose",
    ):
        assert expected in coded_text
    assert "Fritekst" not in coded_text
    free_text = entries.filter(has_text=FREE_TEXT_MEDICINE)
    assert free_text.locator(".badge").all_text_contents() == ["Status: I bruk", "Fritekst"]
    free_text_text = free_text.inner_text()
    assert "ikke hentet fra legemiddelregisteret FEST" in free_text_text
    assert "Dosering\n5 ml daglig" in free_text_text
    assert "ATC-kode" not in free_text_text
    screenshot(page, tmp_path / "legemidler.png")
    element_shot(coded, tmp_path / "legemiddel.png")

    # Mine henvisninger: the assessed referral, its status in plain Norwegian, the deadline.
    go_to(page, "Mine henvisninger")
    assert page.get_by_role("link", name="Mine henvisninger").get_attribute("aria-current") == "page"
    assert page.evaluate("document.activeElement.textContent") == "Mine henvisninger"  # focus on the h1
    card = page.locator(".referral")
    assert card.count() == 1
    text = card.inner_text()
    assert KARI_REFERRAL in text
    assert card.locator(".badge").text_content() == "Status: Vurdert"  # "Status: " for screen readers
    deadline = seeded.care_deadline.strftime("%d.%m.%Y")
    assert f"Du har rett til nødvendig helsehjelp, og helsehjelpen skal starte senest {deadline}." in text
    assert "Til\nSykehuset Fjordby HF (demo)" in text
    assert f"Frist for start av helsehjelp\n{deadline} (om " in text
    assert "INTERN MERKNAD" not in page.content()  # the workers' notes never reach the page
    assert page.get_by_role("status").inner_text() == "Fant 1 henvisning."
    screenshot(page, tmp_path / "henvisninger.png")
    element_shot(card, tmp_path / "henvisning.png")

    # Hvem har sett journalen min: the GP's read, and the emergency access highlighted.
    go_to(page, "Hvem har sett journalen min")
    rows = page.locator("table.access-table tbody tr")
    gp_row = rows.filter(has_text=GP_OFFICE).filter(has_text="Lest: allergi")  # (it also wrote, below)
    assert gp_row.count() == 1
    assert [c.strip() for c in gp_row.locator("td").all_inner_texts()[1:]] == [
        f"{GP_NAME}\nLege, HPR-nr. 9100001",  # the name from the Practitioner register
        f"{GP_OFFICE}\nOrg.nr. 992000007",
        "Lest: allergi",
        "Behandling",
    ]
    assert gp_row.get_attribute("data-emergency") == "false"
    emergency = rows.filter(has_text="Akuttilgang (nødrett)")
    assert emergency.count() == 1
    assert "access-row--emergency" in (emergency.get_attribute("class") or "")
    emergency_text = emergency.inner_text()
    for expected in (
        EMERGENCY_DOCTOR,
        f"HPR-nr. {EMERGENCY_HPR}",
        EMERGENCY_CLINIC,
        "Akutt behandling",
        f"Begrunnelse: {EMERGENCY_REASON}",
        "Oppslaget blir kontrollert i etterkant.",
    ):
        assert expected in emergency_text
    background = "cell => getComputedStyle(cell).backgroundColor"
    assert emergency.locator("td").first.evaluate(background) == "rgb({}, {}, {})".format(*EMERGENCY_WASH)
    assert gp_row.locator("td").first.evaluate(background) == "rgba(0, 0, 0, 0)"
    # The refused attempt before it is listed as refused, and not as emergency access.
    refused = rows.filter(has_text="Nektet: ingen tilgang")
    assert refused.count() == 1
    assert EMERGENCY_CLINIC in refused.inner_text()
    assert refused.get_attribute("data-emergency") == "false"
    summary = page.locator("#access-summary").inner_text()
    assert "1 av dem var med akuttilgang (nødrett)." in summary
    # Her own look-ups (through the portal) are hidden until she asks for them.
    assert rows.filter(has_text="Deg selv").count() == 0
    page.get_by_label("Vis også mine egne oppslag").check()
    assert rows.filter(has_text="Deg selv").count() >= 2  # her Patient read and the referral searches
    screenshot(page, tmp_path / "logg.png")
    highlighted = element_shot(emergency, tmp_path / "akuttilgang.png")
    assert highlighted.share(EMERGENCY_WASH) > 0.3
    assert highlighted.share(EMERGENCY_EDGE) > 0
    ordinary = element_shot(gp_row, tmp_path / "fastlege.png")
    assert ordinary.share(EMERGENCY_WASH) == 0
    assert ordinary.share(EMERGENCY_EDGE) == 0

    # Min kjernejournal ($summary): her critical allergies, each with its sources, and her vaccine.
    go_to(page, "Min kjernejournal")
    content = page.locator("#panel-kjernejournal-content")
    assert content.get_by_role("heading", level=2).all_inner_texts() == ["Kritisk informasjon", "Vaksiner"]
    critical = content.locator("li.record[data-kind='kritisk']")
    # allergies first, then (after alerts, conditions and treatments) the hospital's pacemaker implant
    assert critical.locator("h3").all_inner_texts() == [LATEX["display"], "Penicillin", PACEMAKER["display"]]
    pacemaker = critical.filter(has_text=PACEMAKER["display"])
    assert pacemaker.locator(".badge").inner_text() == "Pågående behandling eller implantat"
    assert f"Virksomhet\n{HOSPITAL['display']} (org.nr. {HOSPITAL_ORGNR})" in pacemaker.inner_text()
    latex = critical.filter(has_text=LATEX["display"])
    assert latex.locator(".badge").inner_text() == "Overfølsomhetsreaksjon"
    recorded = seeded.allergy_recorded.strftime("%d.%m.%Y")
    latex_text = latex.inner_text()
    for expected in (
        "Alvorlighetsgrad\nHøy (kan være livstruende)",
        f"Reaksjon\n{ANAPHYLAXIS}",
        "Status\nBekreftet",
        "Kilde\n",
        # the hospital's name from the Organization register, its number from the entry's source
        f"Virksomhet\n{HOSPITAL['display']} (org.nr. {HOSPITAL_ORGNR})",
        f"System\n{HOSPITAL_SYSTEM}",
        f"Registrert av\n{HOSPITAL_DOCTOR}, HPR-nr. {HOSPITAL_HPR}",
        f"Registrert\n{recorded}",
    ):
        assert expected in latex_text
    # the demo data's allergy, loaded by a system and not by an organisation: its system is its source
    assert "System\nhelsebro/demo-loader" in critical.filter(has_text="Penicillin").inner_text()
    vaccine = content.locator("li.record[data-kind='vaksine']")
    assert vaccine.locator("h3").all_inner_texts() == [VACCINE]
    vaccinated = seeded.vaccinated.strftime("%d.%m.%Y")
    vaccine_text = vaccine.inner_text()
    for expected in (
        f"Dato\n{vaccinated}",
        "Status\nGitt",
        f"Virksomhet\n{GP_OFFICE}",
        f"System\n{GP_SYSTEM}",
        f"Registrert av\n{GP_NAME}",
        f"Registrert\n{vaccinated}",
    ):
        assert expected in vaccine_text
    screenshot(page, tmp_path / "kjernejournal.png")
    element_shot(latex, tmp_path / "kritisk-informasjon.png")

    page.get_by_role("button", name="Logg ut").click()
    page.wait_for_selector("#view-login:not([hidden])")
    assert page.get_by_role("status").inner_text() == "Du er logget ut."
    assert page.evaluate("sessionStorage.length") == 0
    assert page.get_by_role("navigation", name="Hovedmeny").is_hidden()
    assert KARI_REFERRAL not in page.locator("main").inner_text()
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    assert page.get_by_role("heading", level=1).inner_text() == "Logg inn"


def test_another_citizen_signed_in_with_the_keyboard_sees_only_her_own(
    page: Page, portal: tuple[PortalServer, Seeded], tmp_path: Path
) -> None:
    server, _ = portal
    open_portal(page, server)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Hopp til hovedinnholdet"
    page.keyboard.press("Tab")  # the first demo citizen's radio button, checked
    assert page.evaluate("document.activeElement.value") == "kari"
    page.keyboard.press("ArrowDown")  # the next one: Åse
    assert page.evaluate("document.activeElement.value") == "ase"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # "Logg inn"
    page.wait_for_selector("#session-name:text-is('Åse Ødegård')")

    go_to(page, "Mine henvisninger")
    referrals = page.locator("#referral-list").inner_text()
    assert ASE_REFERRAL in referrals
    assert "Henvisningen er sendt til Sykehuset Fjordby HF (demo)." in referrals
    assert KARI_REFERRAL not in page.content()
    screenshot(page, tmp_path / "ase-henvisninger.png")

    # Her core journal and medication list are empty, and say so.
    go_to(page, "Min kjernejournal")
    journal = page.locator("#panel-kjernejournal-content")
    assert journal.locator("p.empty").all_inner_texts() == [
        "Ingen registrert kritisk informasjon.",
        "Ingen registrerte vaksiner.",
    ]
    assert LATEX["display"] not in page.content()
    go_to(page, "Mine legemidler")
    medicines = page.locator("#panel-legemidler-content")
    assert medicines.locator("p.empty").inner_text() == "Ingen legemidler registrert i legemiddellisten din."
    assert MEDICINE not in page.content()

    # She has no pregnancy recorded: the card's operation answers 404, and the panel says so in plain words.
    go_to(page, PREGNANCY_PANEL)
    notice = page.locator("#panel-gravid-content p.notice")
    assert notice.inner_text().startswith(NO_PREGNANCY)
    assert notice.get_attribute("data-found") == "false"
    assert page.get_by_role("alert").is_hidden()  # not an error
    assert KARI_QUESTION not in page.content()

    go_to(page, "Hvem har sett journalen min")
    log = page.locator("#access-log").inner_text()
    assert EMERGENCY_CLINIC not in log
    assert GP_NAME not in log
    assert page.locator(".access-row--emergency").count() == 0
    assert "Ingen av dem var med akuttilgang." in page.locator("#access-summary").inner_text()


def test_a_panel_without_a_view_of_its_own_shows_its_operations_answer_generically(
    page: Page, portal: tuple[PortalServer, Seeded], tmp_path: Path
) -> None:
    """A panel whose operation has no view of its own shows the answer generically: a panel added to
    panels.json here (every real panel has a view now), its operation offered by a changed /metadata and
    answered with a document Bundle made here, shown by its sections."""
    server, _ = portal
    calls: list[dict[str, str]] = []
    panel = {
        "id": "provesvar",
        "title": "Mine prøvesvar",
        "description": "Prøvesvarene dine.",
        "pack": "lab_results",
        "resourceType": "Patient",
        "operation": "lab-results",
    }

    def panels(route: Route) -> None:
        route.fulfill(json=[*route.fetch().json(), panel])

    def metadata(route: Route) -> None:
        statement = route.fetch().json()
        patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
        offered = {"name": "lab-results", "definition": "http://helsebro.no/fhir/OperationDefinition/x"}
        patient["operation"] = [*patient.get("operation", []), offered]
        route.fulfill(json=statement)

    def lab_results(route: Route) -> None:
        calls.append(route.request.headers)
        route.fulfill(json=_summary_document(), content_type="application/fhir+json")

    page.route(f"{server.url}/portal/panels.json", panels)
    page.route(f"{server.url}/metadata", metadata)
    page.route(f"{server.url}/Patient/kari/$lab-results", lab_results)
    open_portal(page, server)
    sign_in(page, "Kari Nordmann")
    page.wait_for_selector("#card-provesvar-status:not(:empty)")
    assert page.locator("#card-provesvar-status").inner_text() == "Tilgjengelig"

    go_to(page, "Mine prøvesvar")
    content = page.locator("#panel-provesvar-content")
    assert content.get_by_role("heading", level=2).inner_text() == "Pasientsammendrag"
    assert content.get_by_role("heading", level=3).all_inner_texts() == ["Allergier", "Legemidler"]
    assert content.locator("li").all_inner_texts() == ["Penicillin", "Paracet 500 mg: 1 tablett ved behov"]
    assert len(calls) == 1
    assert calls[0]["authorization"].startswith("Bearer ")
    assert page.get_by_role("alert").is_hidden()
    screenshot(page, tmp_path / "generisk.png")


def test_a_pregnant_citizen_sees_her_card_with_charts_and_adds_a_question(
    page: Page, portal: tuple[PortalServer, Seeded], tmp_path: Path
) -> None:
    """Kari's pregnancy card: the due date and today's gestational age (computed in the browser), the
    plan's next consultation, the consultations so far, three SVG charts against gestational week with
    accessible names and their values as text, her question, and a new one added through the form."""
    server, seeded = portal
    next_calls: list[str] = []
    page.on(
        "request",
        lambda request: (
            next_calls.append(request.headers.get("authorization", "")) if "/$next" in request.url else None
        ),
    )
    open_portal(page, server)
    sign_in(page, "Kari Nordmann")
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

    # The due date, and the gestational age today: 280 days less the days left.
    ga_today = 280 - (seeded.due - datetime.now(OSLO).date()).days
    dating = content.locator("#gravid-dating").inner_text()
    assert f"Termin\n{norwegian(seeded.due)} (fastsatt etter ultralyd)" in dating
    assert f"Svangerskapslengde i dag\n{weeks(ga_today)} ({ga_today // 7} uker og " in dating
    assert content.locator("[data-ga-days]").get_attribute("data-ga-days") == str(ga_today)

    # The next consultation, from `$next` (asked with her token): week 28's was held (its Encounter), so
    # week 32's, booked; the ultrasounds whose windows have ended without being held are named.
    assert next_calls
    assert all(auth.startswith("Bearer ") for auth in next_calls)
    upcoming = content.locator("#gravid-neste").inner_text()
    assert next_text(seeded.due, NEXT_CONSULTATION, "Timen er avtalt") in upcoming
    assert content.locator("#gravid-neste [data-when='due']").count() == 0
    missed = content.locator("#gravid-ikke-gjennomfort").inner_text()
    assert missed.startswith(f"{missed_text(MISSED_CONSULTATIONS)}. ")

    # The consultations so far, oldest first, with what was measured.
    table = content.get_by_role("table", name="Konsultasjonene dine (4)")
    rows = table.locator("tbody tr")
    assert rows.count() == len(CONSULTATIONS)
    for row, (days, weight, high, low, sf_height) in zip(rows.all(), CONSULTATIONS, strict=True):
        cells = [c.strip() for c in row.locator("th, td").all_inner_texts()]
        sf_text = f"{sf_height:g} cm".replace(".", ",") if sf_height is not None else "–"
        assert cells[:5] == [
            norwegian(on_day(seeded.due, days)),
            weeks(days),
            f"{weight:g} kg".replace(".", ","),
            f"{high}/{low} mmHg",
            sf_text,
        ]
        assert cells[6] == GP_OFFICE

    # Three charts: pictures (role img) with accessible names, a point per measurement, axis labels.
    with_sf = [c for c in CONSULTATIONS if c[4] is not None]
    charts = {
        "vekt": ("Vekt (kg) etter svangerskapsuke: 4 målinger", len(CONSULTATIONS)),
        "blodtrykk": (
            "Blodtrykk (mmHg) etter svangerskapsuke: systolisk (øvre) 4 målinger, diastolisk (nedre) 4 målinger",
            2 * len(CONSULTATIONS),
        ),
        "sf": ("Symfyse-fundusmål (cm) etter svangerskapsuke: 3 målinger", len(with_sf)),
    }
    assert content.locator("svg[role='img']").count() == 3
    for chart_id, (name, points) in charts.items():
        picture = content.get_by_role("img", name=name, exact=True)
        assert picture.count() == 1
        assert picture.evaluate("svg => svg.id || svg.closest('figure').id") == f"chart-{chart_id}"
        assert picture.locator("title").first.text_content() == name
        assert picture.locator(".chart__point").count() == points
        labels = picture.locator("text.chart__label").all_text_contents()
        assert labels[0] == "Svangerskapsuke"
        described = picture.get_attribute("aria-describedby")
        assert described is not None
        assert page.locator(f"#{described}").is_visible()  # the values as text, too
    weight_values = content.locator("#chart-vekt .chart__point")
    assert [float(v) for v in weight_values.evaluate_all("ps => ps.map(p => p.dataset.value)")] == [
        c[1] for c in CONSULTATIONS
    ]
    assert weight_values.evaluate_all("ps => ps.map(p => p.dataset.week)") == [
        weeks(c[0]) for c in CONSULTATIONS
    ]
    systolic = content.locator("#chart-blodtrykk .chart__point[data-series='systolisk']")
    diastolic = content.locator("#chart-blodtrykk .chart__point[data-series='diastolisk']")
    assert systolic.count() == diastolic.count() == len(CONSULTATIONS)
    # the systolic line lies above the diastolic one at every week (SVG y grows downwards)
    high_y = systolic.evaluate_all("ps => ps.map(p => p.getBBox().y)")
    low_y = diastolic.evaluate_all("ps => ps.map(p => p.getBBox().y)")
    assert all(h < lo for h, lo in zip(high_y, low_y, strict=True))
    sf_text = content.locator("#chart-sf figcaption").inner_text()
    assert (
        sf_text
        == "Symfyse-fundusmål: "
        + ", ".join(f"{c[4]:g} cm i uke {weeks(c[0])}".replace(".", ",") for c in with_sf)
        + "."
    )
    screenshot(page, tmp_path / "gravid.png")
    chart_picture = element_shot(content.locator("#chart-vekt svg"), tmp_path / "vekt.png")
    assert chart_picture.share(BRAND) > 0  # the line and its points are drawn

    # Her question from before, then a new one through the form: listed, and on the card from the server.
    notes = content.locator("#gravid-notater li")
    assert notes.count() == 1
    assert KARI_QUESTION in notes.first.inner_text()
    assert "Spørsmål til neste konsultasjon" in notes.first.inner_text()
    question = "Hvor mye bør jeg gå opp i vekt?"
    page.get_by_label("Ditt spørsmål til neste konsultasjon").fill(question)
    page.get_by_role("button", name="Legg til spørsmål").click()
    page.wait_for_selector("#status:text-is('Spørsmålet ditt er lagt til.')")
    assert notes.count() == 2
    assert question in notes.nth(1).inner_text()
    assert page.get_by_label("Ditt spørsmål til neste konsultasjon").input_value() == ""
    element_shot(content.locator("#gravid-notater"), tmp_path / "sporsmal.png")
    go_to(page, "Mine henvisninger")
    go_to(page, PREGNANCY_PANEL)
    assert [question in t for t in notes.all_inner_texts()] == [False, True]


def test_a_pregnancy_card_without_a_plan_or_measurements_says_so(
    page: Page, portal: tuple[PortalServer, Seeded]
) -> None:
    """The plan (CarePlan) may not be there yet, nor any consultation: Kari's real card, less its plan and
    consultations (route-intercepted), gives plain words for each part and no chart."""
    server, seeded = portal

    def without_plan(route: Route) -> None:
        card = route.fetch().json()
        composition = card["entry"][0]["resource"]
        dropped = set()
        for section in composition["section"]:
            if section["code"]["coding"][0]["code"] in ("plan", "konsultasjon"):
                dropped |= {e["reference"] for e in section.pop("entry", [])}
        card["entry"] = [
            e
            for e in card["entry"]
            if f"{e['resource']['resourceType']}/{e['resource']['id']}" not in dropped
        ]
        route.fulfill(json=card, content_type="application/fhir+json")

    page.route(f"{server.url}/Patient/kari/$pregnancy-card", without_plan)
    open_portal(page, server)
    sign_in(page, "Kari Nordmann")
    go_to(page, PREGNANCY_PANEL)
    content = page.locator("#panel-gravid-content")
    assert seeded.due.strftime("%d.%m.%Y") in content.locator("#gravid-dating").inner_text()
    assert content.locator("#gravid-neste p.empty").inner_text() == "Ingen ny konsultasjon er planlagt ennå."
    assert "Ingen konsultasjoner er registrert ennå." in content.inner_text()
    assert content.locator("svg").count() == 0
    assert content.locator(".chart p.empty").all_inner_texts() == ["Ingen målinger registrert ennå."] * 3
    assert page.get_by_role("alert").is_hidden()


def test_a_consultation_recorded_in_its_window_moves_the_next_one_on(
    page: Page, portal: tuple[PortalServer, Seeded]
) -> None:
    """Week 28's consultation is open today and not marked held in the plan: while its Encounter is in
    progress it is due now; once the GP records it finished, the panel shows week 32's (the plan's
    activity statuses alone would still say week 28)."""
    server, seeded = portal
    url = f"/Encounter/{consultation_id(len(CONSULTATIONS))}"
    with httpx.Client(base_url=server.url, timeout=30, headers=gp_token(server)) as http:
        plan = http.get("/CarePlan", params={"subject": "Patient/kari"}).json()["entry"][0]["resource"]
        current = next(a for a in plan["activity"] if programme.programme_id(a) == CURRENT_CONSULTATION)
        assert current["detail"]["status"] == "not-started"
        encounter = http.get(url).json()
        assert encounter["status"] == "finished"
        try:
            assert http.put(url, json={**encounter, "status": "in-progress"}).status_code == 200
            open_portal(page, server)
            sign_in(page, "Kari Nordmann")
            go_to(page, PREGNANCY_PANEL)
            part = page.locator("#panel-gravid-content #gravid-neste")
            assert part.locator("[data-when='due']").inner_text() == "Det er tid for denne konsultasjonen nå."
            assert next_text(seeded.due, CURRENT_CONSULTATION, "Ikke avtalt ennå") in part.inner_text()
        finally:
            assert http.put(url, json=encounter).status_code == 200
    go_to(page, "Mine henvisninger")
    go_to(page, PREGNANCY_PANEL)
    assert next_text(seeded.due, NEXT_CONSULTATION, "Timen er avtalt") in part.inner_text()
    assert part.locator("[data-when='due']").count() == 0


def test_the_card_shows_without_the_next_consultation_when_next_fails(
    page: Page, portal: tuple[PortalServer, Seeded]
) -> None:
    """`$next` refused or down: the rest of the card still shows, and the part says what could not be
    fetched (no alert: the card itself was read)."""
    server, _ = portal
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception", "diagnostics": "unavailable"}],
    }
    page.route(
        re.compile(r".*/CarePlan/[^/]+/\$next.*"),
        lambda route: route.fulfill(status=503, json=outcome, content_type="application/fhir+json"),
    )
    open_portal(page, server)
    sign_in(page, "Kari Nordmann")
    go_to(page, PREGNANCY_PANEL)
    content = page.locator("#panel-gravid-content")
    assert content.locator("#gravid-neste-feil").inner_text() == (
        "Neste konsultasjon kunne ikke hentes. Tjenesten svarer ikke akkurat nå. Prøv igjen senere. "
        "(unavailable)"
    )
    assert content.locator("#gravid-neste dl").count() == 0
    assert content.get_by_role("table", name=f"Konsultasjonene dine ({len(CONSULTATIONS)})").is_visible()
    assert content.locator("svg[role='img']").count() == 3
    assert page.get_by_role("alert").is_hidden()


def test_an_expired_session_sends_the_citizen_back_to_sign_in(
    page: Page, portal: tuple[PortalServer, Seeded]
) -> None:
    server, _ = portal
    open_portal(page, server)
    sign_in(page, "Øyvind Bjørn Ærø")
    stored = json.loads(page.evaluate("sessionStorage.getItem('helsebro-portal-session')"))
    stored["token"] = stored["token"][:-8] + "AAAAAAAA"  # the signature no longer matches: 401
    page.evaluate("s => sessionStorage.setItem('helsebro-portal-session', s)", json.dumps(stored))
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    assert page.locator("#session-name").inner_text() == "Øyvind Bjørn Ærø"  # still signed in, it seems
    page.get_by_role("link", name="Mine henvisninger").first.click()  # the API refuses the token
    page.wait_for_selector("#view-login:not([hidden])")
    assert "Økten din er utløpt. Logg inn på nytt." in page.get_by_role("alert").inner_text()
    assert page.evaluate("sessionStorage.length") == 0


def _summary_document() -> dict[str, Any]:
    allergy = {"resourceType": "AllergyIntolerance", "id": "a1", "code": {"text": "Penicillin"}}
    medication = {
        "resourceType": "MedicationStatement",
        "id": "m1",
        "medicationCodeableConcept": {"coding": [{"display": "Paracet 500 mg"}]},
        "dosage": [{"text": "1 tablett ved behov"}],
        "text": {"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'><b>x</b></div>"},
    }
    composition = {
        "resourceType": "Composition",
        "id": "c1",
        "status": "final",
        "title": "Pasientsammendrag",
        "section": [
            {"title": "Allergier", "entry": [{"reference": "AllergyIntolerance/a1"}]},
            {"title": "Legemidler", "entry": [{"reference": "urn:uuid:m1"}]},
        ],
    }
    entries = [
        {"fullUrl": "urn:uuid:c1", "resource": composition},
        {"fullUrl": "http://127.0.0.1/AllergyIntolerance/a1", "resource": allergy},
        {"fullUrl": "urn:uuid:m1", "resource": medication},
    ]
    return {"resourceType": "Bundle", "type": "document", "entry": entries}


def test_a_long_access_log_comes_a_page_at_a_time(page: Page, portal: tuple[PortalServer, Seeded]) -> None:
    server, _ = portal
    gp = gp_token(server)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(PAGE_SIZE + 5):  # more reads than one page of the log holds
            assert http.get("/Observation/blodtrykk-oyvind", headers=gp).status_code == 200
    open_portal(page, server)
    sign_in(page, "Øyvind Bjørn Ærø")
    go_to(page, "Hvem har sett journalen min")
    rows = page.locator("table.access-table tbody tr")
    own = page.get_by_label("Vis også mine egne oppslag")
    own.check()  # the first page in full: his own look-ups in it too (signing in read his Patient)
    assert rows.count() == PAGE_SIZE
    own_rows = rows.filter(has_text="Deg selv").count()
    assert own_rows >= 1
    own.uncheck()
    assert rows.count() == PAGE_SIZE - own_rows
    assert rows.filter(has_text="Lest: måling eller prøvesvar").count() == PAGE_SIZE - own_rows
    page.get_by_role("button", name="Vis flere oppslag").click()
    page.wait_for_selector("#status:text-is('Flere oppslag er hentet.')")
    assert rows.filter(has_text="Lest: måling eller prøvesvar").count() == PAGE_SIZE + 5
    assert page.get_by_role("button", name="Vis flere oppslag").is_hidden()  # no more pages
    assert f"Viser {PAGE_SIZE + 5} oppslag" in page.locator("#access-summary").inner_text()


def test_the_api_documentation_works_offline_and_its_authorize_button_takes_a_token(
    page: Page, portal: tuple[PortalServer, Seeded], tmp_path: Path
) -> None:
    # Here beside the portal's tests because it needs the same real server and browser (app/docs.py).
    server, _ = portal
    # The document is large (2.3 MB, 463 operations): on a busy 2-core host, expanding an operation took
    # more than the portal's 15 s; a minute bounds it without making it flaky.
    page.set_default_timeout(60_000)
    elsewhere: list[str] = []

    def offline(route: Route) -> None:  # as in a hospital network: nothing but this server
        elsewhere.append(route.request.url)
        route.abort()

    page.route(lambda url: not url.startswith(server.url), offline)
    page.goto(f"{server.url}/docs")
    page.get_by_role("heading", name="Helsebro FHIR R4 API").first.wait_for()
    assert elsewhere == []  # swagger-ui came from this server, not a CDN

    token = server.token("docs-reader", "system/*.cruds", client_id="docs-reader")["Authorization"]
    page.locator("button.authorize").first.click()
    dialog = page.locator(".dialog-ux .modal-ux")
    assert "bearer" in dialog.inner_text()  # the document's security scheme
    dialog.locator("input").first.fill(token.removeprefix("Bearer "))
    dialog.locator("button.modal-btn.authorize").click()
    assert "Authorized" in dialog.inner_text()
    dialog.locator("button.btn-done").click()

    read = page.locator("#operations-Patient-read_Patient")
    read.locator(".opblock-summary").click(no_wait_after=True)  # a hash change (deep link), no navigation
    read.get_by_role("button", name="Try it out").click()
    read.get_by_placeholder("res_id").fill("kari")
    read.get_by_role("button", name="Execute").click()
    answer = read.locator(".live-responses-table tbody tr.response").first
    answer.wait_for()
    assert answer.locator(".response-col_status").inner_text().strip() == "200"
    assert "Nordmann" in answer.inner_text()  # Patient/kari, read with the token
    screenshot(page, tmp_path / "docs.png")
