"""Derive access facts from a resource as it is written (pure functions; the hook stores the rows).

Parties are strings the policy compares in SQL: "pid:<fødselsnummer/D-nummer>", "hpr:<HPR-nummer>",
"org:<organisasjonsnummer>", or "ref:<Type>/<id>" for a local resource that stands for one of those.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from app.fhir.registry import patient_compartment
from app.resources.no_basis.identifiers import DNR_SYSTEM, FNR_SYSTEM, HPR_SYSTEM, ORGNR_SYSTEM

CONSENT_CATEGORY_SYSTEM = "http://helsebro.no/fhir/CodeSystem/consent-category"
RESERVATION = "kjernejournal-reservasjon"  # the patient reserves against the core journal
BLOCK = "sperring"  # the patient blocks named resources from named organisations
PROXY = "fullmakt"  # the patient authorises another person to act for them

_PARTY_SYSTEMS = {FNR_SYSTEM: "pid", DNR_SYSTEM: "pid", HPR_SYSTEM: "hpr", ORGNR_SYSTEM: "org"}
# v3 RoleCode parent codes: parents see their children's data until the child turns 12.
PARENT_CODES = frozenset({"PRN", "MTH", "FTH", "NPRN", "NMTH", "NFTH", "ADOPTP", "ADOPTF", "ADOPTM"})
_ACTIVE_ENCOUNTER = frozenset({"planned", "arrived", "triaged", "in-progress", "onleave"})
_ACTIVE_EPISODE = frozenset({"planned", "waitlist", "active", "onhold"})
_ACTIVE_CARE_TEAM = frozenset({"proposed", "active", "suspended"})
# A referral Task gives the receiving unit access from the moment it is to be assessed, not only after
# acceptance: assessing a referral is care.
_ACTIVE_TASK = frozenset({"requested", "received", "accepted", "ready", "in-progress", "on-hold"})


# Patient data the R4 Patient compartment leaves out: a Task is about its `for` patient (a referral Task
# carries the receiver's notes), so it is held to the patient's access rules and audited as hers.
PATIENT_DATA_BEYOND_COMPARTMENT: dict[str, tuple[str, ...]] = {"Task": ("patient",)}
# Patient data when linked to a patient by a "subject" or "context" fact (no search parameter says whose
# they are): a Binary by its securityContext, a stored Bundle by the patients its entries are or name, a
# Device by Device.patient. Unlinked ones (a logo, a terminology bundle, a device in stock) are not.
LINKED_TYPES = frozenset({"Binary", "Bundle", "Device"})


@dataclass
class Fact:
    # care, proxy, parent, block, reservation; subject (the resource is this patient's data) and context
    # (the resource is the data of `target`'s patients)
    kind: str
    patient_id: str | None
    party: str | None = None
    target: tuple[str, str] | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass
class Derived:
    identities: list[str] = field(default_factory=list)  # parties this resource itself stands for
    facts: list[Fact] = field(default_factory=list)


def local_ref(reference: Any, base_url: str = "") -> tuple[str, str] | None:
    """(type, id) of a relative reference, or an absolute one on this server's base URL."""
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return None
    text: str = reference["reference"]
    if base_url and text.startswith(base_url + "/"):
        text = text[len(base_url) + 1 :]
    parts = text.split("/")
    if len(parts) in (2, 4) and parts[0][:1].isupper() and "://" not in text and ":" not in parts[0]:
        return parts[0], parts[1]
    return None


def identifier_party(identifier: Any) -> str | None:
    if not isinstance(identifier, dict):
        return None
    kind = _PARTY_SYSTEMS.get(identifier.get("system", ""))
    value = identifier.get("value")
    return f"{kind}:{value}" if kind and isinstance(value, str) and value else None


def reference_parties(reference: Any, base_url: str = "") -> list[str]:
    """The parties one Reference names: the local resource, and/or its identifier."""
    parties = []
    target = local_ref(reference, base_url)
    if target is not None:
        parties.append(f"ref:{target[0]}/{target[1]}")
    if isinstance(reference, dict):
        party = identifier_party(reference.get("identifier"))
        if party:
            parties.append(party)
    return parties


def patient_of(reference: Any, base_url: str = "") -> str | None:
    target = local_ref(reference, base_url)
    return target[1] if target is not None and target[0] == "Patient" else None


def parse_instant(text: Any) -> datetime | None:
    """A FHIR date/dateTime as a UTC datetime (dates and partial dates at their start); None if absent."""
    if not isinstance(text, str) or not text:
        return None
    try:
        if len(text) <= 10:
            parts = [int(p) for p in text.split("-")] + [1, 1]
            return datetime(parts[0], parts[1], parts[2], tzinfo=UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _codes(concepts: Any) -> set[tuple[str, str]]:
    return {
        (c.get("system", ""), c.get("code", ""))
        for concept in _list(concepts)
        if isinstance(concept, dict)
        for c in _list(concept.get("coding"))
        if isinstance(c, dict)
    }


def derive(
    res_type: str,
    res_id: str,
    resource: dict[str, Any],
    now: datetime,
    days_after_end: int,
    base_url: str = "",
) -> Derived:
    out = Derived()
    deriver = _DERIVERS.get(res_type)
    if deriver is not None:
        deriver(out, res_id, resource, now, timedelta(days=days_after_end), base_url)
    return out


def _identities(out: Derived, resource: dict[str, Any]) -> None:
    for identifier in _list(resource.get("identifier")):
        party = identifier_party(identifier)
        if party and party not in out.identities:
            out.identities.append(party)


def _care(
    out: Derived, patient_ref: Any, parties: Iterator[str], until: datetime | None, base_url: str
) -> None:
    patient = patient_of(patient_ref, base_url)
    if patient is None:
        return
    for party in dict.fromkeys(parties):
        out.facts.append(Fact("care", patient, party, valid_until=until))


def _until(
    status: str, active: frozenset[str], period: Any, now: datetime, grace: timedelta
) -> tuple[bool, datetime | None]:
    """(gives a relation, until when): active statuses without end; finished ones for a grace period."""
    end = parse_instant(period.get("end")) if isinstance(period, dict) else None
    if status in active:
        return True, None
    if status == "finished" or status == "completed":
        return True, (end or now) + grace
    return False, None


def _patient(
    out: Derived, res_id: str, r: dict[str, Any], now: datetime, grace: timedelta, base: str
) -> None:
    _identities(out, r)
    # The regular GP (fastlege) and GP office recorded on the patient have a standing care relation.
    parties = (p for ref in _list(r.get("generalPractitioner")) for p in reference_parties(ref, base))
    _care(out, {"reference": f"Patient/{res_id}"}, parties, None, base)


def _person(out: Derived, res_id: str, r: dict[str, Any], now: datetime, grace: timedelta, base: str) -> None:
    _identities(out, r)


def _related_person(
    out: Derived, res_id: str, r: dict[str, Any], now: datetime, grace: timedelta, base: str
) -> None:
    _identities(out, r)
    if r.get("active") is False:
        return
    codes = {code for _, code in _codes(r.get("relationship"))}
    patient = patient_of(r.get("patient"), base)
    if patient is None or not codes & PARENT_CODES:
        return
    period = _dict(r.get("period"))
    for party in [*out.identities, f"ref:RelatedPerson/{res_id}"]:
        out.facts.append(
            Fact(
                "parent",
                patient,
                party,
                None,
                parse_instant(period.get("start")),
                parse_instant(period.get("end")),
            )
        )


def _role(out: Derived, res_id: str, r: dict[str, Any], now: datetime, grace: timedelta, base: str) -> None:
    _identities(out, r)
    if r.get("active") is False:
        return
    for key in ("practitioner", "organization"):
        for party in reference_parties(r.get(key), base):
            if party not in out.identities:
                out.identities.append(party)


def _encounter(
    out: Derived, res_id: str, r: dict[str, Any], now: datetime, grace: timedelta, base: str
) -> None:
    gives, until = _until(r.get("status", ""), _ACTIVE_ENCOUNTER, r.get("period"), now, grace)
    if not gives:
        return
    refs = [
        r.get("serviceProvider"),
        *(p.get("individual") for p in _list(r.get("participant")) if isinstance(p, dict)),
    ]
    _care(out, r.get("subject"), (p for ref in refs for p in reference_parties(ref, base)), until, base)


def _episode(
    out: Derived, res_id: str, r: dict[str, Any], now: datetime, grace: timedelta, base: str
) -> None:
    gives, until = _until(r.get("status", ""), _ACTIVE_EPISODE, r.get("period"), now, grace)
    if not gives:
        return
    refs = [r.get("managingOrganization"), r.get("careManager")]
    _care(out, r.get("patient"), (p for ref in refs for p in reference_parties(ref, base)), until, base)


def _care_team(
    out: Derived, res_id: str, r: dict[str, Any], now: datetime, grace: timedelta, base: str
) -> None:
    status = r.get("status", "")
    gives, until = _until(status, _ACTIVE_CARE_TEAM, r.get("period"), now, grace)
    if not gives or status == "suspended":
        return
    refs = list(_list(r.get("managingOrganization")))
    for participant in _list(r.get("participant")):
        if isinstance(participant, dict):
            refs += [participant.get("member"), participant.get("onBehalfOf")]
    _care(out, r.get("subject"), (p for ref in refs for p in reference_parties(ref, base)), until, base)


def _task(out: Derived, res_id: str, r: dict[str, Any], now: datetime, grace: timedelta, base: str) -> None:
    if r.get("status") not in _ACTIVE_TASK:
        return
    refs = [r.get("owner"), r.get("requester")]
    _care(out, r.get("for"), (p for ref in refs for p in reference_parties(ref, base)), None, base)


def _consent(
    out: Derived, res_id: str, r: dict[str, Any], now: datetime, grace: timedelta, base: str
) -> None:
    patient = patient_of(r.get("patient"), base)
    if r.get("status") != "active" or patient is None:
        return
    categories = {code for system, code in _codes(r.get("category")) if system == CONSENT_CATEGORY_SYSTEM}
    provision = _dict(r.get("provision"))
    period = _dict(provision.get("period"))
    start, end = parse_instant(period.get("start")), parse_instant(period.get("end"))
    actors = [
        p
        for actor in _list(provision.get("actor"))
        if isinstance(actor, dict)
        for p in reference_parties(actor.get("reference"), base)
    ]
    if RESERVATION in categories:
        out.facts.append(Fact("reservation", patient, None, None, start, end))
    if PROXY in categories:
        out.facts.extend(Fact("proxy", patient, party, None, start, end) for party in actors)
    if BLOCK in categories:
        targets = [
            t
            for data in _list(provision.get("data"))
            if isinstance(data, dict)
            for t in [local_ref(data.get("reference"), base)]
            if t is not None
        ]
        out.facts.extend(Fact("block", patient, party, t, start, end) for party in actors for t in targets)


@cache
def _context_types() -> frozenset[str]:
    return frozenset(patient_compartment()) | frozenset(PATIENT_DATA_BEYOND_COMPARTMENT)


def _subject(out: Derived, patient: str | None) -> None:
    """The resource is `patient`'s data; None: of a patient the server cannot tell, so it links the
    resource to no one and only system clients see it (fails closed)."""
    if all(f.kind != "subject" or f.patient_id != patient for f in out.facts):
        out.facts.append(Fact("subject", patient))


def _binary(out: Derived, res_id: str, r: dict[str, Any], now: datetime, grace: timedelta, base: str) -> None:
    """A Binary is the data of the patient its securityContext is, or of the patients of the patient data
    it names (resolved when read, so it follows that resource)."""
    context = r.get("securityContext")
    target = local_ref(context, base)
    if target is None:
        if isinstance(context, dict):
            _subject(out, None)  # a context on another server, or by identifier: whose, we cannot tell
        return
    if target[0] == "Patient":
        _subject(out, target[1])
    elif target[0] in _context_types():
        out.facts.append(Fact("context", None, target=target))
    elif target[0] in LINKED_TYPES:
        _subject(out, None)  # a context that is itself linked: not resolved two levels deep


def _bundle(out: Derived, res_id: str, r: dict[str, Any], now: datetime, grace: timedelta, base: str) -> None:
    """A stored Bundle (a document) is the data of the patients its entries are (by fullUrl) or name as
    subject, patient or for (a Composition's subject among them). A relative reference in an entry from
    another server (absolute fullUrl elsewhere) is that server's patient, not ours."""
    for entry in _list(r.get("entry")):
        full_url = _dict(entry).get("fullUrl")
        resource = _dict(_dict(entry).get("resource"))
        foreign = (
            isinstance(full_url, str) and "://" in full_url and not (base and full_url.startswith(base + "/"))
        )
        if resource.get("resourceType") == "Patient":
            _subject(out, None if foreign else patient_of({"reference": full_url}, base))
        for key in ("subject", "patient", "for"):
            text = _dict(resource.get(key)).get("reference")
            if isinstance(text, str) and "Patient/" in text:
                local = not foreign or "://" in text
                _subject(out, patient_of(resource.get(key), base) if local else None)


def _device(out: Derived, res_id: str, r: dict[str, Any], now: datetime, grace: timedelta, base: str) -> None:
    if isinstance(r.get("patient"), dict):
        _subject(out, patient_of(r.get("patient"), base))


_DERIVERS = {
    "Patient": _patient,
    "Practitioner": _person,
    "Organization": _person,
    "RelatedPerson": _related_person,
    "PractitionerRole": _role,
    "Encounter": _encounter,
    "EpisodeOfCare": _episode,
    "CareTeam": _care_team,
    "Task": _task,
    "Consent": _consent,
    "Binary": _binary,
    "Bundle": _bundle,
    "Device": _device,
}


# What the policy trusts about the resources that stand for personnel and organisations: who they are
# (every identifier, orgnr, HPR, HER-id, ...), how they hang together (hierarchy, a role's practitioner and
# organisation) and whether they count (active). Changing these needs the identity administration scope.
IDENTITY_TYPES = frozenset({"Organization", "Practitioner", "PractitionerRole"})
_IDENTITY_LINKS = {
    "Organization": ("partOf",),
    "Practitioner": (),
    "PractitionerRole": ("practitioner", "organization"),
}


def _reference_key(reference: Any) -> str | None:
    if not isinstance(reference, dict):
        return None
    identifier = _dict(reference.get("identifier"))
    text = reference.get("reference") or f"{identifier.get('system', '')}|{identifier.get('value', '')}"
    return text if isinstance(text, str) else None


def trusted_identity(res_type: str, resource: dict[str, Any] | None) -> dict[str, Any]:
    """The trusted part of an Organization, Practitioner or PractitionerRole ({} when it states none)."""
    if resource is None:
        return {}
    identifiers = sorted(
        {
            f"{i.get('system', '')}|{i.get('value', '')}"
            for i in _list(resource.get("identifier"))
            if isinstance(i, dict)
        }
    )
    links = {key: _reference_key(resource.get(key)) for key in _IDENTITY_LINKS.get(res_type, ())}
    links = {key: value for key, value in links.items() if value}
    if not identifiers and not links:
        return {}
    return {"identifier": identifiers, **links, "active": resource.get("active") is not False}


def proxy_consent(resource: dict[str, Any]) -> bool:
    """A Consent of the fullmakt category, whatever its status (a draft can be activated later)."""
    return (CONSENT_CATEGORY_SYSTEM, PROXY) in _codes(resource.get("category"))


def states_parenthood(resource: dict[str, Any]) -> bool:
    """A RelatedPerson whose relationship is a parent's (what the facts turn into parental access)."""
    return bool({code for _, code in _codes(resource.get("relationship"))} & PARENT_CODES)


def twelfth_birthday_cutoff(today: date) -> date:
    """Children born after this date are under 12 today (29 February counts from 28 February)."""
    try:
        return today.replace(year=today.year - 12)
    except ValueError:
        return today.replace(year=today.year - 12, day=28)


DERIVED_TYPES = frozenset(_DERIVERS)
