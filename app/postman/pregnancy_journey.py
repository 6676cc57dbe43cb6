"""The pregnancy card journey (helsekort for gravide): the demo GP registers Kari's pregnancy in one
transaction (EpisodeOfCare, its Condition and CareTeam, her last menstrual period eight weeks ago); the
pack derives the due date and her CarePlan of the basic programme; `$next` says what is due; a
consultation is recorded and then counts as held; the card as a document and as HTML; and a writer outside
the pilot area (`make run`'s pilot-demo.json lists the demo GP office and hospital) is refused.

Dates are relative to the day of the run, so the card is always of a pregnancy in progress. Every run
registers a new pregnancy, and the card is asked for by `episode`, so runs against the same database do
not disturb each other."""

from __future__ import annotations

from typing import Any

import orjson

from app.postman.builders import check, created_id, js, request, transaction_of, transaction_request, var
from app.postman.journeys import DEMO_GP_ROLE, DEMO_HOSPITAL, DEMO_PATIENT
from app.resources.pregnancy_card.card import CARD_TITLE, CARD_TYPE, SECTIONS
from app.resources.pregnancy_card.codes import (
    EPISODE_EXTENSION,
    EPISODE_TYPE_CARD,
    EPISODE_TYPE_SNOMED,
    FOLLOW_UP_EXTENSION,
    LOINC,
    PREGNANCY_CONDITION,
    PROGRAMME_URL,
    UCUM,
    clinical,
)
from app.resources.pregnancy_card.programme import programme

DEMO_GP_OFFICE = "legekontor-fjordby"  # app/demo.py; its orgnr is in pilot-demo.json
_PATIENT = f"Patient/{DEMO_PATIENT}"
_EPISODE = "EpisodeOfCare/{{episodeId}}"
_URN = "urn:uuid:5e0c7d1a-9b2f-4c6e-8a41-6f3d2b1c0e"  # + two digits: the transaction's fullUrls
_FIRST, _EARLY_ULTRASOUND = programme()[0].id, programme()[1].id  # uke-6-12, tidlig-ultralyd

# Today (UTC, as the run sees it), a last menstrual period eight weeks (8+0) before it, and the due date
# Naegele gives with no cycle length recorded: LMP + 280 days.
_DATES = """
const day = 86400000;
const today = new Date(new Date().toISOString().slice(0, 10) + "T00:00:00Z");
const iso = (d) => d.toISOString().slice(0, 10);
pm.collectionVariables.set("today", iso(today));
pm.collectionVariables.set("lmp", iso(new Date(today.getTime() - 56 * day)));
pm.collectionVariables.set("dueDate", iso(new Date(today.getTime() + 224 * day)));
"""
# Over a $next answer in `body`: the activity ids of each kind (due, overdue, upcoming).
_NEXT = """
const ofKind = (kind) => body.parameter.filter(p => p.name === kind)
    .map(p => p.part.find(x => x.name === "activity").valueString);
"""


def _of_episode(episode: str) -> list[dict[str, Any]]:
    return [{"url": EPISODE_EXTENSION, "valueReference": {"reference": episode}}]


def _registration() -> dict[str, Any]:
    episode, condition, team = f"{_URN}01", f"{_URN}02", f"{_URN}03"
    resources: list[tuple[str, dict[str, Any]]] = [
        (
            episode,
            {
                "resourceType": "EpisodeOfCare",
                "extension": [{"url": FOLLOW_UP_EXTENSION, "valueCode": "begge"}],
                "status": "active",
                "type": [{"coding": [EPISODE_TYPE_SNOMED, EPISODE_TYPE_CARD]}],
                "diagnosis": [{"condition": {"reference": condition}}],
                "patient": {"reference": _PATIENT},
                "managingOrganization": {"reference": f"Organization/{DEMO_GP_OFFICE}"},
                "period": {"start": "{{today}}"},
                "team": [{"reference": team}],
            },
        ),
        (
            condition,
            {
                "resourceType": "Condition",
                "extension": _of_episode(episode),
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {"coding": [PREGNANCY_CONDITION]},
                "subject": {"reference": _PATIENT},
                "onsetDateTime": "{{lmp}}",
            },
        ),
        (
            team,
            {
                "resourceType": "CareTeam",
                "extension": _of_episode(episode),
                "status": "active",
                "name": "Svangerskapsomsorg",
                "subject": {"reference": _PATIENT},
                "participant": [
                    {
                        "role": [{"text": "Fastlege"}],
                        "member": {"reference": f"PractitionerRole/{DEMO_GP_ROLE}"},
                    },
                    {
                        "role": [{"text": "Fødeavdeling"}],
                        "member": {"reference": f"Organization/{DEMO_HOSPITAL}"},
                    },
                ],
            },
        ),
        (f"{_URN}04", _observation("lmp", episode, {"valueDateTime": "{{lmp}}"})),
    ]
    return transaction_of(resources)


def _observation(
    key: str, episode: str, value: dict[str, Any], encounter: str | None = None
) -> dict[str, Any]:
    """An Observation of the card (codes.CODES key), recorded today for the pregnancy `episode`."""
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "extension": _of_episode(episode),
        "status": "final",
        "code": clinical(key).concept(),
        "subject": {"reference": _PATIENT},
        "effectiveDateTime": "{{today}}",
        **value,
    }
    if encounter is not None:
        observation["encounter"] = {"reference": encounter}
    return observation


_WEIGHT = {"valueQuantity": {"value": 64.5, "unit": "kg", "system": UCUM, "code": "kg"}}


def _consultation() -> dict[str, Any]:
    encounter = f"{_URN}11"
    resources: list[tuple[str, dict[str, Any]]] = [
        (
            encounter,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": {"reference": _PATIENT},
                "episodeOfCare": [{"reference": _EPISODE}],
                "serviceProvider": {"reference": f"Organization/{DEMO_GP_OFFICE}"},
                "period": {"start": "{{today}}T10:00:00+01:00", "end": "{{today}}T10:30:00+01:00"},
            },
        ),
        (f"{_URN}12", _observation("weight", _EPISODE, _WEIGHT, encounter)),
    ]
    return transaction_of(resources)


def _derived_search() -> str:
    codes = ",".join(f"{LOINC}|{clinical(key).code}" for key in ("edd_lmp", "edd"))
    return f"/Observation?episode-of-care={_EPISODE}&code={codes}"


def pregnancy_journey() -> list[dict[str, Any]]:
    card_sections = "body.entry[0].resource.section.map(s => s.code.coding[0].code)"
    return [
        transaction_request(
            "The GP registers the pregnancy in one transaction",
            _registration(),
            "episode, condition, care team and LMP created",
            save={"episodeId": created_id(0), "lmpId": created_id(3)},
            token="gpToken",
            prerequest=js(_DATES),
        ),
        request(
            "The pack derived the due date from the LMP",
            "GET",
            _derived_search(),
            [
                *check(200, "Bundle", ("two derived due dates", "body.entry.length", "2")),
                "const obs = body.entry.map(e => e.resource);",
                f'pm.test("LMP + 280 days", () => pm.expect(obs.map(o => o.valueDateTime)).to.eql([{var("dueDate")}, {var("dueDate")}]));',
                f'pm.test("derived from the LMP", () => obs.forEach(o => pm.expect(o.derivedFrom.map(r => r.reference)).to.include("Observation/" + {var("lmpId")})));',
                f'pm.test("of this pregnancy", () => obs.forEach(o => pm.expect(o.extension[0].valueReference.reference).to.eql("EpisodeOfCare/" + {var("episodeId")})));',
            ],
            token="gpToken",
        ),
        request(
            "The pack made her CarePlan of the basic programme",
            "GET",
            f"/CarePlan?episode-of-care={_EPISODE}",
            check(
                200,
                "Bundle",
                ("one plan", "body.entry.length", "1"),
                (
                    "the basic programme",
                    "body.entry[0].resource.instantiatesCanonical",
                    f'["{PROGRAMME_URL}"]',
                ),
                (
                    "a consultation each",
                    "body.entry[0].resource.activity.map(a => a.detail.code.coding[0].code)",
                    orjson.dumps([c.id for c in programme()]).decode(),
                ),
                save={"carePlanId": "body.entry[0].resource.id"},
            ),
            token="gpToken",
        ),
        request(
            "What is next: the first consultation is due",
            "GET",
            "/CarePlan/{{carePlanId}}/$next?date={{today}}",
            [
                *check(
                    200,
                    "Parameters",
                    (
                        "the due date",
                        'body.parameter.find(p => p.name === "dueDate").valueDate',
                        var("dueDate"),
                    ),
                ),
                *js(_NEXT),
                f'pm.test("{_FIRST} due", () => pm.expect(ofKind("due")).to.eql(["{_FIRST}"]));',
                f'pm.test("the early ultrasound upcoming", () => pm.expect(ofKind("upcoming")).to.eql(["{_EARLY_ULTRASOUND}"]));',
            ],
            token="gpToken",
        ),
        transaction_request(
            "A consultation: the encounter and her weight",
            _consultation(),
            "both created",
            save={"weightId": created_id(1)},
            token="gpToken",
        ),
        request(
            "The consultation counts as held",
            "GET",
            "/CarePlan/{{carePlanId}}/$next?date={{today}}",
            [
                *check(200, "Parameters"),
                *js(_NEXT),
                'pm.test("nothing due", () => pm.expect(ofKind("due")).to.eql([]));',
                'pm.test("nothing overdue", () => pm.expect(ofKind("overdue")).to.eql([]));',
                f'pm.test("the early ultrasound upcoming", () => pm.expect(ofKind("upcoming")).to.eql(["{_EARLY_ULTRASOUND}"]));',
            ],
            token="gpToken",
        ),
        request(
            "The pregnancy card as a document",
            "GET",
            f"/Patient/{DEMO_PATIENT}/$pregnancy-card?episode={{{{episodeId}}}}",
            [
                *check(
                    200,
                    "Bundle",
                    ("a document", "body.type", '"document"'),
                    (
                        "an antepartum summary",
                        "body.entry[0].resource.type.coding[0].code",
                        f'"{CARD_TYPE["code"]}"',
                    ),
                    (
                        "the paper card's sections",
                        card_sections,
                        orjson.dumps([s.code for s in SECTIONS]).decode(),
                    ),
                    (
                        "of this pregnancy",
                        "body.entry[0].resource.event[0].detail[0].reference",
                        '"EpisodeOfCare/" + ' + var("episodeId"),
                    ),
                ),
                "const sections = body.entry[0].resource.section;",
                "const refs = (code) => (sections.find(s => s.code.coding[0].code === code).entry || []).map(r => r.reference);",
                'pm.test("the weight under the consultations", () => pm.expect(refs("konsultasjon")).to.include("Observation/" + '
                + var("weightId")
                + "));",
                'pm.test("the plan", () => pm.expect(refs("plan")).to.eql(["CarePlan/" + '
                + var("carePlanId")
                + "]));",
                'pm.test("the due date in the dating", () => pm.expect(sections.find(s => s.code.coding[0].code === "datering").text.div).to.include("Termin: " + '
                + var("dueDate")
                + "));",
            ],
            token="gpToken",
        ),
        request(
            "The same card as a printable page",
            "GET",
            f"/Patient/{DEMO_PATIENT}/$pregnancy-card?episode={{{{episodeId}}}}&_format=html",
            [
                'pm.test("status 200", () => pm.response.to.have.status(200));',
                'pm.test("HTML", () => pm.expect(pm.response.headers.get("Content-Type")).to.include("text/html"));',
                f'pm.test("the card", () => pm.expect(pm.response.text()).to.include("<h1>{CARD_TITLE}</h1>"));',
                f'pm.test("the due date", () => pm.expect(pm.response.text()).to.include({var("dueDate")}));',
            ],
            token="gpToken",
        ),
        request(
            "A writer outside the pilot area is refused",
            "POST",
            "/Observation",
            check(
                403,
                "OperationOutcome",
                ("forbidden", "body.issue[0].code", '"forbidden"'),
                (
                    "by the pilot switch",
                    'body.issue[0].diagnostics.startsWith("Helsekort for gravide er ikke tatt i bruk")',
                    "true",
                ),
            ),
            body=_observation("weight", _EPISODE, _WEIGHT),
        ),
    ]
