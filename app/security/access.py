"""The security layer's hooks into the engine: access facts on write, scope and policy checks, audit.

Installed by main.py. With authentication off only the access facts are maintained (so that turning it
on later finds them); with it on, every read, search, history and write on patient data is checked and
audited. A request without a principal while authentication is on comes from inside the server (demo
loader, adapters calling the service layer) and is trusted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import Settings
from app.fhir.context import RequestContext
from app.fhir.hooks import OperationEvent, ReadCheck, ReadEvent, SearchEvent, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.fhir.service import FhirService
from app.security.audit import AuditRecord, audit_event
from app.security.audit_trail import install_audit_trail
from app.security.audit_writer import AUDIT_WAITS, AuditWriter, batch_store, store_audit_events
from app.security.facts_store import store_facts
from app.security.policy import Decision, Policy, PolicyConfig, principal_parties
from app.security.principal import Permission, Principal
from app.security.tables import access_fact, emergency_access
from app.store.repository import Repository
from app.store.tables import idx_reference

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


# ctx.scratch key: (type, id) -> the patients of the version an update replaces, once access was checked
_CHECKED_BEFORE_WRITE = "security.write-access-checked"


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
        hooks.after_write.append(self.maintain_facts)
        hooks.on_reindex.append(self.maintain_facts)
        if not self.enabled:
            return
        self.writer = AuditWriter(batch_store(self.svc))
        hooks.before_write.append(self.before_write)
        hooks.after_write.append(self.after_write)
        hooks.before_read.append(self.before_read)
        hooks.after_read.append(self.after_read)
        hooks.after_search.append(self.after_search)
        hooks.before_operation.append(self.before_operation)
        hooks.visibility = self.visibility

    async def close(self) -> None:
        if self._later:
            await asyncio.gather(*self._later, return_exceptions=True)
        if self.writer is not None:
            await self.writer.close()

    # -- per request ----------------------------------------------------------------------------------
    def policy(self, ctx: RequestContext) -> Policy | None:
        principal = ctx.principal
        if not isinstance(principal, Principal):
            return None
        policy = ctx.scratch.get("policy")
        if policy is None:
            policy = ctx.scratch["policy"] = Policy(self.config, principal, datetime.now(UTC))
        return policy

    def visibility(self, ctx: RequestContext) -> Policy | None:
        return self.policy(ctx)

    # -- access facts (always) ----------------------------------------------------------------------
    async def maintain_facts(self, event: WriteEvent) -> None:
        base_url = event.ctx.base_url if self.svc.base_url else ""
        await store_facts(event, self.settings.care_relation_days_after_end, base_url)

    async def before_operation(self, event: OperationEvent) -> None:
        """Server maintenance is for system clients with write access to everything it touches."""
        principal = event.ctx.principal
        if not isinstance(principal, Principal):
            return
        if principal.kind != "system" or not principal.scopes.allows(event.res_type or "*", "u"):
            raise denied(f"{event.name} needs a system client with update scope on the resources it touches")

    # -- writes ---------------------------------------------------------------------------------------
    async def before_write(self, event: WriteEvent) -> None:
        principal = event.ctx.principal
        if event.res_type == "AuditEvent" and principal is not None:
            raise denied("AuditEvent records are written by the server only; they cannot be changed")
        if not isinstance(principal, Principal):
            return
        if event.res_type == "Subscription" and principal.kind != "system":
            # A subscription is notified of every matching write, past the access policy: only an
            # organisation's integration (a system client) may register one.
            raise denied("Subscriptions can only be registered by system clients")
        permission = _WRITE_PERMISSION.get(event.interaction, "u")
        if not principal.scopes.allows(event.res_type, permission):
            await self._audit_denied(event.ctx, event.interaction, (), "scope does not allow this write")
            raise denied(f"The token's scopes do not allow {event.interaction} of {event.res_type}")
        if event.interaction == "create" or event.res_type not in self.config.patient_types:
            return
        # Updating or deleting patient data: the caller must have access to it as it stands now.
        assert event.pk is not None
        policy = self.policy(event.ctx)
        assert policy is not None
        decision = await policy.decide(event.conn, event.res_type, event.res_id, event.pk)
        await self._require_write_access(event, principal, decision)
        checked = event.ctx.scratch.setdefault(_CHECKED_BEFORE_WRITE, {})
        checked[(event.res_type, event.res_id)] = frozenset(decision.patients)

    async def after_write(self, event: WriteEvent) -> None:
        principal = event.ctx.principal
        if not isinstance(principal, Principal):
            return
        assert event.pk is not None
        policy = self.policy(event.ctx)
        assert policy is not None
        if event.interaction == "create" and event.res_type in self.config.core_journal_types:
            await self._record_author(event.conn, event.pk, event.res_type, event.res_id, principal)
        patients: tuple[str, ...] = ()
        if event.resource is not None and event.res_type in self.config.patient_types:
            decision = await policy.decide(event.conn, event.res_type, event.res_id, event.pk)
            patients = decision.patients
            new_patient = event.res_type == "Patient" and event.interaction == "create"
            if not new_patient and not self._same_patients_as_checked(event, decision):
                await self._require_write_access(event, principal, decision)
        elif event.res_type in self.config.patient_types:
            patients = (event.res_id,) if event.res_type == "Patient" else ()
        else:
            return
        record = self._record(
            event.ctx, event.interaction, "0", patients, (event.res_type, event.res_id, event.version)
        )
        await store_audit_events(self.svc, event.conn, [audit_event(record)])

    @staticmethod
    def _same_patients_as_checked(event: WriteEvent, decision: Decision) -> bool:
        """An update the caller was allowed to make (checked on the version it replaces) that keeps the
        resource with the same patients. The new version may itself end the caller's care relation, as
        forwarding or completing a referral Task does; that must not undo the step."""
        checked = event.ctx.scratch.get(_CHECKED_BEFORE_WRITE, {}).get((event.res_type, event.res_id))
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
        principal = event.ctx.principal
        if not isinstance(principal, Principal):
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
            ctx.scratch["emergency"] = True  # the search's audit row is flagged for follow-up
            return
        if principal.kind == "personnel" and principal.emergency_reason and not Repository.writing():
            await self._grant_emergency(ctx, principal, (patient_id,))
            ctx.scratch["emergency"] = True
            return
        await self._audit_denied(ctx, interaction, (patient_id,), "no care relation with the patient")
        raise no_access(principal)

    async def after_read(self, check: ReadCheck) -> None:
        principal = check.ctx.principal
        if not isinstance(principal, Principal) or check.res_type not in self.config.patient_types:
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
        if not isinstance(event.ctx.principal, Principal):
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
        if event.compartment is not None:
            patients.add(event.compartment[1])
        about_patients = bool(patients) or bool(set(event.res_types) & self.config.patient_types)
        if not about_patients or event.res_types == ("AuditEvent",):
            return
        interaction = audit_interaction(event.interaction, event.res_types)
        emergency = bool(event.ctx.scratch.get("emergency"))
        record = self._record(
            event.ctx, interaction, "0", tuple(sorted(patients)), None, emergency=emergency, query=event.query
        )
        await self._audit(record, event.conn, ctx=event.ctx)

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
            # Inside a unit of work that will not keep our row: write it as soon as that unit ends.
            task = asyncio.create_task(self._submit_outside(event))
            self._later.add(task)
            task.add_done_callback(self._later.discard)
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


def install_security(
    svc: FhirService, settings: Settings, core_journal_types: frozenset[str]
) -> SecurityLayer:
    install_audit_trail(svc)  # whatever the auth mode: both may share one database
    layer = SecurityLayer(
        svc, settings, PolicyConfig.standard(core_journal_types), settings.auth_mode == "jwt"
    )
    layer.install()
    return layer
