"""The e-resept messages as frozen dataclasses (no XML, no FHIR here).

The MsgHead envelope (sender with the prescriber, receiver, patient) is the KITH adapter's model; what is
e-resept-specific is the business document: the prescription (M1), its recall (M5) and the dispense
report (M10), the lists (M92, M96, M912) and the consent messages (M241/M242). Field comments name the
XML element each comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from app.adapters.kith.model import (
    Address,
    Coded,
    Ident,
    Organisation,
    OriginalReference,
    Patient,
    Quantity,
    Telecom,
)


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
class AsNeeded:
    """What fs:DoseEtterBehov adds to a dose: the limits of taking it as needed."""

    max_per_day: Quantity  # DoseDognMaks
    max_per_period: Quantity  # DoseTidsromMaks: at most this much ...
    period: Quantity  # Tidsrom: ... in this period
    min_interval: Quantity  # DoseIntervallMin: at least this long between doses


@dataclass(frozen=True)
class Dose:
    """fs:DoseFastTidspunkt: an amount given at a fixed time of day (or a fixed clock time); or, with
    `as_needed`, fs:DoseEtterBehov: an amount taken when needed, within limits."""

    amount: Quantity  # Mengde V/U
    interval: Quantity | None = None  # Intervall V/U ("1 Døgn" = every day)
    clock_time: time | None = None  # Klokkeslett
    time_of_day: Coded | None = None  # Tidsomrade (Volven 8325-like: 1 morgen, 3 midt på dagen, 5 kveld)
    exact: bool = False  # GisEksakt
    as_needed: AsNeeded | None = None  # DoseEtterBehov (then no clock time, time of day or GisEksakt)


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
    COMPOUND = "Legemiddelblanding"  # magistrell: a mixture the pharmacy makes (Medicine.compound)
    ALL = (PACKAGE, BRAND, SUBSTANCE)  # the catalogue products (typeLegemiddel)


@dataclass(frozen=True)
class Strength:
    """fs:Styrke: Teller per Nevner (per unit of the mixture when there is no Nevner)."""

    numerator: Quantity  # Teller
    denominator: Quantity | None = None  # Nevner


class IngredientKind:
    MEDICINE = "BestanddelLegemiddel"  # a catalogue product (brand, package or substance)
    OTHER = "BestanddelAnnet"  # anything else, by its name, form and strength as text
    SUBSTANCE = "BestanddelVirkestoff"  # an active substance by its FEST id
    ALL = (MEDICINE, OTHER, SUBSTANCE)


@dataclass(frozen=True)
class Ingredient:
    """One Bestanddel of a Legemiddelblanding, with exactly one of `ad_qs`, `amount` or `strength` (what the
    kind's XSD choice allows: a medicine has no strength, a substance no ad q.s.)."""

    kind: str  # IngredientKind
    medicine: Medicine | None = None  # BestanddelLegemiddel: LegemiddelMerkevare | Legemiddelpakning | ...
    name: str | None = None  # BestanddelAnnet/NavnFormStyrke; BestanddelVirkestoff/Virkestoff/Navn
    substance_id: str | None = None  # BestanddelVirkestoff/Virkestoff/Id (FEST)
    ad_qs: Coded | None = None  # Utblanding/Adqs: fill up to the mixture's amount ("ad")
    amount: Quantity | None = None  # MengdeBestanddel/Mengde
    strength: Strength | None = None  # Styrke


@dataclass(frozen=True)
class Compound:
    """fs:Legemiddelblanding: a magistrell (compounded) preparation."""

    name: str  # Navn
    preparation: str  # TilbOppl: how the pharmacy prepares it
    amount: Quantity  # Mengde: how much of the mixture
    form: Coded  # Legemiddelform (Volven 7448)
    ingredients: tuple[Ingredient, ...] = ()  # in the XSD's order: medicines, others, substances


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
    # Legemiddelblanding (kind COMPOUND): the mixture; then name_form_strength is its Navn, form its
    # Legemiddelform and prescription_group empty (a magistrell preparation has none in the message)
    compound: Compound | None = None


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


@dataclass(frozen=True)
class MultidoseDoctor:
    """m274:Multidoselege: the doctor responsible for the patient's multidose."""

    hpr: str  # HprNr
    name: str  # Navn
    organisation: str  # Org: the doctor's organisation, by name
    her_id: Ident  # HerId (fk1:Ident): the organisation in the address register
    active_until: date | None = None  # AktivTil
    telecom: Telecom | None = None  # Telefon (fk1:TeleCom)


@dataclass(frozen=True)
class MultidosePharmacy:
    """m274:Multidoseapotek: the pharmacy that packs the patient's multidose."""

    name: str  # Navn
    licence: Ident  # Konsesjonsnr (fk1:Ident)
    address: Address | None = None  # Adresse
    active_until: date | None = None  # AktivTil
    telecom: Telecom | None = None  # Telefon


@dataclass(frozen=True)
class MultidoseUser:
    """M92 Multidosebruker / M912 Multidosepasient: a patient with multidose, and who is responsible."""

    fnr: str  # Fnr
    doctor: MultidoseDoctor | None = None  # m274:Multidoselege
    pharmacy: MultidosePharmacy | None = None  # m274:Multidoseapotek


@dataclass(frozen=True)
class PrescriptionInfo:
    """m92:Reseptinfo: a prescription in RF as a summary (no M1): M92 and M912 list these."""

    prescription_id: str  # ReseptId
    issued: date  # Forskrivningsdato
    given_name: str  # Fornavn (the patient's)
    family_name: str  # Etternavn
    prescriber_id: str  # RekvirentId (HPR-nummer)
    prescriber_name: str  # NavnRekvirent
    changed_by_pharmacist: Coded  # EndretFarmasoyt (1 ja, 2 nei)
    status: Coded  # Status (E ekspederbar, ...)
    guardian_reservation: bool  # Vergeinnsynsreservasjon
    middle_name: str | None = None  # Mellomnavn
    address: Address | None = None  # Address (fk1)
    item_number: str | None = None  # Nr: the varenummer
    name_form_strength: str | None = None  # NavnFormStyrke
    reimbursement_basis: Coded | None = None  # RefHjemmel (Volven 7427)
    recall_note: str | None = None  # MerknadTilbakekalling (from the M5)
    dispenser_name: str | None = None  # NavnUtleverer
    reference: str | None = None  # RefNr
    product_group: Coded | None = None  # ProdGruppe ("bleier", "kateter")
    patient: Ident | None = None  # Ident: fødselsnummer or D-nummer
    application_status: Coded | None = None  # StatusSoknadSlv
    mixture_name: str | None = None  # LegemiddelblandingNavn
    dispense_method: Coded | None = None  # MetodeEkspedering
    last_dispensed: date | None = None  # SisteUtlevering
    use_area: str | None = None  # Bruksomrade
    quantity: Decimal | None = None  # Antall (packages per dispense)
    package: tuple[str, Coded] | None = None  # Pakningsstr and EnhetPakning (both or neither)
    amount: Quantity | None = None  # Mengde
    reiterations: int | None = None  # Reiterasjon
    earliest_dispense: date | None = None  # TidligsteUtlevering


@dataclass(frozen=True)
class DispenserList:
    """M92 Reseptliste (utleverer): the patient's prescriptions in RF, as summaries, to a pharmacy."""

    envelope: Envelope
    items: tuple[PrescriptionInfo, ...]  # Reseptinfo
    multidose_users: tuple[MultidoseUser, ...] = ()  # Multidosebruker
    search_status: Coded | None = None  # Status (why the search found nothing)


@dataclass(frozen=True)
class MedicationsInUse:
    """M912 Nedlasting av PLL (varer i bruk): the patient's prescriptions and multidose responsibility.

    2014-01-21 calls the patient Multidosepasient, 2018-07-01 Pasient (and adds AndreFnr)."""

    envelope: Envelope
    version: str  # the namespace the message was read in (written back in the same)
    patient: MultidoseUser  # Multidosepasient / Pasient: Fnr, Multidoselege, Multidoseapotek
    ref_msg_id: str | None = None  # RefMsgId
    other_fnrs: tuple[str, ...] = ()  # AndreFnr (2018-07-01)
    prescriptions: tuple[PrescriptionInfo, ...] = ()  # m92:Reseptinfo
    lists: tuple[bytes, ...] = ()  # VarerIBrukB64 (at most 3): the lists in use, decoded, kept as bytes


@dataclass(frozen=True)
class CoPayment:
    """m94:Egenandel: what the patient has paid in one co-payment period."""

    period_start: date  # StartEgenandelsperiode
    paid: Quantity  # BetaltEgenandel (kith:MO: amount and currency)


@dataclass(frozen=True)
class Download:
    """M94 Nedlasting av resept: RF hands a prescription to the pharmacy; its M1 follows base64-encoded in
    a Document of its own, like in the M96."""

    envelope: Envelope
    status: Coded  # Status (E ekspederbar, ...)
    prescription: Prescription | None = None  # the embedded M1
    application_sent: date | None = None  # DatoSoknadSendtSLV
    application_answered: date | None = None  # SvarSLVDato
    exemption_granted: bool | None = None  # InnvligetGodkjFritak
    application_status: Coded | None = None  # StatusSoknadSlv
    co_payments: tuple[CoPayment, ...] = ()  # Egenandel (four or none)


@dataclass(frozen=True)
class Consent:
    """M241 Samtykkeregistrering (abonnement): the patient consents to (or withdraws) a subscription."""

    envelope: Envelope
    given_by: Coded  # SamtykkeGittAv (2 pasienten, stilltiende samtykke, ...)
    valid_until: date  # SamtykkeTil
    kind: Coded  # TypeSamtykke (1 samtykke for utleveringsmelding, ...)
    value: Coded | None = None  # Samtykkeverdi (1 ja, 2 nei: registration or withdrawal)


@dataclass(frozen=True)
class ConsentReply:
    """M242 Svar samtykke: RF's answer to an M241 (`envelope.conversation_ref` names the M241)."""

    envelope: Envelope
    answer: Coded  # Svar (1 registrert, ...)
    reason: Coded | None = None  # Begrunnelse
