"""`GET /Patient/{id}/$pregnancy-card` (the pregnancy health card) on a year of synthetic pregnancies.

    python -m bench.pregnancy [--databases sqlite,postgresql] [--pregnancies 50000] [--measured 20]
                              [--seed N] [--requests 300] [--concurrency 4] [--html-requests 50]

Per database: a fresh database, `alembic upgrade head`, and two Helsebro servers on it as uvicorn
subprocesses on 127.0.0.1: `off` (AUTH_MODE=off: the engine) and `on` (AUTH_MODE=jwt with the development
issuer: authentication, access policy and audit, as deployed). Both run with a pilot file (written to the
run's temp directory) whose area is the bench's GP office.

The data is generated from `--seed` (the same seed gives the same data): `--pregnancies` background
women, each a Patient with a synthetic fødselsnummer, one pregnancy EpisodeOfCare (most finished, their
births spread over the year before REFERENCE_DAY; ACTIVE_SHARE still going on), the pregnancy Condition,
the LMP and cycle Observations, an ultrasound due date for most, and `--background-consultations`
consultations (Encounter, weight, blood pressure); and `--measured` women with a full card (`full_card`):
the nine programme consultations with their five measurements each, history, tests, a CarePlan, notes, a
CareTeam naming the bench's GP and her office (the care relation the `on` server's policy finds), the
medication list and a critical allergy (which the core journal's flow records). Loaded through `off` in
transaction bundles of `--per-bundle` pregnancies, `--load-concurrency` in flight (bench.ingest's loader;
each bundle is generated as it is sent, so the data set is never in memory at once).

Measured, on the measured women round-robin: `--requests` sequential cards on each server after a
warm-up, in `--rounds` interleaved parts (off, on, on, off, ...); then throughput at `--concurrency`; then
`--html-requests` sequential printable cards (`_format=html`). On `on` the caller is the GP (personnel,
`user/*.rs`) of the care team's office: every card is decided by the policy and audited, and the
AuditEvents are counted around every part. Every response must be a 200 document Bundle whose
Composition is the woman's, with the card's sections (an HTML one: a page with the card's title).
Prints tables and the target line, writes bench/results/pregnancy-<database>.json; the exit status is 0
only without errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from app.resources.medication_list.codes import ATC_SYSTEM
from app.resources.medication_list.model import empty_list
from app.resources.no_basis.identifiers import FNR_SYSTEM, synthetic_fnr
from app.resources.pregnancy_card.card import SECTIONS
from app.resources.pregnancy_card.codes import (
    CARD_SYSTEM,
    EPISODE_TYPE_CARD,
    EPISODE_TYPE_SNOMED,
    FOLLOW_UP_EXTENSION,
    PREGNANCY_CONDITION,
    PROGRAMME_URL,
    clinical,
)
from app.resources.pregnancy_card.examples import of_episode, quantity
from app.security.devtoken import load_or_create_key
from bench.common import (
    DATABASES,
    DEFAULT_RESULTS_DIR,
    Server,
    Tally,
    asyncpg_dsn,
    code_label,
    code_version,
    dev_issuer_env,
    fmt_num,
    fmt_pct,
    fresh_database,
    host_info,
    log_tail,
    merged,
    migrate,
    open_clients,
    percentile,
    run_main,
    settle,
    spread,
    start_server,
    stop_process,
    wait_ready,
)
from bench.common import write_json_report as write_report
from bench.ingest import BundleFile, IngestResult, ingest
from bench.security import (
    GP_ORGNR,
    ORG_ID,
    PRACTITIONER_ID,
    AuditCheck,
    Credentials,
    Load,
    PhaseResult,
    audit_count,
    care_setting,
    check_modes,
    credentials,
    drive,
    part,
    postgres_database,
    summarize,
    transaction,
)

TARGET_P99_MS = 100.0  # the issue: p99 under 100 ms with 50,000 pregnancies (a measured card, security on)
NOISE_CPU_PCT = 20  # other processes' CPU (percent of one core) above which a SQLite phase is flagged
REFERENCE_DAY = date(2026, 11, 30)  # the data's "today": fixed, so that a seed always gives the same data
ACTIVE_SHARE = 0.2  # background pregnancies still going on at REFERENCE_DAY (the rest gave birth in the year)
ULTRASOUND_SHARE = 0.9  # background pregnancies dated by ultrasound (of those past week 18)
# The basic programme's nine consultations (week of pregnancy), as the measured women had them.
PROGRAMME_WEEKS = (8, 18, 24, 28, 32, 36, 38, 40, 41)
BACKGROUND_WEEKS = (8, 24, 32, 36, 40)  # the first --background-consultations of these
SECTION_CODES = tuple(s.code for s in SECTIONS)
HTML_MARK = b"Helsekort for gravide"
GIVEN = ("Kari", "Ingrid", "Sigrid", "Astrid", "Solveig", "Nora", "Emma", "Ida", "Maja", "Sara", "Ane")
FAMILIES = ("Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Berg")
BIRTH_YEARS = tuple(range(1981, 2005))  # women 22 to 45 years old
DATES = len(BIRTH_YEARS) * 12 * 28  # distinct synthetic dates of birth
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
Resource = dict[str, Any]


# -- the synthetic data ---------------------------------------------------------------------------------
def woman_fnr(index: int) -> tuple[str, date]:
    """A synthetic fødselsnummer (a woman's: even individual number) and date of birth, distinct for every
    index: the index picks a date, and which of that date's valid female numbers (index // DATES)."""
    slot, rest = divmod(index, DATES)
    day, month, year = 1 + rest % 28, 1 + (rest // 28) % 12, BIRTH_YEARS[rest // 336]
    serial = 100 if year < 2000 else 500  # individual numbers 000-499: born 1900-1999; 500-999: 2000-2039
    found = -1
    while True:
        fnr = synthetic_fnr(day, month, year, serial)
        individual = int(fnr[6:9])
        if individual % 2 == 0:
            found += 1
            if found == slot:
                return fnr, date(year, month, day)
        serial = individual + 1


def ref(res_type: str, res_id: str) -> dict[str, str]:
    return {"reference": f"{res_type}/{res_id}"}


def concept_value(text: str) -> Resource:
    return {"valueCodeableConcept": {"text": text}}


def day_time(day: date, hour: int = 10) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00+01:00"


@dataclass
class Pregnancy:
    """One woman and her pregnancy: everything her bundle entries are made of."""

    index: int
    rng: random.Random
    lmp: date
    active: bool
    full: bool
    resources: list[Resource] = field(default_factory=list)

    @property
    def pid(self) -> str:
        return f"preg-w{self.index:06d}"

    @property
    def eid(self) -> str:
        return f"preg-e{self.index:06d}"

    def add(self, resource: Resource) -> None:
        self.resources.append(resource)

    def observation(
        self, suffix: str, key: str, when: date, value: Resource, encounter: str | None = None
    ) -> None:
        resource: Resource = {
            "resourceType": "Observation",
            "id": f"{self.eid}-{suffix}",
            "status": "final",
            "code": clinical(key).concept(),
            "subject": ref("Patient", self.pid),
            "effectiveDateTime": day_time(when),
            **value,
        }
        if encounter is not None:
            resource["encounter"] = ref("Encounter", encounter)
        self.add(of_episode(resource, self.eid))

    def consultation(self, number: int, week: int, where: tuple[str, str]) -> None:
        """An Encounter of the pregnancy and what was measured at it (weight and blood pressure; on a full
        card SF height, fetal heart rate and urine protein too)."""
        rng, day = self.rng, self.lmp + timedelta(weeks=week, days=self.rng.randrange(5))
        cid = f"{self.eid}-c{number}"
        self.add(
            {
                "resourceType": "Encounter",
                "id": cid,
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": ref("Patient", self.pid),
                "episodeOfCare": [ref("EpisodeOfCare", self.eid)],
                "period": {"start": day_time(day), "end": f"{day.isoformat()}T10:30:00+01:00"},
                "serviceProvider": {**ref("Organization", where[0]), "display": where[1]},
            }
        )
        self.observation(
            f"w{number}", "weight", day, quantity(round(62 + week * 0.3 + rng.uniform(-4, 8), 1), "kg"), cid
        )
        self.add(self.blood_pressure(number, day, cid))
        if self.full:
            self.observation(
                f"sf{number}", "sf_height", day, quantity(max(week - 2 + rng.randrange(5), 6), "cm"), cid
            )
            self.observation(
                f"fhr{number}", "fetal_heart_rate", day, quantity(rng.randrange(120, 160), "/min"), cid
            )
            self.observation(f"up{number}", "urine_protein", day, concept_value("Negativ"), cid)

    def blood_pressure(self, number: int, day: date, encounter: str) -> Resource:
        high, low = self.rng.randrange(100, 135), self.rng.randrange(60, 85)
        resource: Resource = {
            "resourceType": "Observation",
            "id": f"{self.eid}-bp{number}",
            "status": "final",
            "code": clinical("bp").concept(),
            "subject": ref("Patient", self.pid),
            "effectiveDateTime": day_time(day),
            "encounter": ref("Encounter", encounter),
            "component": [
                {"code": clinical("bp_systolic").concept(), **quantity(high, "mm[Hg]")},
                {"code": clinical("bp_diastolic").concept(), **quantity(low, "mm[Hg]")},
            ],
        }
        return of_episode(resource, self.eid)


def pregnancy(seed: int, index: int, full: bool, background_consultations: int) -> Pregnancy:
    """Woman `index`'s resources, from the seed and her index alone (any bundle can be built on its own)."""
    rng = random.Random(f"{seed}:{index}")
    if full:  # at the programme's last consultation: the fullest card there is
        lmp, active = REFERENCE_DAY - timedelta(weeks=41, days=6 + rng.randrange(10)), True
    elif rng.random() < ACTIVE_SHARE:  # still pregnant: registered (week 8) and not yet born
        lmp, active = REFERENCE_DAY - timedelta(days=rng.randrange(8 * 7, 40 * 7)), True
    else:  # gave birth in the year before REFERENCE_DAY
        lmp, active = REFERENCE_DAY - timedelta(days=280 + rng.randrange(365)), False
    p = Pregnancy(index, rng, lmp, active, full)
    fnr, born = woman_fnr(index)
    cycle = rng.choice((26, 28, 28, 28, 30, 32))
    registered = lmp + timedelta(weeks=8)
    # A finished pregnancy's birth (as the episode's end) is never after REFERENCE_DAY.
    birth = min(lmp + timedelta(days=280 + cycle - 28 + rng.randrange(-14, 12)), REFERENCE_DAY)
    p.add(
        {
            "resourceType": "Patient",
            "id": p.pid,
            "identifier": [{"system": FNR_SYSTEM, "value": fnr}],
            "active": True,
            "name": [{"use": "official", "family": rng.choice(FAMILIES), "given": [rng.choice(GIVEN)]}],
            "gender": "female",
            "birthDate": born.isoformat(),
        }
    )
    episode: Resource = {
        "resourceType": "EpisodeOfCare",
        "id": p.eid,
        "extension": [
            {"url": FOLLOW_UP_EXTENSION, "valueCode": rng.choice(("begge", "begge", "jordmor", "fastlege"))}
        ],
        "status": "active" if active else "finished",
        "type": [{"coding": [EPISODE_TYPE_SNOMED, EPISODE_TYPE_CARD]}],
        "diagnosis": [{"condition": ref("Condition", f"{p.eid}-pregnancy")}],
        "patient": ref("Patient", p.pid),
        "period": {"start": registered.isoformat(), **({} if active else {"end": birth.isoformat()})},
    }
    if full:
        episode["team"] = [ref("CareTeam", f"{p.eid}-team")]
    p.add(episode)
    condition: Resource = {
        "resourceType": "Condition",
        "id": f"{p.eid}-pregnancy",
        "clinicalStatus": {
            "coding": [{"system": CONDITION_CLINICAL, "code": "active" if active else "resolved"}]
        },
        "code": {"coding": [PREGNANCY_CONDITION]},
        "subject": ref("Patient", p.pid),
        "onsetDateTime": lmp.isoformat(),
        **({} if active else {"abatementDateTime": birth.isoformat()}),
    }
    p.add(of_episode(condition, p.eid))
    p.observation("lmp", "lmp", registered, {"valueDateTime": lmp.isoformat()})
    p.observation("cycle", "cycle_length", registered, quantity(cycle, "d"))
    scanned = lmp + timedelta(weeks=18)
    if scanned <= REFERENCE_DAY and (full or rng.random() < ULTRASOUND_SHARE):
        due = lmp + timedelta(days=280 + rng.randrange(-7, 8))
        p.observation("edd-us", "edd_ultrasound", scanned, {"valueDateTime": due.isoformat()})
    gp = (ORG_ID, "Benkvik legekontor")
    if not full:
        for number, week in enumerate(BACKGROUND_WEEKS[:background_consultations], 1):
            if lmp + timedelta(weeks=week) <= REFERENCE_DAY:
                p.consultation(number, week, gp)
        return p
    full_card(p, registered, gp)
    return p


def full_card(p: Pregnancy, registered: date, gp: tuple[str, str]) -> None:
    """What a measured woman has beyond the background: the nine consultations with all their
    measurements, history, tests, the plan, notes, the care team, the medication list, an illness and a
    critical allergy."""
    rng, pid, eid = p.rng, p.pid, p.eid
    p.add(
        {
            "resourceType": "CareTeam",
            "id": f"{eid}-team",
            "status": "active",
            "name": "Svangerskapsomsorg",
            "subject": ref("Patient", pid),
            "participant": [
                {
                    "role": [{"text": "Fastlege"}],
                    "member": {**ref("Practitioner", PRACTITIONER_ID), "display": "Fastlege Bente Lege"},
                    "onBehalfOf": ref("Organization", ORG_ID),
                },
                {
                    "role": [{"text": "Legekontor"}],
                    "member": {**ref("Organization", ORG_ID), "display": gp[1]},
                },
            ],
        }
    )
    for number, week in enumerate(PROGRAMME_WEEKS, 1):
        p.consultation(number, week, gp)
    gravida = 1 + rng.randrange(3)  # this pregnancy counted; para: the births before it
    p.observation("gravida", "gravida", registered, {"valueInteger": gravida})
    p.observation("para", "para", registered, {"valueInteger": rng.randrange(gravida)})
    p.observation("height", "height", registered, quantity(rng.randrange(155, 182), "cm"))
    p.observation("weight-before", "weight_before", registered, quantity(rng.randrange(52, 85), "kg"))
    p.observation("tobacco", "tobacco", registered, concept_value("Aldri røykt"))
    tests = (
        (
            "blood-group",
            "blood_group",
            concept_value(rng.choice(("A RhD positiv", "O RhD positiv", "B RhD negativ"))),
        ),
        ("antibody", "antibody_screen", concept_value("Negativ")),
        ("hiv", "hiv", concept_value("Negativ")),
        ("hbsag", "hbsag", concept_value("Negativ")),
        ("syphilis", "syphilis", concept_value("Negativ")),
        ("hb", "hb", quantity(round(rng.uniform(11.0, 14.0), 1), "g/dL")),
    )
    for suffix, key, value in tests:
        p.observation(suffix, key, registered + timedelta(days=2), value)
    p.add(
        of_episode(
            {
                "resourceType": "ServiceRequest",
                "id": f"{eid}-us",
                "status": "completed",
                "intent": "order",
                "code": clinical("routine_ultrasound").concept(),
                "subject": ref("Patient", pid),
                "occurrenceDateTime": day_time(p.lmp + timedelta(weeks=18)),
            },
            eid,
        )
    )
    p.add(
        of_episode(
            {
                "resourceType": "CarePlan",
                "id": f"{eid}-plan",
                "status": "active",
                "intent": "plan",
                "instantiatesCanonical": [PROGRAMME_URL],
                "title": "Basisprogrammet for svangerskapsomsorg",
                "subject": ref("Patient", pid),
                "activity": [
                    {
                        "detail": {
                            "status": "completed",
                            "description": f"Konsultasjon uke {week}",
                            "scheduledPeriod": {
                                "start": (p.lmp + timedelta(weeks=week - 1)).isoformat(),
                                "end": (p.lmp + timedelta(weeks=week + 1)).isoformat(),
                            },
                        }
                    }
                    for week in PROGRAMME_WEEKS
                ],
            },
            eid,
        )
    )
    for number, (category, text) in enumerate(
        (
            ("sporsmal", "Kan jeg fortsette å trene?"),
            ("notat", "Kjente liv i dag."),
            ("sporsmal", "Når bør jeg dra til fødeavdelingen?"),
        ),
        1,
    ):
        sent = p.lmp + timedelta(weeks=10 * number)
        p.add(
            of_episode(
                {
                    "resourceType": "Communication",
                    "id": f"{eid}-note{number}",
                    "status": "completed",
                    "category": [{"coding": [{"system": CARD_SYSTEM, "code": category}]}],
                    "subject": ref("Patient", pid),
                    "sender": ref("Patient", pid),
                    "sent": day_time(sent, 20),
                    "payload": [{"contentString": text}],
                },
                eid,
            )
        )
    medicines = (
        ("folsyre", "Folsyre tablett 0,4 mg", "B03BB01"),
        ("levotyroksin", "Levaxin tablett 50 mikrog", "H03AA01"),
    )
    for suffix, text, atc in medicines:
        p.add(
            {
                "resourceType": "MedicationStatement",
                "id": f"{pid}-{suffix}",
                "status": "active",
                "medicationCodeableConcept": {"text": text, "coding": [{"system": ATC_SYSTEM, "code": atc}]},
                "subject": ref("Patient", pid),
                "dosage": [{"text": "1 tablett morgen"}],
            }
        )
    medication_list = {**empty_list(pid), "id": f"{pid}-medicines"}
    medication_list["entry"] = [{"item": ref("MedicationStatement", f"{pid}-{s}")} for s, _, _ in medicines]
    p.add(medication_list)
    p.add(
        {
            "resourceType": "Condition",
            "id": f"{pid}-hypothyroidism",
            "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
            "code": {
                "coding": [{"system": ICD10, "code": "E03.9", "display": "Hypotyreose"}],
                "text": "Hypotyreose",
            },
            "subject": ref("Patient", pid),
        }
    )
    # Critical (high): the core journal's flow records it as an entry (ENTRY_TAG), which the card shows.
    p.add(
        {
            "resourceType": "AllergyIntolerance",
            "id": f"{pid}-penicillin",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "active",
                    }
                ]
            },
            "type": "allergy",
            "category": ["medication"],
            "criticality": "high",
            "code": {
                "coding": [
                    {"system": "http://snomed.info/sct", "code": "764146007", "display": "Penicillin"}
                ],
                "text": "Penicillin",
            },
            "patient": ref("Patient", pid),
        }
    )


@dataclass(frozen=True)
class Plan:
    """Which women there are and which bundle each is in: measured ones spread over the background."""

    seed: int
    background: int
    measured: int
    per_bundle: int
    background_consultations: int

    @property
    def women(self) -> int:
        return self.background + self.measured

    def measured_indices(self) -> list[int]:
        return spread(range(self.women), self.measured) if self.measured else []

    def pregnancy(self, index: int, measured: frozenset[int]) -> Pregnancy:
        return pregnancy(self.seed, index, index in measured, self.background_consultations)

    def bundles(self) -> list[BundleFile]:
        """The care setting first (its own stage), then the women's bundles, each built when it is sent.
        Counting the entries builds every woman once (not the bodies): a few seconds for 50,000."""
        measured = frozenset(self.measured_indices())
        setting = transaction(care_setting())
        out = [BundleFile("care-setting", setting, len(care_setting()), 0)]
        for first in range(0, self.women, self.per_bundle):
            indices = range(first, min(first + self.per_bundle, self.women))
            entries = sum(len(self.pregnancy(i, measured).resources) for i in indices)

            def build(indices: range = indices) -> bytes:
                return transaction([r for i in indices for r in self.pregnancy(i, measured).resources])

            out.append(BundleFile(f"women-{first:06d}", b"", entries, 2, build))
        return out


# -- the measured women ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """One measured woman: her id and what her card holds."""

    patient_id: str
    resources: int  # written for her (the derived core-journal entry and Provenance not counted)
    document_entries: int = 0
    document_bytes: int = 0
    html_bytes: int = 0
    sections: Mapping[str, int] = field(default_factory=dict)  # section code -> entries
    audit_per_card: int = 0  # AuditEvents one secured card adds


def card_url(server: Server, patient_id: str, html: bool = False) -> str:
    return f"{server.base_url}/Patient/{patient_id}/$pregnancy-card" + ("?_format=html" if html else "")


def check_card(response: httpx.Response) -> dict[str, Any]:
    """A 200 answer must be a document Bundle led by the woman's Composition with the card's sections."""
    patient_id = response.url.path.split("/")[-2]
    bundle: dict[str, Any] = orjson.loads(response.content)
    entries = bundle.get("entry") or []
    first = entries[0].get("resource", {}) if entries else {}
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "document":
        raise ValueError(f"not a document Bundle: {bundle.get('resourceType')} {bundle.get('type')}")
    if first.get("resourceType") != "Composition":
        raise ValueError(f"the first entry is {first.get('resourceType')}, not a Composition")
    if first.get("subject", {}).get("reference") != f"Patient/{patient_id}":
        raise ValueError(f"the Composition's subject is {first.get('subject')}")
    codes = tuple(s.get("code", {}).get("coding", [{}])[0].get("code") for s in first.get("section", []))
    if codes != SECTION_CODES:
        raise ValueError(f"sections {codes}, expected {SECTION_CODES}")
    return bundle


def check_html(response: httpx.Response) -> None:
    if (
        not response.headers.get("content-type", "").startswith("text/html")
        or HTML_MARK not in response.content
    ):
        raise ValueError(f"not the card's HTML page: {response.headers.get('content-type')}")


def section_counts(bundle: Mapping[str, Any]) -> dict[str, int]:
    out = {}
    for s in bundle["entry"][0]["resource"]["section"]:
        code = s["code"]["coding"][0]["code"]
        out[code] = len(s.get("entry") or ()) + sum(
            len(sub.get("entry") or ()) for sub in s.get("section", [])
        )
    return out


async def inspect(
    client: httpx.AsyncClient, off: Server, on: Server, creds: Credentials, target: Target
) -> Target:
    """One card of the woman on each server (not timed): size and sections, the HTML's size, and the
    AuditEvents one secured card adds."""
    response = await client.get(card_url(off, target.patient_id))
    if response.status_code != 200:
        raise RuntimeError(
            f"{target.patient_id}: $pregnancy-card -> HTTP {response.status_code}: {response.text[:1000]}"
        )
    bundle = check_card(response)
    html = await client.get(card_url(off, target.patient_id, html=True))
    check_html(html)
    before = await audit_count(client, on, creds)
    secured = await client.get(card_url(on, target.patient_id), headers=creds.gp)
    if secured.status_code != 200:
        raise RuntimeError(
            f"{target.patient_id}: secured card -> HTTP {secured.status_code}: {secured.text[:1000]}"
        )
    secured_counts = section_counts(check_card(secured))
    counts = section_counts(bundle)
    if secured_counts != counts:
        raise RuntimeError(f"{target.patient_id}: the GP's card differs: {secured_counts} != {counts}")
    added = await audit_count(client, on, creds) - before
    return Target(
        target.patient_id,
        target.resources,
        len(bundle["entry"]),
        len(response.content),
        len(html.content),
        counts,
        added,
    )


# -- phases ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    databases: tuple[str, ...]
    seed: int
    pregnancies: int
    measured: int
    per_bundle: int
    background_consultations: int
    requests: int
    warmup: int
    concurrency: int
    rounds: int
    html_requests: int
    load_concurrency: int
    analyze_every_s: float
    time_limit_s: float
    results_dir: Path
    keep: bool = False  # keep the loaded database (PostgreSQL: on the server; SQLite: in results_dir)
    reuse: str | None = None  # measure this database, loaded by a kept run with the same data options


@dataclass(frozen=True)
class Result:
    phase: PhaseResult
    kind: str  # "card" or "html"
    concurrency: int
    p90_ms: float
    max_ms: float
    mean_ms: float

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "concurrency": self.concurrency,
            **asdict(self.phase),
            "p90_ms": self.p90_ms,
            "max_ms": self.max_ms,
            "mean_ms": self.mean_ms,
        }


@dataclass(frozen=True)
class Side:
    mode: str  # "off" or "on"
    server: Server
    headers: Mapping[str, str] | None


async def compare(
    sides: Sequence[Side],
    targets: Sequence[Target],
    kind: str,
    clients: Sequence[httpx.AsyncClient],
    requests: int,
    warmup: int,
    rounds: int,
    creds: Credentials,
    on: Server,
    deadline: float,
    postgres: str | None,
) -> list[Result]:
    """The women's cards round-robin on each side: a warm-up each, then `rounds` interleaved parts (off,
    on, then on, off, ...), the AuditEvents counted around every part (the `on` side must add exactly
    audit_per_card per card it answered; `off` none)."""
    html = kind == "html"
    per_card = {t.patient_id: t.audit_per_card for t in targets}

    async def counted(side: Side, count: int, offset: int) -> tuple[Tally, AuditCheck]:
        chosen = [targets[(offset + i) % len(targets)] for i in range(count)]
        answered: Counter[str] = Counter()

        def check(response: httpx.Response) -> None:
            if html:
                check_html(response)
            else:
                check_card(response)
            answered[response.url.path.split("/")[-2]] += 1

        urls = [card_url(side.server, t.patient_id, html) for t in chosen]
        before = await audit_count(clients[0], on, creds)
        tally = await drive(
            clients, Load(urls, [side.headers] * count, check), deadline, side.server.process.pid, postgres
        )
        added = await audit_count(clients[0], on, creds) - before
        expected = sum(n * per_card[p] for p, n in answered.items()) if side.mode == "on" else 0
        return tally, AuditCheck(added, expected)

    warmups: dict[str, Tally] = {}
    parts: dict[str, list[Tally]] = {s.mode: [] for s in sides}
    audits: dict[str, list[AuditCheck]] = {s.mode: [] for s in sides}
    for side in sides:
        warmups[side.mode], audit = await counted(side, warmup, 0)
        audits[side.mode].append(audit)
    indices = list(range(requests))
    for index in range(rounds):
        for side in sides if index % 2 == 0 else list(reversed(sides)):
            if time.monotonic() >= deadline:
                break
            chunk = part(indices, index, rounds)
            tally, audit = await counted(side, len(chunk), chunk[0] if chunk else 0)
            parts[side.mode].append(tally)
            audits[side.mode].append(audit)
    results = []
    concurrency = len(clients)
    for side in sides:
        checks = audits[side.mode]
        audit = AuditCheck(sum(c.added for c in checks), sum(c.expected for c in checks))
        tally = merged(parts[side.mode])
        latencies = sorted(tally.latencies_ms)
        name = f"{kind} sequential" if concurrency == 1 else f"{kind} concurrency {concurrency}"
        r = Result(
            summarize(side.mode, name, requests, warmups[side.mode], tally, audit),
            kind,
            concurrency,
            round(percentile(latencies, 90), 2),
            round(latencies[-1], 2) if latencies else 0.0,
            round(sum(latencies) / len(latencies), 2) if latencies else 0.0,
        )
        p = r.phase
        verdict = "ok" if audit.passed else f"MISMATCH: expected {audit.expected}"
        print(
            f"  {kind:<4} {side.mode:<3} c={concurrency:<2} {p.requests_per_s:>7.1f} req/s  p50 {p.p50_ms:.1f}"
            f"  p90 {r.p90_ms:.1f}  p99 {p.p99_ms:.1f}  max {r.max_ms:.1f} ms  errors {p.errors}"
            f"  audit +{audit.added} ({verdict})",
            flush=True,
        )
        results.append(r)
    return results


# -- one database ---------------------------------------------------------------------------------------
async def analyze_meanwhile(database_url: str, every_s: float, done: asyncio.Event) -> int:
    """On PostgreSQL, ANALYZE every `every_s` seconds until `done`, as autovacuum would (this host's
    PostgreSQL runs with autovacuum off): without statistics the plans of a growing database go stale and
    the load slows down as it grows. Returns how many ran (0 on SQLite or with every_s 0)."""
    if not database_url.startswith("postgresql") or every_s <= 0:
        return 0
    runs = 0
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), every_s)
            if not done.is_set():
                await conn.execute("ANALYZE", timeout=600)
                runs += 1
    finally:
        await conn.close()
    return runs


def pilot_file(workdir: Path) -> Path:
    """The pregnancy card's pilot area: the bench's GP office (README-pilot.md)."""
    path = workdir / "pilot.json"
    path.write_bytes(
        orjson.dumps({"description": "bench.pregnancy: the bench's GP office", "organizations": [GP_ORGNR]})
    )
    return path


@contextlib.asynccontextmanager
async def loaded_database(kind: str, workdir: Path, opts: Options) -> AsyncIterator[str]:
    """A fresh database (kept with --keep), or the one --reuse names."""
    if opts.reuse:
        yield opts.reuse
        return
    async with fresh_database(kind, workdir, opts.results_dir if opts.keep else None) as url:
        yield url


async def load(
    url: str,
    off: Server,
    loaders: Sequence[httpx.AsyncClient],
    bundles: Sequence[BundleFile],
    opts: Options,
    deadline: float,
) -> tuple[IngestResult | None, int]:
    """Load the plan's bundles through `off` (nothing when reusing a loaded database)."""
    if opts.reuse:
        print(f"  reusing {opts.reuse}: not loaded again", flush=True)
        return None, 0
    done = asyncio.Event()
    analyzer = asyncio.create_task(analyze_meanwhile(url, opts.analyze_every_s, done))
    try:
        loaded, _ = await ingest(off, loaders, bundles, deadline)
    finally:
        done.set()
    analyzes = await analyzer
    print(
        f"  loaded {loaded.resources_ok:,}/{loaded.resources:,} resources in {loaded.wall_s:.1f} s: "
        f"{loaded.resources_per_s:.0f}/s, {loaded.failed} failed bundles",
        flush=True,
    )
    if loaded.failed or loaded.truncated:
        raise RuntimeError(f"the load failed: {loaded.failure_samples}")
    return loaded, analyzes


async def bench_database(
    kind: str, opts: Options, plan: Plan, bundles: Sequence[BundleFile], deadline: float
) -> dict[str, Any]:
    resources = sum(b.entries for b in bundles)
    print(
        f"\n== {kind}: {plan.women:,} women ({opts.pregnancies:,} background, {opts.measured} measured) in "
        f"{len(bundles)} bundles, {resources:,} resources; $pregnancy-card of the measured women, "
        f"{opts.requests} sequential requests per server in {opts.rounds} rounds, {opts.requests} at "
        f"concurrency {opts.concurrency}, {opts.html_requests} as HTML ==",
        flush=True,
    )
    results: list[Result] = []
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="helsebro-bench-") as tmp:
        workdir = Path(tmp)
        key_file = workdir / "dev-key.json"
        load_or_create_key(key_file)  # before the servers start: they read it at start-up
        creds = credentials(key_file, 0, int(opts.time_limit_s) + 3600)
        pilot = {"PREGNANCY_CARD_PILOT_FILE": str(pilot_file(workdir))}
        async with loaded_database(kind, workdir, opts) as url:
            await asyncio.to_thread(migrate, url)
            async with AsyncExitStack() as stack:
                code = code_version()
                servers = [
                    start_server("off", "app.main:create_app", url, workdir, {"AUTH_MODE": "off", **pilot}),
                    start_server(
                        "on", "app.main:create_app", url, workdir, {**dev_issuer_env(key_file), **pilot}
                    ),
                ]
                for server in servers:
                    stack.callback(stop_process, server.process)  # runs last: after the clients close
                off, on = servers
                loaders = await open_clients(
                    stack, opts.load_concurrency, timeout_s=opts.time_limit_s, keep_alive=False
                )
                clients = await open_clients(stack, max(opts.concurrency, 1))
                for server in servers:
                    await wait_ready(clients[0], server, "/metadata", 200)
                await check_modes(clients[0], off, on)
                loaded, analyzes = await load(url, off, loaders, bundles, opts, deadline)
                settle_s = await settle(url)
                measured = frozenset(plan.measured_indices())
                for index in sorted(measured):
                    woman = plan.pregnancy(index, measured)
                    target = Target(woman.pid, len(woman.resources))
                    targets.append(await inspect(clients[0], off, on, creds, target))
                t = targets[0]
                print(
                    f"  a measured card: {t.resources} resources written, {t.document_entries} entries "
                    f"({t.document_bytes / 1024:.0f} kB, HTML {t.html_bytes / 1024:.0f} kB), "
                    f"{t.audit_per_card} AuditEvents per secured card",
                    flush=True,
                )
                postgres = postgres_database(url)
                sides = [Side("off", off, None), Side("on", on, creds.gp)]
                common = (creds, on, deadline, postgres)
                results += await compare(
                    sides, targets, "card", clients[:1], opts.requests, opts.warmup, opts.rounds, *common
                )
                if opts.concurrency > 1 and time.monotonic() < deadline:
                    results += await compare(
                        sides,
                        targets,
                        "card",
                        clients[: opts.concurrency],
                        opts.requests,
                        opts.warmup,
                        1,
                        *common,
                    )
                if opts.html_requests and time.monotonic() < deadline:
                    warmup = max(1, opts.html_requests // 10)
                    results += await compare(
                        sides, targets, "html", clients[:1], opts.html_requests, warmup, 1, *common
                    )
            server_logs = {s.name: log_tail(s.log_path, 40) for s in servers}
    measured_counts = sorted({t.resources for t in targets})
    return {
        "database": kind,
        "database_url": url,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "code": code,
        "host": host_info(),
        "data": {
            "women": plan.women,
            "background": opts.pregnancies,
            "measured": opts.measured,
            "bundles": len(bundles),
            "resources": resources,
            "resources_per_background_woman": round(
                (resources - len(care_setting()) - sum(t.resources for t in targets))
                / max(1, opts.pregnancies),
                2,
            ),
            "resources_per_measured_woman": measured_counts,
            "reference_day": REFERENCE_DAY.isoformat(),
        },
        "load": asdict(loaded) if loaded else {"reused": opts.reuse},
        "analyzes_during_load": analyzes,
        "settle_s": round(settle_s, 2),
        "women": [asdict(t) for t in targets],
        "phases": [r.as_json() for r in results],
        "target_p99_ms": TARGET_P99_MS,
        "server_logs": server_logs,
    }


# -- reporting ------------------------------------------------------------------------------------------
def headline(report: dict[str, Any]) -> dict[str, Any] | None:
    """The issue's figure: sequential cards with security on."""
    return next(
        (p for p in report["phases"] if p["kind"] == "card" and p["mode"] == "on" and p["concurrency"] == 1),
        None,
    )


def format_report(report: dict[str, Any]) -> str:
    load, data = report["load"], report["data"]
    lines = [
        f"\n{report['database']} ({report['database_url']}), code {code_label(report['code'])}",
        f"data: {data['women']:,} women ({data['background']:,} background at "
        f"{data['resources_per_background_woman']} resources each, {data['measured']} measured at "
        f"{', '.join(str(n) for n in data['resources_per_measured_woman'])}), {data['resources']:,} resources",
        (
            f"load: reused {load['reused']} (loaded by an earlier --keep run)"
            if "reused" in load
            else f"load: {load['ok']}/{load['bundles']} bundles, {load['resources_ok']:,} resources in "
            f"{load['wall_s']:.1f} s ({load['resources_per_s']:.0f}/s, server CPU "
            f"{fmt_pct(load['server_cpu_pct'])}, other {fmt_pct(load['other_cpu_pct'])}); "
            f"{report['analyzes_during_load']} ANALYZE meanwhile"
        )
        + f"; settle {report['settle_s']:.1f} s",
    ]
    if report["women"]:
        w = report["women"][0]
        sections = ", ".join(f"{code} {n}" for code, n in w["sections"].items())
        lines.append(
            f"a measured card: {w['document_entries']} entries, {w['document_bytes'] / 1024:.0f} kB (HTML "
            f"{w['html_bytes'] / 1024:.0f} kB), {w['audit_per_card']} AuditEvents per secured card; {sections}"
        )
    header = (
        f"{'kind':<5} {'mode':<4} {'conc':>4} {'ok/sent':>9} {'err':>4} {'req/s':>7} {'p50 ms':>7} "
        f"{'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} {'server cpu':>10} {'other cpu':>9} {'srv ms/req':>10} "
        f"{'db ms/req':>9} {'audit':>8}"
    )
    lines += ["", header, "-" * len(header)]
    for p in report["phases"]:
        flag = "  (time limit)" if p["truncated"] else ""
        audit = p["audit"]
        audit_text = f"+{audit['added']}" + ("" if audit["passed"] else f"!={audit['expected']}")
        lines.append(
            f"{p['kind']:<5} {p['mode']:<4} {p['concurrency']:>4} {p['ok']:>4}/{p['sent']:<4} "
            f"{p['errors']:>4} {p['requests_per_s']:>7.1f} {p['p50_ms']:>7.1f} {p['p90_ms']:>7.1f} "
            f"{p['p99_ms']:>7.1f} {p['max_ms']:>7.1f} {fmt_pct(p['server_cpu_pct']):>10} "
            f"{fmt_pct(p['other_cpu_pct']):>9} {fmt_num(p['server_cpu_ms_per_request']):>10} "
            f"{fmt_num(p['db_cpu_ms_per_request']):>9} {audit_text:>8}{flag}"
        )
    best = headline(report)
    if best is not None:
        verdict = "met" if best["p99_ms"] < report["target_p99_ms"] else "MISSED"
        lines.append(
            f"target: p99 < {report['target_p99_ms']:.0f} ms for a full card with {data['women']:,} pregnancies, "
            f"security on: {best['p99_ms']:.1f} ms, {verdict}"
        )
    for p in report["phases"]:
        name = f"{p['kind']} {p['mode']} c={p['concurrency']}"
        if not p["audit"]["passed"]:
            lines.append(
                f"!!! AUDIT MISMATCH {name}: {p['audit']['added']} AuditEvents added, expected {p['audit']['expected']}"
            )
        if report["database"] == "sqlite" and (p["other_cpu_pct"] or 0) > NOISE_CPU_PCT:
            lines.append(f"! {name}: other processes used {p['other_cpu_pct']:.0f}% CPU: noisy")
        if p["errors"] or p["warmup_errors"]:
            lines.append(f"! {name}: {p['error_kinds']} (+{p['warmup_errors']} in warm-up)")
            lines.extend(f"    {sample}" for sample in p["error_samples"])
    for name, log in report["server_logs"].items():
        shown = [line for line in log.splitlines() if "AUTH_MODE=off" not in line and line.strip()]
        if shown:
            lines.append(f"! {name} server log (last lines):")
            lines.extend(f"    {line[:300]}" for line in shown)
    return "\n".join(lines)


def failed(report: dict[str, Any], opts: Options) -> bool:
    phases = report["phases"]
    expected = 2 + (2 if opts.concurrency > 1 else 0) + (2 if opts.html_requests else 0)
    return len(phases) < expected or any(
        p["errors"] or p["warmup_errors"] or p["truncated"] or not p["audit"]["passed"] for p in phases
    )


# -- entry point ----------------------------------------------------------------------------------------
URL_PREFIX = {"sqlite": "sqlite+aiosqlite:///", "postgresql": "postgresql+asyncpg://"}


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pregnancy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--databases", default=",".join(DATABASES), help="comma-separated: sqlite, postgresql (default: both)"
    )
    parser.add_argument("--seed", type=int, default=20261207, help="the data's seed (default 20261207)")
    parser.add_argument(
        "--pregnancies",
        type=int,
        default=50_000,
        help="background women, one pregnancy each (default 50,000)",
    )
    parser.add_argument(
        "--measured", type=int, default=20, help="women with a full card, measured (default 20)"
    )
    parser.add_argument(
        "--per-bundle", type=int, default=50, help="women per transaction bundle (default 50)"
    )
    parser.add_argument(
        "--background-consultations",
        type=int,
        default=2,
        help=f"consultations per background pregnancy, at most {len(BACKGROUND_WEEKS)} (default 2)",
    )
    parser.add_argument(
        "--requests", type=int, default=300, help="measured cards per server and phase (default 300)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="unmeasured cards before each phase (default 10%% of --requests)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="cards in flight in the throughput phase; 1 skips it (default 4)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="interleaved parts of the sequential off/on comparison (default 2)",
    )
    parser.add_argument(
        "--html-requests",
        type=int,
        default=50,
        help="sequential _format=html cards per server; 0 skips (default 50)",
    )
    parser.add_argument(
        "--load-concurrency", type=int, default=2, help="bundles in flight while loading (default 2)"
    )
    parser.add_argument(
        "--analyze-every",
        type=float,
        default=60.0,
        help="PostgreSQL: ANALYZE every this many seconds while loading, as autovacuum would; 0: never "
        "(default 60)",
    )
    parser.add_argument(
        "--time-limit", type=float, default=7200.0, help="seconds for the whole run (default 7200)"
    )
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the loaded database and print its URL (PostgreSQL: on the server, drop it yourself; "
        "SQLite: a file in --results-dir)",
    )
    parser.add_argument(
        "--reuse",
        metavar="DATABASE_URL",
        help="measure a database a --keep run loaded (same --seed, --pregnancies, --measured, "
        "--per-bundle, --background-consultations) instead of loading a fresh one; one database only",
    )
    args = parser.parse_args(argv)
    databases = tuple(d.strip() for d in args.databases.split(",") if d.strip())
    unknown = [d for d in databases if d not in DATABASES]
    if unknown or not databases:
        parser.error(f"--databases takes {', '.join(DATABASES)}; got {args.databases!r}")
    warmup = max(1, args.requests // 10) if args.warmup is None else args.warmup
    if (
        min(
            args.requests,
            args.concurrency,
            args.rounds,
            args.measured,
            args.load_concurrency,
            args.per_bundle,
        )
        < 1
    ):
        parser.error(
            "--requests, --concurrency, --rounds, --measured, --per-bundle and --load-concurrency must be >= 1"
        )
    if (
        min(warmup, args.pregnancies, args.html_requests, args.analyze_every) < 0
        or args.time_limit <= 0
        or args.rounds > args.requests
    ):
        parser.error(
            "--warmup, --pregnancies, --html-requests and --analyze-every must be >= 0, --time-limit > 0, "
            "--rounds at most --requests"
        )
    if args.reuse and (len(databases) != 1 or not args.reuse.startswith(URL_PREFIX[databases[0]])):
        parser.error("--reuse takes the URL of a database of the one kind --databases names")
    if not 0 <= args.background_consultations <= len(BACKGROUND_WEEKS):
        parser.error(f"--background-consultations takes 0 to {len(BACKGROUND_WEEKS)}")
    if args.pregnancies + args.measured > DATES * 40:
        parser.error(f"at most {DATES * 40:,} women (distinct synthetic fødselsnumre)")
    return Options(
        databases,
        args.seed,
        args.pregnancies,
        args.measured,
        args.per_bundle,
        args.background_consultations,
        args.requests,
        warmup,
        args.concurrency,
        args.rounds,
        args.html_requests,
        args.load_concurrency,
        args.analyze_every,
        args.time_limit,
        args.results_dir,
        args.keep,
        args.reuse,
    )


async def run(opts: Options) -> int:
    deadline = time.monotonic() + opts.time_limit_s
    any_failed = False
    plan = Plan(opts.seed, opts.pregnancies, opts.measured, opts.per_bundle, opts.background_consultations)
    async with asyncio.timeout(opts.time_limit_s + 300):  # backstop: migrations, settling and shutdown too
        started = time.perf_counter()
        bundles = await asyncio.to_thread(plan.bundles)
        print(f"planned {len(bundles)} bundles in {time.perf_counter() - started:.1f} s", flush=True)
        for kind in opts.databases:
            if time.monotonic() >= deadline:
                print(f"\n== {kind}: skipped, time limit reached ==", flush=True)
                any_failed = True
                continue
            report = await bench_database(kind, opts, plan, bundles, deadline)
            print(format_report(report))
            print(f"-> {write_report(report, opts.results_dir, 'pregnancy')}", flush=True)
            any_failed |= failed(report, opts)
    return 1 if any_failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    return run_main(lambda: run(opts))


if __name__ == "__main__":
    sys.exit(main())
