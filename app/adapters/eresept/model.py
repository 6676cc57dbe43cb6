"""The e-resept messages as frozen dataclasses (no XML, no FHIR here).

The MsgHead envelope (sender with the prescriber, receiver, patient) is the KITH adapter's model; what is
e-resept-specific is the business document: the prescription (M1), its recall (M5) and the dispense
report (M10). Field comments name the XML element each comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from app.adapters.kith.model import Coded, Organisation, OriginalReference, Patient, Quantity


@dataclass(frozen=True)
class Envelope:
    """What the MsgHead says: the message identity and the parties."""

    msg_id: str  # MsgInfo/MsgId; for an M1 it is also the prescription's id (ReseptId in M5/M10)
    generated: datetime  # MsgInfo/GenDate
    sender: Organisation  # MsgInfo/Sender/Organisation (+ HealthcareProfessional: the prescriber, HPR)
    receiver: Organisation  # MsgInfo/Receiver/Organisation (Reseptformidleren)
    patient: Patient | None = None  # MsgInfo/Patient
    conversation_ref: OriginalReference | None = None  # MsgInfo/ConversationRef (M7: the M5 it answers)


@dataclass(frozen=True)
class Dose:
    """fs:DoseFastTidspunkt: an amount given at a fixed time of day (or a fixed clock time)."""

    amount: Quantity  # Mengde V/U
    interval: Quantity | None = None  # Intervall V/U ("1 Døgn" = every day)
    clock_time: time | None = None  # Klokkeslett
    time_of_day: Coded | None = None  # Tidsomrade (Volven 8325-like: 1 morgen, 3 midt på dagen, 5 kveld)
    exact: bool = False  # GisEksakt


@dataclass(frozen=True)
class Dosage:
    """fs:Dosering: a period with its doses (structured dosage)."""

    doses: tuple[Dose, ...]
    start: date | None = None  # Starttidspunkt/@V
    end: date | None = None  # Sluttidspunkt/@V


@dataclass(frozen=True)
class Package:
    """fs:PakningsinfoResept: the package the prescription names."""

    name: str  # Varenavn
    size: str  # Pakningsstr
    unit: Coded  # EnhetPakning (Volven 7452 / 7484)


class ProductKind:
    """Which fs: element describes the medicine (the Forskrivning choice)."""

    PACKAGE = "Legemiddelpakning"  # a package by varenummer
    BRAND = "LegemiddelMerkevare"  # a brand product
    SUBSTANCE = "LegemiddelVirkestoff"  # generic (substance) prescription
    ALL = (PACKAGE, BRAND, SUBSTANCE)


@dataclass(frozen=True)
class Medicine:
    """The product: typeLegemiddel plus what the chosen kind adds."""

    kind: str  # one of ProductKind.ALL
    name_form_strength: str  # NavnFormStyrke: name, form and strength as one text ("Cosylan Mikst 1,7 mg/ml")
    prescription_group: Coded  # Reseptgruppe (A, B, C, F ...)
    atc: Coded | None = None  # Atc (Volven 7180)
    form: Coded | None = None  # LegemiddelformKort (Volven 7448)
    fest_id: str | None = None  # Id: the FEST id of the product (ID_<uuid>); mandatory for virkestoff
    item_number: str | None = None  # Varenr (Legemiddelpakning): the package's varenummer
    brand_name: str | None = None  # Varenavn (LegemiddelMerkevare)
    packages: tuple[Package, ...] = ()  # PakningsinfoResept (Legemiddelpakning)


@dataclass(frozen=True)
class Prescribing:
    """fs:Forskrivning: what to take and how."""

    medicine: Medicine
    use_area: str | None = None  # Bruksomrade ("HOSTEDEMPENDE")
    dosage_text: str | None = None  # DosVeiledEnkel ("10 ml 3 ganger daglig")
    no_combination: bool | None = None  # IngenKombinasjon
    use: Coded | None = None  # Bruk (1 fast, 3 ved behov, ...)
    short_dose: Coded | None = None  # Kortdose (Volven 7478)
    dosages: tuple[Dosage, ...] = ()  # Dosering


@dataclass(frozen=True)
class PrescribedMedicine:
    """m1:ReseptDokLegemiddel: quantity, reiterations and the prescribing."""

    article_group: Coded  # Varegruppekode (L legemiddel)
    prescribing: Prescribing  # fs:Forskrivning
    quantity: Decimal | None = None  # Antall (packages)
    note: str | None = None  # Merknad
    reimbursement_basis: Coded | None = None  # RefHjemmel (Volven 7427: §5-14 §2 ..., blåresept)
    reimbursement_code: Coded | None = (
        None  # RefKode: the diagnosis the reimbursement rests on (ICPC-2/ICD-10)
    )
    reiterations: int = 0  # Reiterasjon
    substitution_reserved: Coded | None = None  # BytteresRekvirent (1 ja, 2 nei)


@dataclass(frozen=True)
class Prescription:
    """M1 Resept inside its MsgHead."""

    envelope: Envelope
    issued: date  # Forskrivningsdato
    expires: date  # Utloper
    medicine: PrescribedMedicine  # ReseptDokLegemiddel
    fest_updated: datetime  # OppdatertFest: the FEST version the prescriber used
    free_card: bool | None = None  # Frikort
    reference: str | None = None  # RefNr
    earliest_dispense: date | None = None  # TidligsteUtlevering
    last_prescription: bool | None = None  # LastResept


@dataclass(frozen=True)
class Recall:
    """M5 Tilbakekalling: the prescriber withdraws a prescription."""

    envelope: Envelope
    prescription_id: str  # ReseptId (the M1's MsgId)
    reason: Coded  # Arsak (Volven 7500)
    note: str | None = None  # Merknad
    new_prescription_id: str | None = None  # NyReseptId: the prescription that replaces it


@dataclass(frozen=True)
class Dispenser:
    """utl:Utleverer: the pharmacy."""

    her_id: str  # HerId/fk1:Id
    name: str  # Navn


@dataclass(frozen=True)
class Dispense:
    """M10 Utleveringsrapport / utl:Utlevering: what the pharmacy handed out."""

    envelope: Envelope
    prescription_id: str  # ReseptId
    dispensed_on: date  # Utleveringsdato
    dispenser: Dispenser  # Utleverer
    medicine: PrescribedMedicine | None = None  # m1:ReseptDokLegemiddel as dispensed
    cancelled: bool = False  # Annullering: this report cancels an earlier one
    completed: Coded | None = None  # Avsluttet (1 ja, 2 nei): the prescription is used up
    customer_reserved_substitution: bool | None = None  # ByttereservasjonKunde
    no_report_to_gp: bool | None = None  # ReservasjonRapportFastlege
    employee_id: str | None = None  # AnsattId


@dataclass(frozen=True)
class Deletion:
    """M7 Slettet resept i RF: Reseptformidleren tells the prescriber a prescription is deleted there
    (after an M5, or when it expired). It names no ReseptId: `envelope.conversation_ref` points at the
    message it answers."""

    envelope: Envelope
    deleted_at: datetime  # Tidspunkt


@dataclass(frozen=True)
class ListedDispense:
    """M96 Listeelement/Utlevering: what has been dispensed on a listed prescription so far."""

    name_form_strength: str  # NavnFormStyrke
    packages_total: Decimal  # AntallPakningerUtlevertTotalt
    packages_last: Decimal  # AntallPakningerUtlevertSiste
    last_dispensed: datetime  # TidspunktSisteUtlevering
    item_number: str | None = None  # Varenr
    package_size: Quantity | None = None  # Pakningsstr


@dataclass(frozen=True)
class ListedPrescription:
    """M96 Listeelement: a prescription's state in Reseptformidleren."""

    prescription_id: str  # ReseptId
    status: Coded  # Status (E ekspederbar, ...)
    dispenser_name: str | None = None  # NavnUtleverer
    recalled: bool | None = None  # TilbakekallingStatus
    recall_reason: Coded | None = None  # Arsak
    dispenses: tuple[ListedDispense, ...] = ()  # Utlevering


@dataclass(frozen=True)
class PrescriptionList:
    """M96 Reseptliste (rekvirent): the prescriber's prescriptions in RF; each listed prescription's M1
    travels base64-encoded in a Document of its own."""

    envelope: Envelope
    items: tuple[ListedPrescription, ...]
    prescriptions: tuple[Prescription, ...]  # the embedded M1s, in document order
    search_status: Coded | None = None  # StatusSok (instead of items: why the search found nothing)
