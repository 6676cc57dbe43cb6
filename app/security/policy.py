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

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    String,
    and_,
    bindparam,
    exists,
    false,
    literal,
    not_,
    or_,
    select,
    true,
    union,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from app.fhir.registry import patient_compartment
from app.fhir.search.extract import identity_hash
from app.security import policy_sql
from app.security.facts import LINKED_TYPES, PATIENT_DATA_BEYOND_COMPARTMENT, twelfth_birthday_cutoff
from app.security.principal import Principal
from app.store.driver_sql import DriverStatement
from app.store.repository import CURRENT_ROW
from app.store.tables import UtcDateTime, idx_reference, resource
from app.store.visibility import RowFilter

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


__all__ = ["LINKED_TYPES", "PATIENT_DATA_BEYOND_COMPARTMENT", "Decision", "Policy", "PolicyConfig"]


@dataclass(frozen=True)
class PolicyConfig:
    core_journal_types: frozenset[str]
    patient_types: frozenset[str]  # Patient, the Patient compartment, Task, and LINKED_TYPES
    compartment_identities: tuple[int, ...]  # index identities of all Patient compartment parameters
    birthdate_identity: int
    identities_by_type: dict[str, list[int]]  # the same, per resource type
    linked_types: frozenset[str] = LINKED_TYPES  # patient data when facts link them to patients
    # The rule's statements per Shape, built on first use (see _Templates).
    templates: dict[Shape, _Templates] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def standard(cls, core_journal_types: Collection[str]) -> PolicyConfig:
        compartment = {**patient_compartment(), **PATIENT_DATA_BEYOND_COMPARTMENT}
        identities = tuple(identity_hash(t, p) for t, params in compartment.items() for p in params)
        return cls(
            frozenset(core_journal_types),
            frozenset({"Patient", *compartment, *LINKED_TYPES}),
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
    patient_data: bool = True  # False: a Binary, Bundle or Device that no fact links to a patient


# The per-request values of the row filter and the patient checks. Prefixed: the row filter becomes part
# of the engine's search statements, whose own parameters must not collide with these.
_NOW = bindparam("pol_now", type_=UtcDateTime())
_HPR = bindparam("pol_hpr", type_=String())
_LAUNCH = bindparam("pol_launch", type_=String())
_TYPES: BindParameter[Any] = bindparam("pol_types", expanding=True)
_BIRTHDATE = bindparam("pol_birthdate", type_=BigInteger())
_CUTOFF = bindparam("pol_cutoff", type_=BigInteger())
_PATIENT = bindparam("pol_patient", type_=String())
# The resource of a decision by primary key (vread, history, writes, conditional matches).
_PK = bindparam("pol_pk", type_=BigInteger())
_RES_ID = bindparam("pol_res_id", type_=String())
# A read's own statement finds its row by this (and res_type; Repository.read_current_judged binds them).
_READ_ID = bindparam("res_id", type_=String())


def _party_slots(count: int) -> tuple[BindParameter[Any], ...]:
    """One bound parameter per party of the principal: `IN (:a, :b)` is the same SQL text on every
    execution, where an expanding list would be rendered into the statement again each time."""
    return tuple(bindparam(f"pol_party_{i}", type_=String()) for i in range(count))


@dataclass(frozen=True)
class Shape:
    """What the SQL of a principal's rule depends on besides bound values: principals of one shape share
    statements that are built once (building them per request cost milliseconds of CPU)."""

    kind: str
    types: str  # "all" (not limited by scopes), "none" (no type readable) or "some" (bound list)
    launch: bool  # limited to one patient (SMART launch context)
    hpr: bool  # personnel with an HPR number (can hold emergency access)
    parties: int  # how many parties the principal is (principal_parties), each a bound parameter


# The row the row filter judges: the filter is stated once on this alias, and each statement asks
# whether its own row (by primary key) is one of them (see _Templates.visible).
_ROW = resource.alias("pol_row")


class _Templates:
    """The rule's statements for one Shape, with bound parameters instead of values (the principal's
    values are given when a statement is executed: Policy.parameters). The row filter is stated once, on
    _ROW; the single-resource decisions are built per resource type on first use (a read's own
    statement, and one by primary key)."""

    def __init__(self, config: PolicyConfig, shape: Shape) -> None:
        self.config = config
        self.shape = shape
        self.parties = _party_slots(shape.parties)
        self.reads: dict[str, DriverStatement] = {}
        self.decisions: dict[str, DriverStatement] = {}
        care = (
            self._limited(policy_sql.care_patients(self.parties, _NOW)) if shape.kind == "personnel" else None
        )
        self.allowed = self._allowed_patients(care)
        # One round trip for "may this principal see patient X": allowed at all, and through care (not
        # only through granted emergency access)?
        self.patient_check = (
            None
            if self.allowed is None
            else select(
                _in(self.allowed, _PATIENT).exists(),
                _in(care, _PATIENT).exists() if care is not None else true(),
            )
        )
        # The row filter per set of types the filtered rows can have (None: any type), with only the
        # checks that can apply to them.
        self.conditions: dict[tuple[frozenset[str] | None, bool], ColumnElement[bool]] = {}
        self.returned = self._returned()

    def _returned(self) -> Select[Any]:
        """The patients of the resources a search returned (pol_pks: patient data other than Patients,
        pol_linked_pks: those of them that are Binary, Bundle, Device; pol_patient_pks: Patients), each
        with whether the principal holds granted emergency access to them: one statement. Whether such a
        patient is seen only through that grant (for the search's audit) is then asked of those few
        (Policy.returned_patients): testing every returned patient against the care relations here made
        PostgreSQL plan the care subqueries on every search (~1.7 ms of the statement's 2)."""
        config = self.config
        pks: BindParameter[Any] = bindparam("pol_pks", expanding=True)
        linked_pks: BindParameter[Any] = bindparam("pol_linked_pks", expanding=True)
        patient_pks: BindParameter[Any] = bindparam("pol_patient_pks", expanding=True)
        refs = policy_sql.referenced_patients(lambda res_pk: res_pk.in_(pks), config.compartment_identities)
        own = select(resource.c.res_id).where(resource.c.pk.in_(patient_pks))
        linked = policy_sql.linked_patients(
            lambda source_pk: source_pk.in_(linked_pks), config.compartment_identities
        )
        patients = union(refs, own, *linked).subquery("returned_patients")
        granted: ColumnElement[bool] = false()
        if self.shape.kind == "personnel" and self.shape.hpr:
            granted = _in(policy_sql.emergency_patients(_HPR, _NOW), patients.c.patient_id).exists()
        return select(patients.c.patient_id, granted.label("granted"))

    def visible(
        self, subject: Any, types: frozenset[str] | None = None, patient_allowed: bool = False
    ) -> ColumnElement[bool]:
        """The row filter on `subject` (an alias of resource): its row (by primary key) is one the filter
        lets through. The filter itself is shared, never copied: copying its ~800 elements for each
        statement's alias cost ~1.5–4 ms of CPU per search. OFFSET 0 keeps PostgreSQL from turning the
        EXISTS into a join, which could evaluate the filter on every resource instead of on the
        statement's own rows.

        `types`: the types `subject`'s rows can have, when the statement limits them. Checks that cannot
        apply to those types are left out: PostgreSQL plans every branch of a filter whether or not a
        row can reach it, and planning the whole filter took ~2.5 ms of every secured search (an
        Observation search of a system client needs no reservation check, which only core journal
        types have).

        `patient_allowed`: every row is in the Patient compartment of a patient the principal was found
        to be allowed (Policy.in_allowed_compartment), so the test of the row's patients is left out."""
        condition = self.conditions.get((types, patient_allowed))
        if condition is None:
            condition = self.conditions[(types, patient_allowed)] = self._condition(types, patient_allowed)
        row = select(_ROW.c.pk).where(_ROW.c.pk == subject.c.pk, condition).offset(0)
        return row.correlate_except(_ROW).exists()

    def _limited(self, query: Select[Any]) -> Select[Any]:
        column = query.selected_columns[0]
        return query.where(column == _LAUNCH) if self.shape.launch else query

    def _allowed_patients(self, care: Select[Any] | None) -> Select[Any] | None:
        """Every patient whose data the principal may see; None: not limited by patient (systems).
        `care`: personnel's care relations."""
        kind = self.shape.kind
        if kind == "citizen":
            citizen = policy_sql.citizen_patients(self.parties, _NOW, _BIRTHDATE, _CUTOFF)
            return self._limited(select(citizen.c[0]))
        if care is not None:
            if not self.shape.hpr:
                return care
            emergency = self._limited(policy_sql.emergency_patients(_HPR, _NOW))
            both = union_all(care, emergency).subquery()
            return select(both.c[0])
        return select(_LAUNCH.label("patient_id")) if self.shape.launch else None

    def _in_patients(
        self, subject: Any, patients: Select[Any], types: frozenset[str] | None
    ) -> ColumnElement[bool]:
        """`subject` (of one of `types`; None: any) is one of `patients`, or in the compartment of one of
        them."""
        c = idx_reference.alias()
        member = (
            select(c.c.id)
            .where(
                c.c.res_pk == subject.c.pk,
                policy_sql.in_constants(c.c.hash_identity, self.config.compartment_identities),
                c.c.target_type == "Patient",
                c.c.target_id.in_(patients),
            )
            .exists()
        )
        alternatives: list[ColumnElement[bool]] = [member]
        if types is None or "Patient" in types:
            alternatives.insert(0, and_(subject.c.res_type == "Patient", subject.c.res_id.in_(patients)))
        linked_types = _among(self.config.linked_types, types)
        if linked_types:
            alternatives.append(
                and_(
                    policy_sql.in_constants(subject.c.res_type, linked_types),
                    policy_sql.linked_to(subject.c.pk, patients, self.config.compartment_identities),
                )
            )
        return or_(*alternatives)

    def _condition(self, types: frozenset[str] | None, patient_allowed: bool) -> ColumnElement[bool]:
        """The row filter on _ROW, for rows of `types` (None: any type); see `visible`."""
        subject, shape, config = _ROW, self.shape, self.config
        parts: list[ColumnElement[bool]] = []
        if shape.types == "some":
            parts.append(subject.c.res_type.in_(_TYPES))
        elif shape.types == "none":
            parts.append(false())
        elif shape.kind == "personnel" and (types is None or "AuditEvent" in types):
            parts.append(subject.c.res_type != "AuditEvent")  # the audit trail is not clinical data
        # Patient data among the rows' types: the compartment's, and those facts link to patients.
        patient_data: list[ColumnElement[bool]] = []
        compartment_types = _among(config.patient_types - config.linked_types, types)
        if compartment_types:
            patient_data.append(policy_sql.in_constants(subject.c.res_type, compartment_types))
        linked_types = _among(config.linked_types, types)
        if linked_types:
            patient_data.append(
                and_(
                    policy_sql.in_constants(subject.c.res_type, linked_types), policy_sql.linked(subject.c.pk)
                )
            )
        if self.allowed is not None and patient_data and not patient_allowed:
            parts.append(or_(not_(or_(*patient_data)), self._in_patients(subject, self.allowed, types)))
        if shape.kind != "citizen":  # blocks and reservations are the patient's own, against others
            parts.append(not_(policy_sql.blocked(subject.c.res_type, subject.c.res_id, self.parties, _NOW)))
            core_journal_types = _among(config.core_journal_types, types)
            if core_journal_types:
                reserved = and_(
                    policy_sql.in_constants(subject.c.res_type, core_journal_types),
                    self._in_patients(subject, policy_sql.reserved_patients(_NOW), types),
                    not_(policy_sql.own_entry(subject.c.pk, self.parties)),
                )
                parts.append(not_(reserved))
        return and_(true(), *parts)

    # -- one resource -------------------------------------------------------------------------------
    def read(self, res_type: str) -> DriverStatement:
        """A read's own statement: the current row's columns (CURRENT_ROW), then the decision's."""
        statement = self.reads.get(res_type)
        if statement is None:
            decision = self._decision(res_type, CURRENT_ROW, CURRENT_ROW.c.pk, _READ_ID)
            statement = self.reads[res_type] = DriverStatement(decision)
        return statement

    def decision(self, res_type: str) -> DriverStatement:
        """The decision about a stored resource named by primary key (pol_pk) and id (pol_res_id): after
        every write of patient data, so run as driver SQL like the judged read."""
        statement = self.decisions.get(res_type)
        if statement is None:
            anchor = select(literal(1).label("one")).subquery("anchor")
            decision = self._decision(res_type, anchor, _PK, _RES_ID)
            statement = self.decisions[res_type] = DriverStatement(decision)
        return statement

    def _decision(self, res_type: str, source: Any, pk: Any, res_id: Any) -> Select[Any]:
        """`source`'s columns and a row per patient of the resource (one with NULL if it has none), each
        with the decision columns (the same on every row): patient_id, allowed, emergency, blocked,
        reserved, linked. Built for one resource type: only the checks that can apply to it, with its
        index identities as constants."""
        config, shape, parties = self.config, self.shape, self.parties
        linked_type = res_type in config.linked_types
        patients = policy_sql.subject_patients(
            pk,
            res_id if res_type == "Patient" else None,
            config.identities_by_type.get(res_type, ()),
            config.compartment_identities if linked_type else None,
        ).cte("subject_patients")
        among = select(patients.c.patient_id)
        allowed: ColumnElement[bool] = true()
        emergency: ColumnElement[bool] = false()
        blocked: ColumnElement[bool] = false()
        reserved: ColumnElement[bool] = false()
        if shape.kind == "personnel":
            allowed = policy_sql.care_patients(parties, _NOW, among).exists()
            if shape.hpr:
                emergency = policy_sql.emergency_patients(_HPR, _NOW, among).exists()
        elif shape.kind == "citizen":
            citizen = policy_sql.citizen_patients(parties, _NOW, _BIRTHDATE, _CUTOFF)
            allowed = exists().where(citizen.c[0].in_(among))
        if shape.kind != "citizen":  # blocks and reservations are the patient's own, against others
            blocked = policy_sql.blocked(policy_sql.constant(res_type), res_id, parties, _NOW)
            if res_type in config.core_journal_types:
                reserved = and_(
                    policy_sql.reserved_patients(_NOW, among).exists(),
                    not_(policy_sql.own_entry(pk, parties)),
                )
        linked = policy_sql.linked(pk) if linked_type else true()
        return select(
            *source.c,
            patients.c.patient_id,
            allowed.label("allowed"),
            emergency.label("emergency"),
            blocked.label("blocked"),
            reserved.label("reserved"),
            linked.label("linked"),
        ).select_from(source.outerjoin(patients, true()))


def _among(kinds: Collection[str], types: frozenset[str] | None) -> list[str]:
    """The types of `kinds` that rows of `types` (None: any type) can have, sorted."""
    return sorted(kinds if types is None else types.intersection(kinds))


def _in(patients: Select[Any], patient: Any) -> Select[Any]:
    inner = patients.subquery()
    return select(inner.c[0]).where(inner.c[0] == patient)


class Policy:
    """The rule for one principal at one instant; also a RowFilter (`condition`)."""

    def __init__(self, config: PolicyConfig, principal: Principal, now: datetime) -> None:
        self.config = config
        self.principal = principal
        self.now = now
        self.parties = principal_parties(principal)
        types = self.readable_types()
        shape = Shape(
            principal.kind,
            "all" if types is None else "some" if types else "none",
            bool(principal.launch_patient),
            principal.kind == "personnel" and bool(principal.hpr),
            len(self.parties),
        )
        templates = config.templates.get(shape)
        if templates is None:
            templates = config.templates[shape] = _Templates(config, shape)
        self.templates = templates
        self.values: dict[str, Any] = {
            "pol_now": now,
            **{f"pol_party_{i}": party for i, party in enumerate(self.parties)},
            "pol_hpr": principal.hpr or "",
            "pol_launch": principal.launch_patient or "",
            "pol_types": sorted(types or ()),
            "pol_birthdate": config.birthdate_identity,
            "pol_cutoff": self._cutoff_micros(),
        }

    def _cutoff_micros(self) -> int:
        """Children born after this instant (microseconds since the epoch) are under 12."""
        cutoff = twelfth_birthday_cutoff(self.now.astimezone(UTC).date())
        start = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)
        return (start - _EPOCH) // timedelta(microseconds=1)

    def readable_types(self) -> frozenset[str] | None:
        """Types the scopes let the principal read or search (None: all); personnel never see the audit
        trail through the clinical API."""
        read, search = self.principal.scopes.types_with("r"), self.principal.scopes.types_with("s")
        types = None if read is None or search is None else read | search
        if self.principal.kind == "personnel" and types is not None:
            return types - {"AuditEvent"}
        return types

    # -- RowFilter ------------------------------------------------------------------------------------
    def condition(self, subject: Any, types: frozenset[str] | None = None) -> ColumnElement[bool]:
        return self.templates.visible(subject, types)

    @property
    def parameters(self) -> Mapping[str, Any]:
        return self.values

    @property
    def shape(self) -> Hashable:
        return self.templates  # one per Shape and configuration: the same condition

    def in_allowed_compartment(self) -> RowFilter:
        """The row filter for a search whose every row is in the Patient compartment of one patient the
        principal was just found to be allowed (patient_access "yes" or "emergency"). Such a row is in
        an allowed patient's compartment by construction, so the per-row test of the caller's patients
        is left out: it rebuilt the care relations for every row (a GP with ~2,000 patients: 6–10 ms per
        row on PostgreSQL). Scopes, blocks and reservations are still judged per row."""
        return _InAllowedCompartment(self)

    async def patient_access(self, conn: AsyncConnection, patient_id: str) -> str:
        """ "yes", "emergency" (only through granted emergency access) or "no" for one named patient."""
        check = self.templates.patient_check
        if check is None:
            return "yes"
        row = (await conn.execute(check, {**self.values, "pol_patient": patient_id})).one()
        if not row[0]:
            return "no"
        return "yes" if row[1] else "emergency"

    async def returned_patients(
        self, conn: AsyncConnection, returned: Sequence[tuple[str, int]]
    ) -> tuple[set[str], bool]:
        """The patients of the resources a search returned ((type, pk) of each), and whether the principal
        sees any of them only through granted emergency access."""
        config = self.config
        params = {
            **self.values,
            "pol_pks": [pk for t, pk in returned if t in config.patient_types and t != "Patient"],
            "pol_linked_pks": [pk for t, pk in returned if t in config.linked_types],
            "pol_patient_pks": [pk for t, pk in returned if t == "Patient"],
        }
        rows = (await conn.execute(self.templates.returned, params)).all()
        through_emergency = False
        for patient_id in sorted(row[0] for row in rows if row[1]):  # granted: is it also in their care?
            if await self.patient_access(conn, patient_id) == "emergency":
                through_emergency = True
                break
        return {row[0] for row in rows}, through_emergency

    # -- one resource -------------------------------------------------------------------------------
    def judged_read(self, res_type: str, res_id: str) -> JudgedRead:
        """A read of `res_type`/`res_id` that takes this decision in its own statement."""
        return JudgedRead(self.templates.read(res_type), self.values, self, res_type, res_id)

    async def decide(self, conn: AsyncConnection, res_type: str, res_id: str, pk: int) -> Decision:
        """The decision for one stored resource, by primary key: one statement, built once per type."""
        params = {**self.values, "pol_pk": pk, "pol_res_id": res_id}
        rows = await self.templates.decision(res_type).all(conn, params)
        return self.decision(rows, 1, res_type, res_id)

    def decision(self, rows: Sequence[Sequence[Any]], first: int, res_type: str, res_id: str) -> Decision:
        """The Decision from the rows of a decision statement whose own columns start at `first`."""
        principal = self.principal
        found = sorted(row[first] for row in rows if row[first] is not None)
        if res_type == "Patient" and res_id in found:  # the patient itself first
            found.remove(res_id)
            found.insert(0, res_id)
        patients = tuple(found)
        row = rows[0]
        allowed, emergency, blocked = bool(row[first + 1]), bool(row[first + 2]), bool(row[first + 3])
        reserved = bool(row[first + 4]) and res_type in self.config.core_journal_types
        if res_type in self.config.linked_types and not row[first + 5]:
            return Decision(patients, True, False, blocked, False, patient_data=False)
        if principal.launch_patient and principal.launch_patient not in patients:
            allowed = emergency = False  # a token launched for one patient sees only that patient
        if principal.kind == "system" and not principal.launch_patient:
            allowed = True
        return Decision(patients, allowed, emergency and not allowed, blocked, reserved)


@dataclass(frozen=True)
class _InAllowedCompartment:
    """Policy.in_allowed_compartment: a RowFilter of its own shape (statements holding it are cached
    apart from those holding the whole filter)."""

    policy: Policy

    def condition(self, subject: Any, types: frozenset[str] | None = None) -> ColumnElement[bool]:
        return self.policy.templates.visible(subject, types, patient_allowed=True)

    @property
    def parameters(self) -> Mapping[str, Any]:
        return self.policy.values

    @property
    def shape(self) -> Hashable:
        return (self.policy.templates, "in allowed compartment")


@dataclass(frozen=True)
class JudgedRead:
    """A read that takes the policy's decision in its own statement (app.store.repository.JudgedRead)."""

    statement: DriverStatement
    params: Mapping[str, Any]
    policy: Policy
    res_type: str
    res_id: str

    def judge(self, rows: Sequence[Sequence[Any]]) -> Decision:
        return self.policy.decision(rows, len(CURRENT_ROW.c), self.res_type, self.res_id)
