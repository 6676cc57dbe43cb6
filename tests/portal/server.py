"""A real Helsebro server for the browser tests, and the data its views need, seeded through the API.

The server is set up as `make run` does it, each step a process of its own: `alembic upgrade head` on a
new SQLite file, `python -m app.demo`, then `python -m app.serve` on a free port, trusting the development
issuer. (Nothing here runs an event loop in the test process, where Playwright's sync API runs one.)
Everything else is written through the FHIR API with dev tokens, as the clinics' systems would: a
referral for Kari taken through receipt and assessment by the hospital, one for Åse, a read by Kari's
GP (an ordinary audited access) and a read by a doctor at the emergency clinic, which has no care
relation with her, under emergency access (nødrett). For her core journal and medication list: a
critical allergy the hospital records (the core-journal pack makes the entry), a vaccine her GP gives,
and her GP's reconciliation of her medication list (two medicines, one packed in multidose, one free
text). For her pregnancy card: her GP office (inside the demo's pilot area, as `make run` sets it)
registers the pregnancy, dated by the hospital's ultrasound, four consultations with weight and blood
pressure (three with symphysis-fundal height), and the plan of consultations; Kari writes a question.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from app.portal.citizens import demo_citizen
from app.resources.no_basis.identifiers import HPR_SYSTEM, ORGNR_SYSTEM
from app.resources.pregnancy_card import examples as pregnancy
from app.resources.pregnancy_card import programme
from app.resources.referrals.codes import REFERRAL_CATEGORY
from app.resources.referrals.taskjson import OSLO
from app.security.devtoken import mint_token
from tests.fhir.bundles import put_each
from tests.resources.core_journal.builders import PACEMAKER, allergy, implant
from tests.resources.medication_list.builders import in_multidose, metformin, tran
from tests.resources.referrals.builders import REFERRAL_TASK_CODE
from tests.security.helpers import auth_header
from tests.security.scenario import orgnr

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0

# From the demo data (app/demo.py): the hospital trust, Kari's GP office and her GP.
HOSPITAL = {"reference": "Organization/sykehuset-fjordby", "display": "Sykehuset Fjordby HF (demo)"}
HOSPITAL_ORGNR, GP_ORGNR, GP_HPR = "991000003", "992000007", "9100001"
GP_NAME, GP_OFFICE = "Øyvind Lind", "Fjordby legekontor (demo)"
# Added here: an emergency clinic with no care relation with Kari, and its doctor (no Practitioner).
EMERGENCY_CLINIC, EMERGENCY_ORGNR = "Fjordby legevakt (demo)", orgnr("99300001")
EMERGENCY_HPR, EMERGENCY_DOCTOR = "9100003", "Ola Vakt"
EMERGENCY_REASON = "Bevisstløs ved innkomst"
KARI_REFERRAL, ASE_REFERRAL = "Utredning av kneplager", "Kontroll av diabetes"
# Kari's core journal and medication list.
HOSPITAL_HPR, HOSPITAL_DOCTOR, HOSPITAL_SYSTEM = "9100002", "Siri Sykehus", "DIPS Arena (demo)"
LATEX = {"system": "http://snomed.info/sct", "code": "111088007", "display": "Lateks"}
ANAPHYLAXIS = "Anafylaktisk reaksjon"
VACCINE, GP_SYSTEM = "Influensavaksine", "urn:helsebro:demo:fjordby-legekontor-epj"
VACCINATED_DAYS_AGO = 30
MEDICINE, FREE_TEXT_MEDICINE = "Metformin tablett 500 mg", "Tran, flytende"
# Kari's pregnancy: today is 28+0, due in 12 weeks (by ultrasound; 3 days later than by her last period).
PILOT_FILE = ROOT / "app" / "resources" / "pregnancy_card" / "pilot-demo.json"
EPISODE = "svangerskap-kari"
GA_TODAY = 28 * 7
# The consultations so far: (days of gestation, weight kg, systolic, diastolic, SF height cm or None).
CONSULTATIONS = (
    (9 * 7 + 5, 68.4, 112, 70, None),
    (20 * 7 + 2, 71.0, 115, 72, 20.0),
    (24 * 7 + 1, 72.6, 118, 74, 24.5),
    (27 * 7 + 4, 74.1, 121, 78, 27.0),
)
# The plan: the pack builds her CarePlan for the basic programme from the due date; the GP marks what
# has been held and booked (programme consultation id -> status). Week 28's consultation, whose window is
# open today, is held only by its Encounter (the last of CONSULTATIONS): `$next` counts it, so week 32's
# is next. The ultrasounds are left not done: their windows have ended (`$next`'s overdue).
PLAN_STATUS = {"uke-24": "completed", "uke-32": "scheduled"}
CURRENT_CONSULTATION, NEXT_CONSULTATION = "uke-28", "uke-32"
MISSED_CONSULTATIONS = ("tidlig-ultralyd", "ultralyd-17-19")
KARI_QUESTION = "Kan jeg fortsette å sykle til jobben?"


@dataclass(frozen=True)
class Seeded:
    care_deadline: date  # Kari's referral: the deadline for start of care set by the assessment
    allergy_recorded: date  # the hospital's critical allergy for Kari
    vaccinated: date  # Kari's vaccine
    due: date  # Kari's due date (by ultrasound)


@dataclass
class PortalServer:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    key_file: Path

    def token(self, subject: str, scopes: str, **claims: Any) -> dict[str, str]:
        return auth_header(mint_token(self.key_file, subject=subject, scopes=scopes, **claims))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(tmp: Path, key_file: Path) -> PortalServer:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'portal.db'}",
        "BASE_URL": f"http://127.0.0.1:{port}",
        "AUTH_MODE": "jwt",
        "AUTH_DEV_ISSUER": "true",
        "AUTH_DEV_KEY_FILE": str(key_file),
        "LOG_LEVEL": "WARNING",
        "PREGNANCY_CARD_PILOT_FILE": str(PILOT_FILE),
    }
    for step in (["-m", "alembic", "upgrade", "head"], ["-m", "app.demo"]):
        done = subprocess.run(
            [sys.executable, *step], cwd=ROOT, env=env, capture_output=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    log = tmp / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = PortalServer(process, f"http://127.0.0.1:{port}", log, key_file)
    deadline = time.monotonic() + START_SECONDS
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the server stopped: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/metadata", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"the server did not start: {log.read_text()[-3000:]}")
        time.sleep(0.1)


def _referral(sr_id: str, patient: str, what: str, authored: str) -> list[dict[str, Any]]:
    service_request = {
        "resourceType": "ServiceRequest",
        "id": sr_id,
        "status": "active",
        "intent": "order",
        "category": [{"coding": [REFERRAL_CATEGORY]}],
        "code": {"text": what},
        "subject": {"reference": f"Patient/{patient}"},
        "performer": [HOSPITAL],
        "authoredOn": authored,
    }
    task = {
        "resourceType": "Task",
        "id": f"t-{sr_id}",
        "status": "requested",
        "intent": "order",
        "code": REFERRAL_TASK_CODE,
        "focus": {"reference": f"ServiceRequest/{sr_id}"},
        "for": {"reference": f"Patient/{patient}"},
        "owner": HOSPITAL,
        "authoredOn": authored,
    }
    return [service_request, task]


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def _parameters(**values: tuple[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": n, f"value{kind}": v} for n, (kind, v) in values.items()],
    }


def gp_token(server: PortalServer) -> dict[str, str]:
    """Kari's and Øyvind's GP (a care relation with both)."""
    return server.token(f"hpr-{GP_HPR}", "user/*.cruds", hpr=GP_HPR, orgnr=GP_ORGNR, category="LE")


def consultation_id(number: int) -> str:
    """The Encounter id of Kari's `number`th consultation (1-based, as CONSULTATIONS)."""
    return f"{EPISODE}-k{number}"


def seed(server: PortalServer) -> Seeded:
    system = server.token("portal-test-seed", "system/*.cruds", client_id="portal-test-seed")
    hospital = server.token(
        f"hpr-{HOSPITAL_HPR}",
        "user/*.cruds",
        hpr=HOSPITAL_HPR,
        orgnr=HOSPITAL_ORGNR,
        category="LE",
        name=HOSPITAL_DOCTOR,
        source_system=HOSPITAL_SYSTEM,
    )
    gp = gp_token(server)
    emergency = server.token(
        f"hpr-{EMERGENCY_HPR}",
        "user/*.cruds",
        hpr=EMERGENCY_HPR,
        orgnr=EMERGENCY_ORGNR,
        category="LE",
        name=EMERGENCY_DOCTOR,
    )
    today = datetime.now(OSLO).date()
    care_deadline = today + timedelta(weeks=6)
    authored = (today - timedelta(days=3)).isoformat()
    clinic = {
        "resourceType": "Organization",
        "id": "legevakt-fjordby",
        "identifier": [{"system": ORGNR_SYSTEM, "value": EMERGENCY_ORGNR}],
        "active": True,
        "name": EMERGENCY_CLINIC,
    }
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for resource in [
            clinic,
            *_referral("henvisning-kari", "kari", KARI_REFERRAL, authored),
            *_referral("henvisning-ase", "ase", ASE_REFERRAL, authored),
        ]:
            _ok(http.put(f"/{resource['resourceType']}/{resource['id']}", json=resource, headers=system))
        # The hospital owns the Task (a care relation): it receives and assesses the referral.
        _ok(http.post("/Task/t-henvisning-kari/$receive", json=_parameters(), headers=hospital))
        assessment = _parameters(
            decision=("Code", "rett"),
            priority=("Code", "ordinaer"),
            careDeadline=("Date", care_deadline.isoformat()),
            note=("String", "INTERN MERKNAD: aldri til pasienten"),
        )
        _ok(http.post("/Task/t-henvisning-kari/$assess", json=assessment, headers=hospital))
        _core_journal(http, hospital, gp, today)
        _medication_list(http, gp)
        due = _pregnancy(http, server, gp, today)
        # Kari's GP reads her allergy (care relation: her regular GP).
        _ok(http.get("/AllergyIntolerance/penicillin-kari", headers=gp))
        # The emergency clinic has no care relation: refused, then granted under emergency access.
        refused = http.get("/AllergyIntolerance/penicillin-kari", headers=emergency)
        assert refused.status_code == 403, refused.text
        reason = {"nhn-emergency-reason": quote(EMERGENCY_REASON)}
        _ok(http.get("/AllergyIntolerance/penicillin-kari", headers={**emergency, **reason}))
    return Seeded(care_deadline, today, today - timedelta(days=VACCINATED_DAYS_AGO), due)


def _core_journal(http: httpx.Client, hospital: dict[str, str], gp: dict[str, str], today: date) -> None:
    """The hospital records a critical allergy (the pack adds the core-journal entry by itself, naming
    the hospital as its source) and the GP a vaccine."""
    latex = allergy(
        LATEX,
        recordedDate=today.isoformat(),
        recorder={"identifier": {"system": HPR_SYSTEM, "value": HOSPITAL_HPR}, "display": HOSPITAL_DOCTOR},
        reaction=[{"manifestation": [{"text": ANAPHYLAXIS}], "severity": "severe"}],
    )
    _ok(http.post("/AllergyIntolerance", json=latex, headers=hospital))
    _ok(http.post("/Device", json=implant(PACEMAKER), headers=hospital))  # an implant: critical too
    vaccine = {
        "resourceType": "Immunization",
        "meta": {"source": GP_SYSTEM},
        "status": "completed",
        "vaccineCode": {"text": VACCINE},
        "patient": {"reference": "Patient/kari"},
        "occurrenceDateTime": (today - timedelta(days=VACCINATED_DAYS_AGO)).isoformat(),
        "recorded": (today - timedelta(days=VACCINATED_DAYS_AGO)).isoformat(),
        "performer": [
            {"actor": {"reference": "Organization/legekontor-fjordby", "display": GP_OFFICE}},
            {"actor": {"reference": "Practitioner/lege-lind", "display": GP_NAME}},
        ],
    }
    _ok(http.post("/Immunization", json=vaccine, headers=gp))


def _medication_list(http: httpx.Client, gp: dict[str, str]) -> None:
    """The GP reconciles Kari's medication list: one coded medicine packed in multidose, one free text."""
    coded = in_multidose(metformin(dose="1 tablett morgen og kveld"))
    medicines = [{"name": "medication", "resource": m} for m in (coded, tran())]
    body = {
        "resourceType": "Parameters",
        "parameter": [
            *medicines,
            {"name": "apply", "valueBoolean": True},
            {"name": "reason", "valueString": "Legemiddelsamstemming hos fastlegen"},
        ],
    }
    _ok(http.post("/Patient/kari/$reconcile", json=body, headers={**gp, "If-Match": 'W/"0"'}))


def on_day(due: date, gestation_days: int) -> date:
    """The day of a gestational age (in days) for a due date: 280 days less the days left to term."""
    return due - timedelta(days=280 - gestation_days)


def _pregnancy(http: httpx.Client, server: PortalServer, gp: dict[str, str], today: date) -> date:
    """Kari's GP office registers her pregnancy, the hospital's ultrasound dates it, the GP and the
    midwife record four consultations and the plan; then Kari, through a citizen token like the portal's,
    writes a question for the next consultation. Returns the due date."""
    due = today + timedelta(days=280 - GA_TODAY)
    lmp = on_day(due, -3)  # by her last period due three days later: the ultrasound's date wins
    eid, pid = EPISODE, "kari"
    office = ("Organization/legekontor-fjordby", GP_OFFICE)
    resources = [
        pregnancy.episode(eid, pid, on_day(due, 9 * 7 + 5).isoformat()),
        pregnancy.pregnancy(eid, pid, lmp.isoformat()),
        pregnancy.observation(
            f"{eid}-lmp", eid, pid, "lmp", lmp.isoformat(), {"valueDateTime": lmp.isoformat()}
        ),
        pregnancy.observation(
            f"{eid}-edd-us",
            eid,
            pid,
            "edd_ultrasound",
            on_day(due, 12 * 7).isoformat(),
            {"valueDateTime": due.isoformat()},
        ),
    ]
    for n, (days, weight, high, low, sf_height) in enumerate(CONSULTATIONS, 1):
        day = on_day(due, days).isoformat()
        cid = consultation_id(n)
        resources += [
            pregnancy.consultation(cid, eid, pid, day, *office),
            pregnancy.observation(
                f"{cid}-vekt", eid, pid, "weight", day, pregnancy.quantity(weight, "kg"), cid
            ),
            pregnancy.blood_pressure(f"{cid}-bt", eid, pid, day, cid, high, low),
        ]
        if sf_height is not None:
            resources.append(
                pregnancy.observation(
                    f"{cid}-sf", eid, pid, "sf_height", day, pregnancy.quantity(sf_height, "cm"), cid
                )
            )
    # One transaction: the pregnancy and its Condition name each other.
    written = _ok(http.post("/", json=put_each(*resources), headers=gp))
    assert all(e["response"]["status"].startswith("20") for e in written["entry"]), written
    _mark_plan(http, gp, eid)
    kari = demo_citizen(pid)
    assert kari is not None
    citizen = server.token(
        "dev-citizen-kari", "patient/*.rs patient/Communication.c", pid=kari.pid, patient=pid
    )
    question = pregnancy.note(
        f"{eid}-q1", eid, pid, KARI_QUESTION, f"{on_day(due, 27 * 7 + 5).isoformat()}T20:00:00+01:00"
    )
    question.pop("id")
    _ok(http.post("/Communication", json=question, headers=citizen))
    return due


def _mark_plan(http: httpx.Client, gp: dict[str, str], eid: str) -> None:
    """The GP marks the held and booked consultations on the plan the pack built."""
    found = _ok(http.get(f"/CarePlan?episode-of-care=EpisodeOfCare/{eid}", headers=gp))
    plan = found["entry"][0]["resource"]
    for activity in plan["activity"]:
        key = programme.programme_id(activity)
        if key in PLAN_STATUS:
            activity["detail"]["status"] = PLAN_STATUS[key]
    _ok(http.put(f"/CarePlan/{plan['id']}", json=plan, headers=gp))
