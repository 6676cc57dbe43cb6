"""M25 Legemidler i bruk (the patient's medication list, "LIB") and its variants M25.1–M25.4 as frozen
dataclasses. One model for the family: each variant allows a subset of it (see `legemiddelliste.VARIANTS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from app.adapters.eresept.model import PrescribedMedicine
from app.adapters.kith.model import Coded, Ident


@dataclass(frozen=True)
class ListPerson:
    """Helseperson: a health professional by HPR number."""

    hpr: Ident  # HprId (fk1:Ident)
    given: str | None = None  # Fornavn
    family: str | None = None  # Etternavn
    speciality: Coded | None = None  # Spesialitet


@dataclass(frozen=True)
class ListOrganisation:
    """Organisasjon: an organisation by HER-id."""

    her_id: Ident  # HerId (fk1:Ident)
    name: str | None = None  # Inst
    department: str | None = None  # Dept
    institution: Coded | None = None  # InstitusjonsID


@dataclass(frozen=True)
class ListRole:
    """Rolle: a party's role towards the patient (on the list) or an entry; a person or an organisation."""

    role: Coded  # Rolle
    person: ListPerson | None = None  # Helseperson
    organisation: ListOrganisation | None = None  # Organisasjon


@dataclass(frozen=True)
class PackedDispense:
    """SisteUtlevering (M25.3): a multidose dispense of the entry."""

    first_dose: date  # DatoForsteDose
    last_dose: date  # DatoSisteDose
    dispense: bytes  # UtleveringB64, decoded
    ref_m10: str | None = None  # RefM10
    repack_reason: Coded | None = None  # Ompakkingsgrunn
    picture: str | None = None  # Bilderef/@V


@dataclass(frozen=True)
class Stop:
    """Seponering (M25.1): the entry is stopped."""

    at: datetime  # Tidspunkt
    reason: Coded  # Arsak
    note: str | None = None  # Merknad


@dataclass(frozen=True)
class Question:
    """Sporsmal (M25.1/M25.2): a question or comment on the entry, with its answer."""

    code: Coded  # Kode
    asked_at: datetime  # Tidspunkt
    asked_by: str  # Stiller (HER-id)
    note: str | None = None  # Merknad
    to: str | None = None  # Mottaker (HER-id)
    answer: Coded | None = None  # Svar/Kode
    answer_note: str | None = None  # Svar/Merknad


@dataclass(frozen=True)
class ListEntry:
    """EnkeltoppforingLIB: one medicine in use."""

    id: str  # Id (a local UUID)
    type: Coded  # Type (the kind of prescription)
    changed: datetime  # SistEndret
    medicine: PrescribedMedicine  # ReseptDokLegemiddelB64 (an m1:ReseptDokLegemiddel), decoded
    prescription_id: str | None = None  # ReseptId
    prescription_expires: date | None = None  # UtlopsdatoResept
    started: date | None = None  # DatoOppstart
    multidose: Coded | None = None  # InngarMultidose (M25.3): packed by a packing centre
    with_change: bool | None = None  # MedEndring
    roles: tuple[ListRole, ...] = ()  # Rolle
    dispenses: tuple[PackedDispense, ...] = ()  # SisteUtlevering (M25.3)
    stop: Stop | None = None  # Seponering (M25.1)
    questions: tuple[Question, ...] = ()  # Sporsmal (M25.1/M25.2)


@dataclass(frozen=True)
class PackingInfo:
    """Pakkeinfo (M25.2/M25.3): the multidose packing schedule."""

    order_deadline: datetime  # Bestillingsfrist
    first_dose: date | None = None  # ForsteDoseringsdato
    last_dose: date | None = None  # SisteDoseringsdato


@dataclass(frozen=True)
class MedicationList:
    """LegemidlerIBruk: no MsgHead of its own (it travels base64-encoded, e.g. in M912 VarerIBrukB64)."""

    variant: str  # the key in `legemiddelliste.VARIANTS` ("M25", "M25.1" ... "M25.4")
    entries: tuple[ListEntry, ...] = ()  # EnkeltoppforingLIB
    roles: tuple[ListRole, ...] = ()  # Rolle (towards the patient)
    packing: PackingInfo | None = None  # Pakkeinfo
    note: str | None = None  # Merknad
    substitute: Coded | None = None  # Vikar (M25.1)
    allergies: tuple[Allergy, ...] = ()  # ki:Allergi: drug reactions registered as critical information


@dataclass(frozen=True)
class DrugReaction:
    """ki:Legemiddelreaksjon: what the patient reacted to (at least one of the codes or names)."""

    atc: Coded | None = None  # Atc (Volven 7180)
    substances: tuple[str, ...] = ()  # Virkestoff (names)
    substance_ids: tuple[str, ...] = ()  # VirkestoffId (FEST)
    brand_id: str | None = None  # MerkevareId (FEST)
    excipient: bool | None = None  # Hjelpestoffreaksjon
    product_name: str | None = None  # Varenavn


@dataclass(frozen=True)
class Allergy:
    """ki:Allergi: a registered reaction to a medicine."""

    reaction: Coded  # Reaksjon (Volven 7497)
    updated: datetime  # Oppdatert
    source: Coded  # Kilde
    drug: DrugReaction  # Legemiddelreaksjon
    comment: str | None = None  # Kommentar
    refuted: bool | None = None  # Avkreftet (true, or None: false says no more than its absence)
