"""Rules on writes to the sources of access: the identities the policy trusts, the grants a citizen may
give, and the care relations personnel start themselves. Each rule runs in the write's unit of work; a
refusal is audited (outside it) and rolls the write back.

- Trusted identities (identifiers, partOf, a role's practitioner/organization, active of Organization,
  Practitioner, PractitionerRole) change only with the identity administration scope; every change is
  audited with its before and after values and flagged `identity-change` for follow-up, except a create
  at an id nothing names yet (it takes over nobody's patients; message intake makes many).
- A citizen gives a proxy (fullmakt) only over their own record and never states parenthood.
- A citizen never changes what a Patient tells the policy: its national identity numbers (which map a
  citizen's token to their record) and its regular GP (a standing care relation). They come from the
  population register and the GP register, through personnel or a system; a parent or proxy holder
  editing a record could otherwise make it their own or give any GP access to it.
- A care relation a personnel member's own write starts is flagged `self-declared-care-relation`; the
  deletion of a resource that gave one is flagged `care-relation-deleted`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import insert, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.hooks import WriteEvent
from app.fhir.outcome import Category, FhirError
from app.security.audit import IDENTITY_CHANGE
from app.security.audit_sink import AuditSink
from app.security.facts import derive, patient_of, proxy_consent, states_parenthood, trusted_identity
from app.security.policy import Decision, Policy, principal_parties
from app.security.principal import Principal
from app.security.scopes import IDENTITY_ADMIN_SCOPE, identity_admin
from app.security.tables import access_fact, party_identity

# Resources whose facts can give a care relation (see facts.py): personnel who start one are flagged.
CARE_SOURCES = frozenset({"Patient", "Encounter", "EpisodeOfCare", "CareTeam", "Task"})
# What a citizen may write only over their own record.
CITIZEN_GRANTS = frozenset({"Consent", "RelatedPerson"})


def denied(message: str) -> FhirError:
    return FhirError(Category.FORBIDDEN, message, "forbidden")


class IdentityChange(NamedTuple):
    """A write's change to an identity the policy trusts: its trusted part before and after."""

    before: dict[str, Any]
    after: dict[str, Any]
    follow_up: bool  # flagged for follow-up (not a new identity at an id nothing names)


@dataclass
class RequestState:
    """The security layer's per-request state (RequestContext.state)."""

    policy: Policy | None = None
    # (type, id) -> the patients of the version an update replaces, once access to it was checked
    checked_before_write: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    emergency: bool = False  # the search's audit row is flagged for follow-up
    # patient id -> "yes" or "emergency": the caller's access to that patient, decided once per request for
    # the searches after the first (an operation such as $summary searches one patient many times)
    patient_access: dict[str, str] = field(default_factory=dict)
    # (type, id) -> a write's change to an identity the policy trusts
    identity_changes: dict[tuple[str, str], IdentityChange] = field(default_factory=dict)
    # (type, id) -> patients a personnel write names in a care relation but who were not in their care
    care_before: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    # (type, id) of deleted resources that gave a care relation
    care_deleted: set[tuple[str, str]] = field(default_factory=set)


def _versions(event: WriteEvent) -> list[dict[str, Any]]:
    """The stored version a write replaces (if any) and the new one (none for a delete)."""
    return [v for v in (event.previous_resource, event.resource) if isinstance(v, dict)]


# -- trusted identities --------------------------------------------------------------------------------
async def check_identity_change(sink: AuditSink, event: WriteEvent, principal: Principal) -> None:
    """Identities the policy trusts change only with the identity administration scope. Creating one at an
    id no access fact names yet takes over nobody's patients, so it needs only the write scope; every
    change is audited and flagged after the write (audit_identity_change)."""
    before = trusted_identity(event.res_type, event.previous_resource)
    after = trusted_identity(event.res_type, event.resource)
    if before == after:
        return
    changes = event.ctx.state(RequestState).identity_changes
    key = (event.res_type, event.res_id)
    if event.interaction == "create" and not await _named_in_facts(event):
        changes[key] = IdentityChange(before, after, follow_up=False)  # new: audited only
        return
    changes[key] = IdentityChange(before, after, follow_up=True)
    if principal.kind != "citizen" and identity_admin(principal.scopes):
        return
    await sink.denied(event.ctx, event.interaction, (), "identity change without administration scope")
    raise denied(
        f"Changing the identifiers, hierarchy, role links or active flag of {event.res_type} needs the "
        f"{IDENTITY_ADMIN_SCOPE} scope"
    )


async def _named_in_facts(event: WriteEvent) -> bool:
    """Access facts already name this resource (a reference written before it existed)."""
    party = f"ref:{event.res_type}/{event.res_id}"
    kinds = ("care", "proxy", "parent", "block", "author")
    named = union_all(
        select(access_fact.c.id).where(access_fact.c.kind.in_(kinds), access_fact.c.party == party),
        select(party_identity.c.id).where(party_identity.c.party == party),
    )
    return (await event.conn.execute(named.limit(1))).first() is not None


async def audit_identity_change(sink: AuditSink, event: WriteEvent, principal: Principal) -> None:
    """The write changed a trusted identity: audited in its unit of work with the before and after."""
    change = event.ctx.state(RequestState).identity_changes.pop((event.res_type, event.res_id), None)
    if change is None:
        return
    before, after = (
        orjson.dumps(c, option=orjson.OPT_SORT_KEYS).decode() for c in (change.before, change.after)
    )
    record = sink.record(
        event.ctx,
        event.interaction,
        "0",
        (),
        (event.res_type, event.res_id, event.version),
        flags=(IDENTITY_CHANGE,) if change.follow_up else (),
        details=(("identity-before", before), ("identity-after", after)),
        principal=principal,
    )
    await sink.in_unit(event.conn, record)


# -- citizens' grants ----------------------------------------------------------------------------------
async def check_citizen_grant(
    sink: AuditSink, event: WriteEvent, principal: Principal, base_url: str
) -> None:
    """A citizen gives a proxy (fullmakt) only over their own record, and keeps related persons (whose
    identities a fullmakt can name) only there; parenthood comes from a system or personnel."""
    versions = _versions(event)
    patients = {patient_of(v.get("patient"), base_url) for v in versions}
    named = tuple(sorted(p for p in patients if p))
    if event.res_type == "RelatedPerson" and any(states_parenthood(v) for v in versions):
        await sink.denied(event.ctx, event.interaction, named, "parenthood stated by a citizen")
        raise denied(
            "Parenthood is recorded by the health service or the population register, not by a citizen"
        )
    if event.res_type == "Consent" and not any(proxy_consent(v) for v in versions):
        return
    if None in patients or not await _own_patients(event.conn, principal, set(named)):
        await sink.denied(event.ctx, event.interaction, named, "grant over another's record")
        raise denied(f"A citizen can write this {event.res_type} only in their own record")


async def check_citizen_patient_write(
    sink: AuditSink, event: WriteEvent, principal: Principal, days_after_end: int, base_url: str
) -> None:
    """A citizen's update, patch or delete of a Patient leaves its identities and care relations as they
    were (a create is the citizen's own record or refused by the access check)."""
    if event.interaction == "create":
        return
    if _patient_trust(event, event.previous_resource, days_after_end, base_url) == _patient_trust(
        event, event.resource, days_after_end, base_url
    ):
        return
    patients = (event.res_id,)
    await sink.denied(
        event.ctx, event.interaction, patients, "identity or GP changed by a citizen", principal
    )
    raise denied(
        "A citizen cannot change a Patient's national identity numbers or regular GP (or delete it): they "
        "come from the population register and the GP register"
    )


def _patient_trust(
    event: WriteEvent, resource: dict[str, Any] | None, days_after_end: int, base_url: str
) -> tuple[frozenset[str], frozenset[tuple[str, str | None, str | None]]]:
    """What the policy takes from a version of a Patient: the parties it stands for, and its facts."""
    if resource is None:
        return frozenset(), frozenset()
    derived = derive(event.res_type, event.res_id, resource, datetime.now(UTC), days_after_end, base_url)
    return frozenset(derived.identities), frozenset((f.kind, f.patient_id, f.party) for f in derived.facts)


async def _own_patients(conn: AsyncConnection, principal: Principal, patients: set[str]) -> bool:
    """Every one of `patients` is the citizen (their fødselsnummer or D-nummer is on the Patient)."""
    if not patients or not principal.pid:
        return False
    query = select(party_identity.c.ref_id).where(
        party_identity.c.ref_type == "Patient",
        party_identity.c.ref_id.in_(sorted(patients)),
        party_identity.c.party == f"pid:{principal.pid}",
    )
    return {row[0] for row in (await conn.execute(query)).all()} == patients


# -- care relations people start themselves ------------------------------------------------------------
async def note_care_before(event: WriteEvent, policy: Policy, days_after_end: int, base_url: str) -> None:
    """Before a personnel write that can start a care relation: which patients it names were not in their
    care? (A delete: does it remove a care relation, whoever's it was?)"""
    state = event.ctx.state(RequestState)
    key = (event.res_type, event.res_id)
    if event.resource is None:
        assert event.pk is not None
        query = select(access_fact.c.id).where(
            access_fact.c.source_pk == event.pk, access_fact.c.kind == "care"
        )
        if (await event.conn.execute(query.limit(1))).first() is not None:
            state.care_deleted.add(key)
        return
    derived = derive(
        event.res_type, event.res_id, event.resource, datetime.now(UTC), days_after_end, base_url
    )
    named = {f.patient_id for f in derived.facts if f.kind == "care" and f.patient_id}
    without = {p for p in sorted(named) if await policy.patient_access(event.conn, p) != "yes"}
    if without:
        state.care_before[key] = frozenset(without)


async def started_care(event: WriteEvent, policy: Policy) -> bool:
    """The write gave the caller a care relation with a patient who was not in their care before."""
    without = event.ctx.state(RequestState).care_before.pop((event.res_type, event.res_id), frozenset())
    for patient_id in sorted(without):
        if await policy.patient_access(event.conn, patient_id) == "yes":
            return True
    return False


def same_patients_as_checked(event: WriteEvent, decision: Decision) -> bool:
    """An update the caller was allowed to make (checked on the version it replaces) that keeps the
    resource with the same patients. The new version may itself end the caller's care relation, as
    forwarding or completing a referral Task does; that must not undo the step."""
    checked = event.ctx.state(RequestState).checked_before_write.get((event.res_type, event.res_id))
    return (
        event.interaction == "update"
        and checked is not None
        and not decision.blocked
        and set(decision.patients) <= checked
    )


async def record_author(
    conn: AsyncConnection, pk: int, res_type: str, res_id: str, principal: Principal
) -> None:
    """Core-journal entries remember the organisation that wrote them: a reservation does not hide an
    organisation's own entries from it."""
    parties = [p for p in principal_parties(principal) if not p.startswith("pid:")]
    if parties:
        rows = [
            {"source_pk": pk, "kind": "author", "party": p, "target_type": res_type, "target_id": res_id}
            for p in parties
        ]
        await conn.execute(insert(access_fact), rows)
