"""The security layer's hooks into the engine: access facts on write, scope and policy checks, audit.

Installed by main.py. With authentication off only the access facts are maintained (so that turning it
on later finds them); with it on, every read, search, history and write on patient data is checked and
audited. Every engine call names its principal: a verified caller (Principal) is judged by the policy; the
server acting on its own account names a SystemPrincipal with a reason and is let through; anything else
(no principal, or the unauthenticated principal of AUTH_MODE=off) is refused.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import insert, select, union, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import Settings
from app.fhir.context import UNAUTHENTICATED, RequestContext, SystemPrincipal
from app.fhir.hooks import MatchCheck, OperationEvent, ReadCheck, ReadEvent, SearchEvent, Stage, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.fhir.registry import Registry
from app.fhir.service import FhirService
from app.security import policy_sql
from app.security.audit import (
    CARE_RELATION_DELETED,
    IDENTITY_CHANGE,
    SELF_DECLARED_CARE,
    AuditRecord,
    audit_event,
)
from app.security.audit_writer import AUDIT_WAITS, AuditWriter, batch_store, store_audit_events
from app.security.facts import (
    IDENTITY_TYPES,
    derive,
    patient_of,
    proxy_consent,
    states_parenthood,
    trusted_identity,
)
from app.security.facts_store import store_facts
from app.security.policy import Decision, Policy, PolicyConfig, principal_parties
from app.security.principal import Permission, Principal
from app.security.scopes import IDENTITY_ADMIN_SCOPE, identity_admin
from app.security.tables import access_fact, emergency_access, party_identity
from app.store.repository import Repository
from app.store.tables import idx_reference
from app.store.visibility import RowFilter, Unrestricted

_READ_PERMISSION: dict[str, Permission] = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search": "s",
    "everything": "s",
    "history-type": "s",
}
_WRITE_PERMISSION: dict[str, Permission] = {"create": "c", "update": "u", "delete": "d"}
# Search parameters that name the patient a search is about (for emergency access on searches).
_PATIENT_PARAMS = ("patient", "subject", "subject:Patient", "patient:Patient", "for", "beneficiary")
# Resources whose facts can give a care relation (see facts.py): personnel who start one are flagged.
_CARE_SOURCES = frozenset({"Patient", "Encounter", "EpisodeOfCare", "CareTeam", "Task"})
# What a citizen may write only over their own record.
_CITIZEN_GRANTS = frozenset({"Consent", "RelatedPerson"})


def denied(message: str) -> FhirError:
    return FhirError(Category.FORBIDDEN, message, "forbidden")


def no_access(principal: Principal) -> FhirError:
    """The refusal when the caller has no access to the patient (and did not claim emergency access)."""
    if principal.kind == "citizen":
        return denied("You can only see your own data and that of people you hold a proxy for")
    return denied(
        "No care relation with the patient (tjenstlig behov). For emergency access (akuttilgang), "
        "state the reason in the nhn-emergency-reason header"
    )


def audit_interaction(interaction: str, res_types: tuple[str, ...] = ("",)) -> str:
    """The engine's interaction name as the audit (FHIR restful-interaction) spells it."""
    if interaction == "search":
        return "search-type" if len(res_types) == 1 else "search-system"
    return "$everything" if interaction == "everything" else interaction


@dataclass
class _RequestState:
    """The security layer's per-request state (RequestContext.state)."""

    policy: Policy | None = None
    # (type, id) -> the patients of the version an update replaces, once access to it was checked
    checked_before_write: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    emergency: bool = False  # the search's audit row is flagged for follow-up
    # (type, id) -> (trusted part before, after) of a write that changes an identity the policy trusts
    identity_changes: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = field(
        default_factory=dict
    )
    # (type, id) -> patients a personnel write names in a care relation but who were not in their care
    care_before: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    # (type, id) of deleted resources that gave a care relation
    care_deleted: set[tuple[str, str]] = field(default_factory=set)


def _versions(event: WriteEvent) -> list[dict[str, Any]]:
    """The stored version a write replaces (if any) and the new one (none for a delete)."""
    previous = orjson.loads(event.previous) if event.previous else None
    return [v for v in (previous, event.resource) if isinstance(v, dict)]


_MATCH_PERMISSION: dict[str, Permission] = {"create": "c", "update": "u", "patch": "u", "delete": "d"}


@dataclass
class SecurityLayer:
    svc: FhirService
    settings: Settings
    config: PolicyConfig
    enabled: bool
    writer: AuditWriter | None = None
    _later: set[asyncio.Task[None]] = field(default_factory=set)

    def install(self) -> None:
        hooks = self.svc.hooks
        hooks.after_write.add(Stage.FACTS, self.maintain_facts)
        hooks.on_reindex.add(Stage.FACTS, self.maintain_facts)
        if not self.enabled:
            return
        self.writer = AuditWriter(batch_store(self.svc))
        hooks.before_write.add(Stage.ACCESS, self.before_write)
        hooks.after_write.add(Stage.ACCESS, self.after_write)
        hooks.before_read.add(Stage.ACCESS, self.before_read)
        hooks.after_read.add(Stage.ACCESS, self.after_read)
        hooks.after_search.add(Stage.ACCESS, self.after_search)
        hooks.before_operation.add(Stage.ACCESS, self.before_operation)
        hooks.visibility = self.visibility
        hooks.match_guard = self.may_know

    async def close(self) -> None:
        if self._later:
            await asyncio.gather(*self._later, return_exceptions=True)
        if self.writer is not None:
            await self.writer.close()

    # -- per request ----------------------------------------------------------------------------------
    @staticmethod
    def caller(ctx: RequestContext) -> Principal | None:
        """The verified caller to judge, or None for the server acting on its own account; anything
        else is refused: nothing is trusted because a principal is missing."""
        principal = ctx.principal
        if isinstance(principal, Principal):
            return principal
        if isinstance(principal, SystemPrincipal) and principal is not UNAUTHENTICATED:
            return None
        raise FhirError(Category.UNAUTHORIZED, "Authentication required", "login")

    def policy(self, ctx: RequestContext) -> Policy | None:
        principal = self.caller(ctx)
        if principal is None:
            return None
        state = ctx.state(_RequestState)
        if state.policy is None:
            state.policy = Policy(self.config, principal, datetime.now(UTC))
        return state.policy

    def visibility(self, ctx: RequestContext) -> RowFilter:
        policy = self.policy(ctx)
        if policy is not None:
            return policy
        principal = ctx.principal
        assert isinstance(principal, SystemPrincipal)
        return Unrestricted(f"the server acting as {principal.name}: {principal.reason}")

    async def may_know(self, check: MatchCheck) -> bool:
        """May the caller be told about (or act on) a resource its conditional criteria matched? A match
        it may not read is never returned; the attempt is audited with the resource's patients."""
        principal = self.caller(check.ctx)
        if principal is None:
            return True
        permission = _MATCH_PERMISSION.get(check.interaction)
        if permission is not None and not principal.scopes.allows(check.res_type, permission):
            await self._audit_denied(check.ctx, check.interaction, (), "scope does not allow this write")
            raise denied(f"The token's scopes do not allow {check.interaction} of {check.res_type}")
        patients: tuple[str, ...] = ()
        readable = principal.scopes.allows(check.res_type, "r")
        if readable and check.res_type in self.config.patient_types:
            policy = self.policy(check.ctx)
            assert policy is not None
            decision = await policy.decide(check.conn, check.res_type, check.res_id, check.pk)
            patients = decision.patients
            readable = self._may_read(principal, decision)
        if not readable:
            why = f"conditional {check.interaction} matched a resource the caller may not read"
            # A conditional reference tells the caller an id, as a read of the match would have.
            audited_as = "read" if check.interaction == "reference" else check.interaction
            await self._audit_denied(check.ctx, audited_as, patients, why, check.conn)
        elif check.interaction == "create" and check.res_type in self.config.patient_types:
            # The match is returned to the caller: audited like a read of it.
            entity = (check.res_type, check.res_id, check.version)
            await self._audit(
                self._record(check.ctx, "read", "0", patients, entity), check.conn, ctx=check.ctx
            )
        return readable

    @staticmethod
    def _may_read(principal: Principal, decision: Decision) -> bool:
        if decision.blocked or decision.reserved:
            return False
        return decision.allowed or decision.emergency or principal.kind == "system"

    # -- access facts (always) ----------------------------------------------------------------------
    async def maintain_facts(self, event: WriteEvent) -> None:
        base_url = event.ctx.base_url if self.svc.base_url else ""
        await store_facts(event, self.settings.care_relation_days_after_end, base_url)

    async def before_operation(self, event: OperationEvent) -> None:
        """Server maintenance is for system clients with write access to everything it touches."""
        principal = self.caller(event.ctx)
        if principal is None:
            return
        if principal.kind != "system" or not principal.scopes.allows(event.res_type or "*", "u"):
            raise denied(f"{event.name} needs a system client with update scope on the resources it touches")

    # -- writes ---------------------------------------------------------------------------------------
    async def before_write(self, event: WriteEvent) -> None:
        if event.res_type == "AuditEvent":
            raise denied("AuditEvent records are written by the server only; they cannot be changed")
        principal = self.caller(event.ctx)
        if principal is None:
            return
        if event.res_type == "Subscription" and principal.kind != "system":
            # A subscription is notified of every matching write, past the access policy: only an
            # organisation's integration (a system client) may register one.
            raise denied("Subscriptions can only be registered by system clients")
        permission = _WRITE_PERMISSION.get(event.interaction, "u")
        if not principal.scopes.allows(event.res_type, permission):
            await self._audit_denied(event.ctx, event.interaction, (), "scope does not allow this write")
            raise denied(f"The token's scopes do not allow {event.interaction} of {event.res_type}")
        if event.res_type in IDENTITY_TYPES:
            await self._check_identity_change(event, principal)
        if principal.kind == "citizen" and event.res_type in _CITIZEN_GRANTS:
            await self._check_citizen_grant(event, principal)
        if principal.kind == "personnel" and event.res_type in _CARE_SOURCES:
            await self._note_care_before(event)
        if event.interaction == "create" or event.res_type not in self.config.patient_types:
            return
        # Updating or deleting patient data: the caller must have access to it as it stands now.
        assert event.pk is not None
        policy = self.policy(event.ctx)
        assert policy is not None
        decision = await policy.decide(event.conn, event.res_type, event.res_id, event.pk)
        if decision.blocked:
            # Blocked (sperret) data is not known to the blocked organisation: the same answer as a read.
            await self._audit_denied(event.ctx, event.interaction, decision.patients, "blocked by consent")
            raise FhirError(Category.NOT_FOUND, f"{event.res_type}/{event.res_id} is not known")
        await self._require_write_access(event, principal, decision)
        checked = event.ctx.state(_RequestState).checked_before_write
        checked[(event.res_type, event.res_id)] = frozenset(decision.patients)

    async def after_write(self, event: WriteEvent) -> None:
        principal = self.caller(event.ctx)
        if principal is None:
            return
        assert event.pk is not None
        policy = self.policy(event.ctx)
        assert policy is not None
        state = event.ctx.state(_RequestState)
        key = (event.res_type, event.res_id)
        entity = (event.res_type, event.res_id, event.version)
        change = state.identity_changes.pop(key, None)
        if change is not None:
            await self._audit_identity_change(event, entity, change)
        if event.interaction == "create" and event.res_type in self.config.core_journal_types:
            await self._record_author(event.conn, event.pk, event.res_type, event.res_id, principal)
        patients: tuple[str, ...] = ()
        flags: tuple[str, ...] = ()
        if event.resource is not None and event.res_type in self.config.patient_types:
            decision = await policy.decide(event.conn, event.res_type, event.res_id, event.pk)
            patients = decision.patients
            new_patient = event.res_type == "Patient" and event.interaction == "create"
            if not new_patient and not self._same_patients_as_checked(event, decision):
                await self._require_write_access(event, principal, decision)
            if await self._started_care(event, policy, state.care_before.pop(key, frozenset())):
                flags = (SELF_DECLARED_CARE,)
        elif event.res_type in self.config.patient_types:
            # A delete: the patients of the version it removed (checked before the write).
            patients = tuple(sorted(state.checked_before_write.get(key, ())))
            if event.res_type == "Patient":
                patients = (event.res_id,)
            if key in state.care_deleted:
                flags = (CARE_RELATION_DELETED,)
        else:
            return
        record = self._record(event.ctx, event.interaction, "0", patients, entity, flags=flags)
        await store_audit_events(self.svc, event.conn, [audit_event(record)])

    # -- trusted sources of access ----------------------------------------------------------------------
    async def _check_identity_change(self, event: WriteEvent, principal: Principal) -> None:
        """Identities the policy trusts (identifiers, hierarchy, role links, active) change only with the
        identity administration scope. Creating one at an id no access fact names yet takes over nobody's
        patients, so it needs only the write scope; every change is audited and flagged after the write."""
        previous = orjson.loads(event.previous) if event.previous else None
        before = trusted_identity(event.res_type, previous)
        after = trusted_identity(event.res_type, event.resource)
        if before == after:
            return
        event.ctx.state(_RequestState).identity_changes[(event.res_type, event.res_id)] = (before, after)
        if principal.kind != "citizen" and identity_admin(principal.scopes):
            return
        if event.interaction == "create" and not await self._named_in_facts(event):
            return
        await self._audit_denied(
            event.ctx, event.interaction, (), "identity change without administration scope"
        )
        raise denied(
            f"Changing the identifiers, hierarchy, role links or active flag of {event.res_type} needs the "
            f"{IDENTITY_ADMIN_SCOPE} scope"
        )

    @staticmethod
    async def _named_in_facts(event: WriteEvent) -> bool:
        """Access facts already name this resource (a reference written before it existed)."""
        party = f"ref:{event.res_type}/{event.res_id}"
        kinds = ("care", "proxy", "parent", "block", "author")
        named = union_all(
            select(access_fact.c.id).where(access_fact.c.kind.in_(kinds), access_fact.c.party == party),
            select(party_identity.c.id).where(party_identity.c.party == party),
        )
        return (await event.conn.execute(named.limit(1))).first() is not None

    async def _audit_identity_change(
        self,
        event: WriteEvent,
        entity: tuple[str, str, int],
        change: tuple[dict[str, Any], dict[str, Any]],
    ) -> None:
        before, after = (orjson.dumps(c, option=orjson.OPT_SORT_KEYS).decode() for c in change)
        record = self._record(
            event.ctx,
            event.interaction,
            "0",
            (),
            entity,
            flags=(IDENTITY_CHANGE,),
            details=(("identity-before", before), ("identity-after", after)),
        )
        await store_audit_events(self.svc, event.conn, [audit_event(record)])

    async def _check_citizen_grant(self, event: WriteEvent, principal: Principal) -> None:
        """A citizen gives a proxy (fullmakt) only over their own record, and keeps related persons (whose
        identities a fullmakt can name) only there; parenthood comes from a system or personnel."""
        versions = _versions(event)
        base = event.ctx.base_url if self.svc.base_url else ""
        patients = {patient_of(v.get("patient"), base) for v in versions}
        named = tuple(sorted(p for p in patients if p))
        if event.res_type == "RelatedPerson" and any(states_parenthood(v) for v in versions):
            await self._audit_denied(event.ctx, event.interaction, named, "parenthood stated by a citizen")
            raise denied(
                "Parenthood is recorded by the health service or the population register, not by a citizen"
            )
        if event.res_type == "Consent" and not any(proxy_consent(v) for v in versions):
            return
        if None in patients or not await self._own_patients(event.conn, principal, set(named)):
            await self._audit_denied(event.ctx, event.interaction, named, "grant over another's record")
            raise denied(f"A citizen can write this {event.res_type} only in their own record")

    @staticmethod
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

    async def _note_care_before(self, event: WriteEvent) -> None:
        """Before a personnel write that can start a care relation: which patients it names were not in
        their care? (A delete: does it remove a care relation, whoever's it was?)"""
        state = event.ctx.state(_RequestState)
        key = (event.res_type, event.res_id)
        if event.resource is None:
            assert event.pk is not None
            query = select(access_fact.c.id).where(
                access_fact.c.source_pk == event.pk, access_fact.c.kind == "care"
            )
            if (await event.conn.execute(query.limit(1))).first() is not None:
                state.care_deleted.add(key)
            return
        base = event.ctx.base_url if self.svc.base_url else ""
        derived = derive(
            event.res_type,
            event.res_id,
            event.resource,
            datetime.now(UTC),
            self.settings.care_relation_days_after_end,
            base,
        )
        named = {f.patient_id for f in derived.facts if f.kind == "care" and f.patient_id}
        policy = self.policy(event.ctx)
        assert policy is not None
        without = {p for p in sorted(named) if await policy.patient_access(event.conn, p) != "yes"}
        if without:
            state.care_before[key] = frozenset(without)

    @staticmethod
    async def _started_care(event: WriteEvent, policy: Policy, without: frozenset[str]) -> bool:
        """The write gave the caller a care relation with a patient who was not in their care before."""
        for patient_id in sorted(without):
            if await policy.patient_access(event.conn, patient_id) == "yes":
                return True
        return False

    @staticmethod
    def _same_patients_as_checked(event: WriteEvent, decision: Decision) -> bool:
        """An update the caller was allowed to make (checked on the version it replaces) that keeps the
        resource with the same patients. The new version may itself end the caller's care relation, as
        forwarding or completing a referral Task does; that must not undo the step."""
        checked = event.ctx.state(_RequestState).checked_before_write.get((event.res_type, event.res_id))
        return (
            event.interaction == "update"
            and checked is not None
            and not decision.blocked
            and set(decision.patients) <= checked
        )

    async def _require_write_access(
        self, event: WriteEvent, principal: Principal, decision: Decision
    ) -> None:
        if principal.kind == "system" and not decision.blocked:
            return
        if decision.blocked or decision.reserved or not (decision.allowed or decision.emergency):
            why = "blocked by consent" if decision.blocked else "no access to the patient"
            await self._audit_denied(event.ctx, event.interaction, decision.patients, why)
            raise denied(
                f"No access to write {event.res_type}/{event.res_id}: it needs a care relation with the "
                "patient (or granted emergency access)"
            )

    async def _record_author(
        self, conn: AsyncConnection, pk: int, res_type: str, res_id: str, principal: Principal
    ) -> None:
        """Core-journal entries remember the organisation that wrote them: a reservation does not hide
        an organisation's own entries from it."""
        parties = [p for p in principal_parties(principal) if not p.startswith("pid:")]
        if parties:
            await conn.execute(
                insert(access_fact),
                [
                    {
                        "source_pk": pk,
                        "kind": "author",
                        "party": p,
                        "target_type": res_type,
                        "target_id": res_id,
                    }
                    for p in parties
                ],
            )

    # -- reads ----------------------------------------------------------------------------------------
    async def before_read(self, event: ReadEvent) -> None:
        principal = self.caller(event.ctx)
        if principal is None:
            return
        permission = _READ_PERMISSION.get(event.interaction)
        if (
            event.res_type is not None
            and permission is not None
            and not principal.scopes.allows(event.res_type, permission)
        ):
            await self._audit_denied(event.ctx, event.interaction, (), "scope does not allow this read")
            raise denied(f"The token's scopes do not allow {event.interaction} on {event.res_type}")
        if principal.kind != "personnel":
            if event.compartment is not None and principal.kind == "citizen":
                await self._require_patient(
                    event.ctx, principal, event.interaction, event.compartment[1], event.conn
                )
            return
        targets = self._search_patients(event)
        for patient_id in targets:
            await self._require_patient(event.ctx, principal, event.interaction, patient_id, event.conn)

    def _search_patients(self, event: ReadEvent) -> list[str]:
        if event.compartment is not None:
            return [event.compartment[1]]
        found = []
        for name, value in event.params:
            if name in _PATIENT_PARAMS and "," not in value:
                ref = value.removeprefix("Patient/")
                if ref and "/" not in ref and ":" not in ref:
                    found.append(ref)
        if event.res_type == "Patient":
            found += [v for k, v in event.params if k == "_id" and "," not in v]
        return found

    async def _require_patient(
        self,
        ctx: RequestContext,
        principal: Principal,
        interaction: str,
        patient_id: str,
        conn: AsyncConnection | None = None,
    ) -> None:
        """A search about one named patient: personnel need a care relation (or state an emergency, which
        is then granted); citizens must be that patient or hold a proxy for them."""
        policy = self.policy(ctx)
        assert policy is not None
        if conn is not None:
            allowed = await policy.patient_access(conn, patient_id)
        else:
            async with self.svc.repo.reader() as own:
                allowed = await policy.patient_access(own, patient_id)
        if allowed == "yes":
            return
        if allowed == "emergency":
            ctx.state(_RequestState).emergency = True  # the search's audit row is flagged for follow-up
            return
        if principal.kind == "personnel" and principal.emergency_reason and not Repository.writing():
            await self._grant_emergency(ctx, principal, (patient_id,))
            ctx.state(_RequestState).emergency = True
            return
        await self._audit_denied(ctx, interaction, (patient_id,), "no care relation with the patient")
        raise no_access(principal)

    async def after_read(self, check: ReadCheck) -> None:
        principal = self.caller(check.ctx)
        if principal is None or check.res_type not in self.config.patient_types:
            return
        policy = self.policy(check.ctx)
        assert policy is not None
        decision = await policy.decide(check.conn, check.res_type, check.res_id, check.pk)
        entity = (check.res_type, check.res_id, check.version)
        if decision.blocked:
            await self._audit_denied(
                check.ctx, check.interaction, decision.patients, "blocked by consent", check.conn
            )
            raise FhirError(Category.NOT_FOUND, f"{check.res_type}/{check.res_id} is not known")
        if not decision.patient_data:
            return  # a Binary, Bundle or Device of no patient
        if decision.reserved:
            await self._audit_denied(
                check.ctx, check.interaction, decision.patients, "reserved core journal", check.conn
            )
            raise denied("The patient has reserved against core-journal access; this entry is not available")
        if decision.allowed or decision.emergency:
            await self._audit(
                self._record(
                    check.ctx, check.interaction, "0", decision.patients, entity, emergency=decision.emergency
                ),
                check.conn,
                ctx=check.ctx,
            )
            return
        if decision.patients and principal.kind == "personnel" and principal.emergency_reason:
            if Repository.writing():
                raise denied("Emergency access cannot be granted inside a batch or transaction")
            await self._grant_emergency(check.ctx, principal, decision.patients)
            await self._audit(
                self._record(check.ctx, check.interaction, "0", decision.patients, entity, emergency=True),
                check.conn,
                ctx=check.ctx,
            )
            return
        why = "no care relation with the patient" if decision.patients else "not linked to a patient"
        await self._audit_denied(check.ctx, check.interaction, decision.patients, why, check.conn)
        raise no_access(principal)

    async def after_search(self, event: SearchEvent) -> None:
        if self.caller(event.ctx) is None:
            return
        patient_pks = [
            r.pk
            for r in event.returned
            if r.res_type in self.config.patient_types and r.res_type != "Patient"
        ]
        patients = {r.res_id for r in event.returned if r.res_type == "Patient"}
        if patient_pks:
            query = select(idx_reference.c.target_id).where(
                idx_reference.c.res_pk.in_(patient_pks),
                idx_reference.c.hash_identity.in_(self.config.compartment_identities),
                idx_reference.c.target_type == "Patient",
            )
            patients.update(row[0] for row in (await event.conn.execute(query.distinct())).all())
        linked_pks = [r.pk for r in event.returned if r.res_type in self.config.linked_types]
        if linked_pks:
            linked = policy_sql.linked_patients(linked_pks, self.config.compartment_identities)
            patients.update(row[0] for row in (await event.conn.execute(union(*linked))).all())
        if event.compartment is not None:
            patients.add(event.compartment[1])
        compartment_types = self.config.patient_types - self.config.linked_types
        about_patients = bool(patients) or bool(set(event.res_types) & compartment_types)
        if not about_patients or event.res_types == ("AuditEvent",):
            return
        interaction = audit_interaction(event.interaction, event.res_types)
        emergency = event.ctx.state(_RequestState).emergency or await self._through_emergency(event, patients)
        record = self._record(
            event.ctx, interaction, "0", tuple(sorted(patients)), None, emergency=emergency, query=event.query
        )
        await self._audit(record, event.conn, ctx=event.ctx)

    async def _through_emergency(self, event: SearchEvent, patients: set[str]) -> bool:
        """Some returned data is of a patient the caller sees only through granted emergency access (a
        search need not name the patient to reach their data)."""
        principal = self.caller(event.ctx)
        if principal is None or principal.kind != "personnel" or not principal.hpr or not patients:
            return False
        policy = self.policy(event.ctx)
        assert policy is not None
        granted = select(emergency_access.c.patient_id).where(
            emergency_access.c.hpr == principal.hpr,
            emergency_access.c.expires_at > policy.now,
            emergency_access.c.patient_id.in_(sorted(patients)),
        )
        for (patient_id,) in (await event.conn.execute(granted.distinct())).all():
            if await policy.patient_access(event.conn, patient_id) == "emergency":
                return True
        return False

    # -- emergency access -----------------------------------------------------------------------------
    async def _grant_emergency(
        self, ctx: RequestContext, principal: Principal, patients: tuple[str, ...]
    ) -> None:
        assert principal.hpr is not None
        assert principal.emergency_reason
        now = datetime.now(UTC)
        rows = [
            {
                "hpr": principal.hpr,
                "orgnr": principal.orgnr,
                "patient_id": patient_id,
                "reason": principal.emergency_reason,
                "request_id": ctx.request_id[:64],
                "granted_at": now,
                "expires_at": now + timedelta(minutes=self.settings.emergency_access_minutes),
            }
            for patient_id in patients
        ]
        async with self.svc.repo.writer() as conn:
            await conn.execute(insert(emergency_access), rows)

    # -- audit ----------------------------------------------------------------------------------------
    def _record(
        self,
        ctx: RequestContext,
        interaction: str,
        outcome: str,
        patients: tuple[str, ...],
        entity: tuple[str, str, int | None] | None,
        emergency: bool = False,
        query: str | None = None,
        outcome_desc: str | None = None,
        flags: tuple[str, ...] = (),
        details: tuple[tuple[str, str], ...] = (),
    ) -> AuditRecord:
        principal = ctx.principal if isinstance(ctx.principal, Principal) else None
        reason = principal.emergency_reason if principal else None
        return AuditRecord(
            interaction=interaction,
            outcome=outcome,
            principal=principal,
            patients=patients,
            entities=(entity,) if entity else (),
            query=query,
            outcome_desc=outcome_desc,
            emergency=emergency,
            emergency_reason=(reason or "granted earlier (akuttilgang)") if emergency else None,
            request_id=ctx.request_id,
            flags=flags,
            details=details,
        )

    async def _audit_denied(
        self,
        ctx: RequestContext,
        interaction: str,
        patients: tuple[str, ...],
        why: str,
        conn: AsyncConnection | None = None,
    ) -> None:
        record = self._record(ctx, audit_interaction(interaction), "4", patients, None, outcome_desc=why)
        # The refused unit of work rolls back: its audit row must not be part of it.
        await self._audit(
            record, None if conn is None or Repository.is_write_unit(conn) else conn, failing=True, ctx=ctx
        )

    async def _audit(
        self,
        record: AuditRecord,
        conn: AsyncConnection | None,
        failing: bool = False,
        ctx: RequestContext | None = None,
    ) -> None:
        event = audit_event(record)
        if Repository.writing():
            if conn is not None and Repository.is_write_unit(conn) and not failing:
                await store_audit_events(self.svc, conn, [event])  # same transaction as the work
                return
            # Inside a unit of work that will not keep our row: write it as soon as that unit ends, and
            # hold the response until it is committed (as for reads).
            task = asyncio.create_task(self._submit_outside(event))
            self._later.add(task)
            task.add_done_callback(self._later.discard)
            if ctx is not None:
                ctx.scratch.setdefault(AUDIT_WAITS, []).append(task)
            return
        assert self.writer is not None
        if ctx is not None:
            # Not awaited here: the caller still holds a database connection. The response waits for it
            # (authn holds back the response until the request's audit rows are committed).
            ctx.scratch.setdefault(AUDIT_WAITS, []).append(asyncio.ensure_future(self.writer.submit(event)))
            return
        await self.writer.submit(event)

    async def _submit_outside(self, event: dict[str, Any]) -> None:
        assert self.writer is not None
        await self.writer.submit(event)


# What the audit trail is searched by: whose data (patient, entity), who (agent and its identifiers, altid),
# when, what was done and how it ended, and the follow-up flag (_tag). Every AuditEvent is written on the
# read path, so the index keeps to these instead of all 24 R4 parameters (a third of the index rows).
AUDIT_SEARCH_PARAMS = frozenset(
    {"_id", "_lastUpdated", "_tag", "_security", "_profile", "_source", "action", "agent", "altid", "date"}
    | {"entity", "outcome", "patient", "subtype"}
)


def lean_audit_index(registry: Registry) -> None:
    audit = registry.types["AuditEvent"]
    audit.search_params = {k: v for k, v in audit.search_params.items() if k in AUDIT_SEARCH_PARAMS}
    audit.index_plan = None


def install_security(
    svc: FhirService, settings: Settings, core_journal_types: frozenset[str]
) -> SecurityLayer:
    lean_audit_index(svc.registry)  # whatever the auth mode: both may share one database
    layer = SecurityLayer(
        svc, settings, PolicyConfig.standard(core_journal_types), settings.auth_mode == "jwt"
    )
    layer.install()
    return layer
