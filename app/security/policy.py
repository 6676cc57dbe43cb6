"""The access policy as SQL: who may see which resource, evaluated in the database.

One rule serves every path: search pages and counts, _include/_revinclude, $everything, history (as a
RowFilter condition on the resource), and the single-resource decision of read/vread (the same
predicates, selected as columns, so that a read can say *why* it is refused).

- Personnel see a patient's data only with an active care relation (tjenstlig behov) between the patient
  and their organisation, themselves or a role of theirs, or with granted emergency access.
- Citizens see their own data and that of people they hold an active proxy for (fullmakt), including
  their children under 12.
- Systems (client credentials) see what their scopes allow.
- For everyone but the patient: consent blocks (sperring) against their organisation hide the named
  resources, and a reservation against the core journal hides core-journal content except entries their
  own organisation wrote.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, false, literal, not_, or_, select, true, union_all
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from app.fhir.registry import patient_compartment
from app.fhir.search.extract import identity_hash
from app.security import policy_sql
from app.security.facts import twelfth_birthday_cutoff
from app.security.principal import Principal
from app.store.tables import idx_reference

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PolicyConfig:
    core_journal_types: frozenset[str]
    patient_types: frozenset[str]  # Patient and every type in the Patient compartment
    compartment_identities: tuple[int, ...]  # index identities of all Patient compartment parameters
    birthdate_identity: int
    identities_by_type: dict[str, list[int]]  # the same, per resource type

    @classmethod
    def standard(cls, core_journal_types: Collection[str]) -> PolicyConfig:
        compartment = patient_compartment()
        identities = tuple(identity_hash(t, p) for t, params in compartment.items() for p in params)
        return cls(
            frozenset(core_journal_types),
            frozenset({"Patient", *compartment}),
            identities,
            identity_hash("Patient", "birthdate"),
            {t: [identity_hash(t, p) for p in params] for t, params in compartment.items()},
        )


def principal_parties(principal: Principal) -> list[str]:
    """The principal's own parties, as the access facts spell them."""
    parties = [f"org:{o}" for o in principal.orgnrs]
    if principal.hpr:
        parties.append(f"hpr:{principal.hpr}")
    if principal.kind == "citizen" and principal.pid:
        parties.append(f"pid:{principal.pid}")
    return parties


@dataclass(frozen=True)
class Decision:
    patients: tuple[str, ...]
    allowed: bool  # through a care relation, own data, a proxy, or (systems) scopes
    emergency: bool  # allowed only through granted emergency access
    blocked: bool  # a consent block names this resource for the caller's organisation
    reserved: bool  # core-journal content of a reserved patient, not written by the caller's organisation


class Policy:
    """The rule for one principal at one instant; also a RowFilter (`condition`)."""

    def __init__(self, config: PolicyConfig, principal: Principal, now: datetime) -> None:
        self.config = config
        self.principal = principal
        self.now = now
        self.parties = principal_parties(principal)

    # -- building blocks (policy_sql states them; here they get this principal's values) -------------
    def mine(self, column: Any) -> ColumnElement[bool]:
        return policy_sql.mine(column, self.parties)

    def care_patients(self) -> Select[Any]:
        query = policy_sql.care_patients(self.parties, self.now)
        return self._launch_limited(query, query.selected_columns[0])

    def emergency_patients(self) -> Select[Any] | None:
        if self.principal.kind != "personnel" or not self.principal.hpr:
            return None
        query = policy_sql.emergency_patients(self.principal.hpr, self.now)
        return self._launch_limited(query, query.selected_columns[0])

    def citizen_patients(self) -> Select[Any]:
        query = policy_sql.citizen_patients(
            self.parties, self.now, self.config.birthdate_identity, self._cutoff_micros()
        )
        return self._launch_limited(select(query.c[0]), query.c[0])

    def _launch_limited(self, query: Select[Any], column: Any) -> Select[Any]:
        launch = self.principal.launch_patient
        return query.where(column == launch) if launch else query

    def _cutoff_micros(self) -> int:
        """Children born after this instant (microseconds since the epoch) are under 12."""
        cutoff = twelfth_birthday_cutoff(self.now.astimezone(UTC).date())
        start = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)
        return (start - _EPOCH) // timedelta(microseconds=1)

    def in_patients(self, subject: Any, patients: Select[Any]) -> ColumnElement[bool]:
        """`subject` is one of `patients`, or in the compartment of one of them."""
        c = idx_reference.alias()
        member = (
            select(c.c.id)
            .where(
                c.c.res_pk == subject.c.pk,
                c.c.hash_identity.in_(self.config.compartment_identities),
                c.c.target_type == "Patient",
                c.c.target_id.in_(patients),
            )
            .exists()
        )
        return or_(and_(subject.c.res_type == "Patient", subject.c.res_id.in_(patients)), member)

    def blocked(self, subject: Any) -> ColumnElement[bool]:
        if self.principal.kind == "citizen":
            return false()  # blocks are the patient's own, against organisations
        return policy_sql.blocked(subject.c.res_type, subject.c.res_id, self.parties, self.now)

    def reserved(self, subject: Any) -> ColumnElement[bool]:
        if self.principal.kind == "citizen" or not self.config.core_journal_types:
            return false()
        return and_(
            subject.c.res_type.in_(sorted(self.config.core_journal_types)),
            self.in_patients(subject, policy_sql.reserved_patients(self.now)),
            not_(policy_sql.own_entry(subject.c.pk, self.parties)),
        )

    def allowed_patients(self) -> Select[Any] | None:
        """Every patient whose data the principal may see; None: not limited by patient (systems)."""
        if self.principal.kind == "citizen":
            return self.citizen_patients()
        if self.principal.kind == "personnel":
            emergency = self.emergency_patients()
            care = self.care_patients()
            if emergency is None:
                return care
            both = union_all(care, emergency).subquery()
            return select(both.c[0])
        if self.principal.launch_patient:
            return select(literal(self.principal.launch_patient))
        return None

    def readable_types(self) -> frozenset[str] | None:
        """Types the scopes let the principal read or search (None: all); personnel never see the audit
        trail through the clinical API."""
        read, search = self.principal.scopes.types_with("r"), self.principal.scopes.types_with("s")
        types = None if read is None or search is None else read | search
        if self.principal.kind == "personnel" and types is not None:
            return types - {"AuditEvent"}
        return types

    # -- RowFilter ------------------------------------------------------------------------------------
    def condition(self, subject: Any) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        types = self.readable_types()
        if types is not None:
            parts.append(subject.c.res_type.in_(sorted(types)) if types else false())
        elif self.principal.kind == "personnel":
            parts.append(subject.c.res_type != "AuditEvent")
        patients = self.allowed_patients()
        if patients is not None:
            patient_data = subject.c.res_type.in_(sorted(self.config.patient_types))
            parts.append(or_(not_(patient_data), self.in_patients(subject, patients)))
        parts.append(not_(self.blocked(subject)))
        parts.append(not_(self.reserved(subject)))
        return and_(true(), *parts)

    # -- one resource -------------------------------------------------------------------------------
    async def decide(self, conn: AsyncConnection, res_type: str, res_id: str, pk: int) -> Decision:
        """The decision for one stored resource: one statement, built once (the read path)."""
        principal = self.principal
        params = {
            "now": self.now,
            "parties": self.parties,
            "identities": self.config.identities_by_type.get(res_type, []),
            "self_patient": res_id if res_type == "Patient" else None,
            "hpr": principal.hpr or "",
            "res_type": res_type,
            "res_id": res_id,
            "pk": pk,
            "birthdate_identity": self.config.birthdate_identity,
            "cutoff_micros": self._cutoff_micros(),
        }
        rows = (await conn.execute(policy_sql.DECIDE[principal.kind], params)).all()
        found = sorted(row[0] for row in rows if row[0] is not None)
        if res_type == "Patient" and res_id in found:  # the patient itself first
            found.remove(res_id)
            found.insert(0, res_id)
        patients = tuple(found)
        row = rows[0]
        allowed, emergency, blocked = bool(row[1]), bool(row[2]), bool(row[3])
        reserved = bool(row[4]) and res_type in self.config.core_journal_types
        if principal.launch_patient and principal.launch_patient not in patients:
            allowed = emergency = False  # a token launched for one patient sees only that patient
        if principal.kind == "system" and not principal.launch_patient:
            allowed = True
        return Decision(patients, allowed, emergency and not allowed, blocked, reserved)
