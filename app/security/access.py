"""The security layer's hooks into the engine: access facts on write, scope and policy checks, audit.

Installed by main.py. With authentication off only the access facts are maintained (so that turning it
on later finds them); with it on, every read, search, history and write on patient data is checked and
audited. Every engine call names its principal: a verified caller (Principal) is judged by the policy; the
server acting on its own account names a SystemPrincipal with a reason and is judged and audited as a
system client named after it; anything else (no principal, or the unauthenticated principal of
AUTH_MODE=off) is refused.

The layer is three parts besides these hooks: the policy (policy.py, policy_sql.py: decisions and SQL row
filters), the facts it decides on (facts.py, facts_store.py: care relations, identities, blocks, kept on
write) with the rules on writing their sources (write_rules.py), and the audit sink (audit_sink.py, with its
contract: in the unit of work, or after commit with the response waiting).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import Settings
from app.fhir.context import UNAUTHENTICATED, RequestContext, SystemPrincipal
from app.fhir.hooks import MatchCheck, OperationEvent, ReadCheck, ReadEvent, SearchEvent, Stage, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.fhir.service import FhirService
from app.security import write_rules
from app.security.audit import CARE_RELATION_DELETED, SELF_DECLARED_CARE
from app.security.audit_sink import AuditSink, audit_interaction
from app.security.audit_trail import install_audit_trail
from app.security.facts import IDENTITY_TYPES
from app.security.facts_store import store_facts
from app.security.policy import Decision, JudgedRead, Policy, PolicyConfig
from app.security.principal import Permission, Principal, Scope, ScopeSet
from app.security.scopes import IDENTITY_ADMIN_SCOPE
from app.security.tables import emergency_access
from app.security.write_rules import RequestState, denied
from app.store.repository import Repository
from app.store.visibility import RowFilter

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


@functools.cache
def server_principal(acting: SystemPrincipal) -> Principal:
    """The server acting on its own account, as the policy and the audit see it: a system client named
    after the job, its reason recorded as the source system, with every scope (identity administration
    included) and no organisation."""
    return Principal(
        kind="system",
        subject=acting.name,
        client_id=f"helsebro/{acting.name}",
        issuer="helsebro",
        scopes=ScopeSet(
            (Scope("system", "*", frozenset("cruds")),), ("system/*.cruds", IDENTITY_ADMIN_SCOPE)
        ),
        source_system=acting.reason,
    )


def no_access(principal: Principal) -> FhirError:
    """The refusal when the caller has no access to the patient (and did not claim emergency access)."""
    if principal.kind == "citizen":
        return denied("You can only see your own data and that of people you hold a proxy for")
    return denied(
        "No care relation with the patient (tjenstlig behov). For emergency access (akuttilgang), "
        "state the reason in the nhn-emergency-reason header"
    )


_MATCH_PERMISSION: dict[str, Permission] = {"create": "c", "update": "u", "patch": "u", "delete": "d"}


@dataclass
class SecurityLayer:
    svc: FhirService
    settings: Settings
    config: PolicyConfig
    enabled: bool
    _sink: AuditSink | None = None

    @property
    def sink(self) -> AuditSink:
        assert self._sink is not None, "the audit sink exists once the layer is installed with auth on"
        return self._sink

    def install(self) -> None:
        hooks = self.svc.hooks
        hooks.after_write.add(Stage.FACTS, self.maintain_facts)
        hooks.on_reindex.add(Stage.FACTS, self.maintain_facts)
        if not self.enabled:
            return
        self._sink = AuditSink(self.svc)
        hooks.before_write.add(Stage.ACCESS, self.before_write)
        hooks.after_write.add(Stage.ACCESS, self.after_write)
        hooks.before_read.add(Stage.ACCESS, self.before_read)
        hooks.after_read.add(Stage.ACCESS, self.after_read)
        hooks.after_search.add(Stage.ACCESS, self.after_search)
        hooks.before_operation.add(Stage.ACCESS, self.before_operation)
        hooks.visibility = self.visibility
        hooks.match_guard = self.may_know
        hooks.read_judge = self.judged_read
        hooks.searchable_types = lambda ctx: self.caller(ctx).scopes.types_with("s")

    async def close(self) -> None:
        if self._sink is not None:
            await self._sink.close()

    # -- per request ----------------------------------------------------------------------------------
    @staticmethod
    def caller(ctx: RequestContext) -> Principal:
        """Who to judge and audit: the verified caller, or for the server acting on its own account a
        system Principal named after it (scopes to everything, no organisation, so consent blocks against
        organisations do not hide data from its jobs); anything else is refused: nothing is trusted
        because a principal is missing."""
        principal = ctx.principal
        if isinstance(principal, Principal):
            return principal
        if isinstance(principal, SystemPrincipal) and principal is not UNAUTHENTICATED:
            return server_principal(principal)
        raise FhirError(Category.UNAUTHORIZED, "Authentication required", "login")

    def policy(self, ctx: RequestContext) -> Policy:
        state = ctx.state(RequestState)
        if state.policy is None:
            state.policy = Policy(self.config, self.caller(ctx), datetime.now(UTC))
        return state.policy

    def visibility(self, ctx: RequestContext, compartment: tuple[str, str] | None = None) -> RowFilter:
        """The policy's row filter; for rows all in the compartment of a patient this request was already
        allowed to see (before_read's check, not inside a write), the filter that skips the per-row test of
        the patient."""
        policy = self.policy(ctx)
        if compartment is None or compartment[0] != "Patient" or Repository.writing():
            return policy
        if ctx.state(RequestState).patient_access.get(compartment[1]) in ("yes", "emergency"):
            return policy.in_allowed_compartment()
        return policy

    async def may_know(self, check: MatchCheck) -> bool:
        """May the caller be told about (or act on) a resource its conditional criteria matched? A match
        it may not read is never returned; the attempt is audited with the resource's patients."""
        principal = self.caller(check.ctx)
        permission = _MATCH_PERMISSION.get(check.interaction)
        if permission is not None and not principal.scopes.allows(check.res_type, permission):
            await self.sink.denied(
                check.ctx, check.interaction, (), "scope does not allow this write", principal
            )
            raise denied(f"The token's scopes do not allow {check.interaction} of {check.res_type}")
        patients: tuple[str, ...] = ()
        readable = principal.scopes.allows(check.res_type, "r")
        if readable and check.res_type in self.config.patient_types:
            policy = self.policy(check.ctx)
            decision = await policy.decide(check.conn, check.res_type, check.res_id, check.pk)
            patients = decision.patients
            readable = self._may_read(principal, decision)
        if not readable:
            why = f"conditional {check.interaction} matched a resource the caller may not read"
            # A conditional reference tells the caller an id, as a read of the match would have.
            audited_as = "read" if check.interaction == "reference" else check.interaction
            await self.sink.denied(check.ctx, audited_as, patients, why, principal)
        elif check.interaction == "create" and check.res_type in self.config.patient_types:
            # The match is returned to the caller: audited like a read of it.
            entity = (check.res_type, check.res_id, check.version)
            record = self.sink.record(check.ctx, "read", "0", patients, entity, principal=principal)
            await self.sink.after(check.ctx, record, check.conn)
        return readable

    @staticmethod
    def _may_read(principal: Principal, decision: Decision) -> bool:
        if decision.blocked or decision.reserved:
            return False
        return decision.allowed or decision.emergency or principal.kind == "system"

    # -- access facts (always) ----------------------------------------------------------------------
    async def maintain_facts(self, event: WriteEvent) -> None:
        await store_facts(event, self.settings.care_relation_days_after_end, self.svc.base_url)

    async def before_operation(self, event: OperationEvent) -> None:
        """Server maintenance is for system clients with write access to everything it touches. A bulk
        export is for system clients (SMART Backend Services) with search scope on every type it reads;
        its searches are then filtered and audited like any other."""
        principal = self.caller(event.ctx)
        if event.name == "$export":
            refused = [t for t in event.res_types if not principal.scopes.allows(t, "s")]
            if principal.kind != "system" or refused:
                await self.sink.denied(event.ctx, "$export", (), "bulk export not allowed", principal)
                raise denied(
                    "$export needs a system client with search scope on every type it exports"
                    + (f" (not on {', '.join(refused[:5])})" if refused else "")
                )
            return
        if principal.kind != "system" or not principal.scopes.allows(event.res_type or "*", "u"):
            raise denied(f"{event.name} needs a system client with update scope on the resources it touches")

    # -- writes ---------------------------------------------------------------------------------------
    async def before_write(self, event: WriteEvent) -> None:
        if event.res_type == "AuditEvent":
            raise denied("AuditEvent records are written by the server only; they cannot be changed")
        principal = self.caller(event.ctx)
        if event.res_type == "Subscription" and principal.kind != "system":
            # Delivery reads as the registering principal, but notifications go to an endpoint outside
            # the person's session: only an organisation's integration (a system client) registers one.
            raise denied("Subscriptions can only be registered by system clients")
        permission = _WRITE_PERMISSION.get(event.interaction, "u")
        if not principal.scopes.allows(event.res_type, permission):
            await self.sink.denied(
                event.ctx, event.interaction, (), "scope does not allow this write", principal
            )
            raise denied(f"The token's scopes do not allow {event.interaction} of {event.res_type}")
        if event.res_type in IDENTITY_TYPES:
            await write_rules.check_identity_change(self.sink, event, principal)
        if principal.kind == "citizen" and event.res_type in write_rules.CITIZEN_GRANTS:
            await write_rules.check_citizen_grant(self.sink, event, principal, self.svc.base_url)
        if principal.kind == "citizen" and event.res_type == "Patient":
            days = self.settings.care_relation_days_after_end
            await write_rules.check_citizen_patient_write(
                self.sink, event, principal, days, self.svc.base_url
            )
        if principal.kind == "personnel" and event.res_type in write_rules.CARE_SOURCES:
            policy = self.policy(event.ctx)
            days = self.settings.care_relation_days_after_end
            await write_rules.note_care_before(event, policy, days, self.svc.base_url)
        if event.interaction == "create" or event.res_type not in self.config.patient_types:
            return
        # Updating or deleting patient data: the caller must have access to it as it stands now.
        assert event.pk is not None
        policy = self.policy(event.ctx)
        decision = await policy.decide(event.conn, event.res_type, event.res_id, event.pk)
        if decision.blocked:
            # Blocked (sperret) data is not known to the blocked organisation: the same answer as a read.
            await self.sink.denied(
                event.ctx, event.interaction, decision.patients, "blocked by consent", principal
            )
            raise FhirError(Category.NOT_FOUND, f"{event.res_type}/{event.res_id} is not known")
        await self._require_write_access(event, principal, decision)
        checked = event.ctx.state(RequestState).checked_before_write
        checked[(event.res_type, event.res_id)] = frozenset(decision.patients)

    async def after_write(self, event: WriteEvent) -> None:
        principal = self.caller(event.ctx)
        assert event.pk is not None
        policy = self.policy(event.ctx)
        state = event.ctx.state(RequestState)
        # A write may change care relations, blocks or proxies: the request's later searches (a batch's
        # next entries) decide about their patients again.
        state.patient_access.clear()
        key = (event.res_type, event.res_id)
        entity = (event.res_type, event.res_id, event.version)
        await write_rules.audit_identity_change(self.sink, event, principal)
        if event.interaction == "create" and event.res_type in self.config.core_journal_types:
            await write_rules.record_author(event.conn, event.pk, event.res_type, event.res_id, principal)
        patients: tuple[str, ...] = ()
        flags: tuple[str, ...] = ()
        if event.resource is not None and event.res_type in self.config.patient_types:
            decision = await policy.decide(event.conn, event.res_type, event.res_id, event.pk)
            patients = decision.patients
            new_patient = event.res_type == "Patient" and event.interaction == "create"
            if not new_patient and not write_rules.same_patients_as_checked(event, decision):
                await self._require_write_access(event, principal, decision)
            if await write_rules.started_care(event, policy):
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
        record = self.sink.record(
            event.ctx, event.interaction, "0", patients, entity, flags=flags, principal=principal
        )
        await self.sink.in_unit(event.conn, record)

    # -- trusted sources of access ----------------------------------------------------------------------
    async def _require_write_access(
        self, event: WriteEvent, principal: Principal, decision: Decision
    ) -> None:
        if principal.kind == "system" and not decision.blocked:
            return
        if decision.blocked or decision.reserved or not (decision.allowed or decision.emergency):
            why = "blocked by consent" if decision.blocked else "no access to the patient"
            await self.sink.denied(event.ctx, event.interaction, decision.patients, why, principal)
            raise denied(
                f"No access to write {event.res_type}/{event.res_id}: it needs a care relation with the "
                "patient (or granted emergency access)"
            )

    # -- reads ----------------------------------------------------------------------------------------
    async def before_read(self, event: ReadEvent) -> None:
        principal = self.caller(event.ctx)
        permission = _READ_PERMISSION.get(event.interaction)
        if (
            event.res_type is not None
            and permission is not None
            and not principal.scopes.allows(event.res_type, permission)
        ):
            await self.sink.denied(
                event.ctx, event.interaction, (), "scope does not allow this read", principal
            )
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
        is then granted); citizens must be that patient or hold a proxy for them. An allowed patient is
        remembered for the request's later searches, except inside a write (which may change the facts)."""
        state = ctx.state(RequestState)
        allowed = None if Repository.writing() else state.patient_access.get(patient_id)
        if allowed is None:
            policy = self.policy(ctx)
            async with self.svc.repo.reading(conn) as reader:
                allowed = await policy.patient_access(reader, patient_id)
            if allowed in ("yes", "emergency") and not Repository.writing():
                state.patient_access[patient_id] = allowed
        if allowed == "yes":
            return
        if allowed == "emergency":
            state.emergency = True  # the search's audit row is flagged for follow-up
            return
        if principal.kind == "personnel" and principal.emergency_reason and not Repository.writing():
            await self._grant_emergency(ctx, principal, (patient_id,))
            ctx.state(RequestState).emergency = True
            return
        await self.sink.denied(
            ctx, interaction, (patient_id,), "no care relation with the patient", principal
        )
        raise no_access(principal)

    def judged_read(self, ctx: RequestContext, res_type: str, res_id: str) -> JudgedRead | None:
        """A read of patient data takes after_read's decision in its own statement."""
        if res_type not in self.config.patient_types:
            return None
        return self.policy(ctx).judged_read(res_type, res_id)

    async def after_read(self, check: ReadCheck) -> None:
        principal = self.caller(check.ctx)
        if check.res_type not in self.config.patient_types:
            return
        decision = check.judged
        if not isinstance(decision, Decision):  # read without a judge (vread, history)
            policy = self.policy(check.ctx)
            decision = await policy.decide(check.conn, check.res_type, check.res_id, check.pk)
        entity = (check.res_type, check.res_id, check.version)
        if decision.blocked:
            await self.sink.denied(
                check.ctx, check.interaction, decision.patients, "blocked by consent", principal
            )
            raise FhirError(Category.NOT_FOUND, f"{check.res_type}/{check.res_id} is not known")
        if not decision.patient_data:
            return  # a Binary, Bundle or Device of no patient
        if decision.reserved:
            await self.sink.denied(
                check.ctx, check.interaction, decision.patients, "reserved core journal", principal
            )
            raise denied("The patient has reserved against core-journal access; this entry is not available")
        if decision.allowed or decision.emergency:
            emergency = decision.emergency
            record = self.sink.record(
                check.ctx, check.interaction, "0", decision.patients, entity, emergency, principal=principal
            )
            await self.sink.after(check.ctx, record, check.conn)
            return
        if decision.patients and principal.kind == "personnel" and principal.emergency_reason:
            if Repository.writing():
                raise denied("Emergency access cannot be granted inside a batch or transaction")
            self._grant_emergency_after_read(check.ctx, principal, decision.patients)
            record = self.sink.record(
                check.ctx, check.interaction, "0", decision.patients, entity, True, principal=principal
            )
            await self.sink.after(check.ctx, record, check.conn)
            return
        why = "no care relation with the patient" if decision.patients else "not linked to a patient"
        await self.sink.denied(check.ctx, check.interaction, decision.patients, why, principal)
        raise no_access(principal)

    async def after_search(self, event: SearchEvent) -> None:
        principal = self.caller(event.ctx)
        returned = [(r.res_type, r.pk) for r in event.returned if r.res_type in self.config.patient_types]
        patients: set[str] = set()
        through_emergency = False
        if returned:  # their patients, and whether any is seen only through emergency access: one statement
            policy = self.policy(event.ctx)
            patients, through_emergency = await policy.returned_patients(event.conn, returned)
        if event.compartment is not None:
            patients.add(event.compartment[1])
        compartment_types = self.config.patient_types - self.config.linked_types
        about_patients = bool(patients) or bool(set(event.res_types) & compartment_types)
        if not about_patients or event.res_types == ("AuditEvent",):
            return
        interaction = audit_interaction(event.interaction, event.res_types)
        emergency = event.ctx.state(RequestState).emergency or through_emergency
        record = self.sink.record(
            event.ctx,
            interaction,
            "0",
            tuple(sorted(patients)),
            None,
            emergency=emergency,
            query=event.query,
            principal=principal,
        )
        await self.sink.after(event.ctx, record, event.conn)

    # -- emergency access -----------------------------------------------------------------------------
    def _grant_emergency_after_read(
        self, ctx: RequestContext, principal: Principal, patients: tuple[str, ...]
    ) -> None:
        """The grant of an emergency read, written as soon as the read has given its connection back (a
        request never holds one connection while it waits for another: with every pooled connection
        held that way, none would come back). The response waits for it, as for its audit rows."""
        self.sink.later(ctx, self._grant_emergency(ctx, principal, patients))

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


def install_security(
    svc: FhirService, settings: Settings, core_journal_types: frozenset[str]
) -> SecurityLayer:
    install_audit_trail(svc)  # whatever the auth mode: both may share one database
    layer = SecurityLayer(
        svc, settings, PolicyConfig.standard(core_journal_types), settings.auth_mode == "jwt"
    )
    layer.install()
    return layer
