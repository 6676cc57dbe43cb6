"""Intermediate model of a KITH referral (Henvisning 1.0/1.1/2.0), independent of XML and of FHIR.

Frozen dataclasses only: the parsers in this package produce them, the serializers consume them, and the
FHIR mapping (elsewhere) reads them. Coded values keep the KITH triple `<X V= S= DN=>` as
(system OID, code, display); the OID is stored bare (no `urn:oid:` prefix) exactly as the XML carries it.
Timestamps are `datetime` (naive when the message has no offset, as KITH messages usually do), dates `date`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

# Volven code system OIDs used by the parsers and builders.
OID_PERSON_ID_TYPE = (
    "2.16.578.1.12.4.1.1.8116"  # identifikatortype for personer (FNR, DNR, HNR, HPR, HER ...)
)
OID_ORG_ID_TYPE = "2.16.578.1.12.4.1.1.9051"  # identifikatortype for organisasjoner (ENH, HER, RSH)
OID_ICD10 = "2.16.578.1.12.4.1.1.7110"
OID_ICPC2 = "2.16.578.1.12.4.1.1.7170"
OID_APPREC_STATUS = "2.16.578.1.12.4.1.1.8258"
OID_APPREC_ERROR = "2.16.578.1.12.4.1.1.8221"
OID_REFERRAL_STATUS = (
    "2.16.578.1.12.4.1.1.9148"  # "Henvisning (elektronisk melding)": TemaKodet of status messages
)

# Patient identifier types (Volven 8116) a referral may carry; anything else is rejected because the
# receiver could not identify the patient. HPR/HER are person ids for health personnel, not patients.
PATIENT_ID_TYPES = frozenset({"FNR", "DNR", "HNR", "FHN", "DUF", "PNR", "SEF", "DKF", "SSN", "XXX"})


class MessageKind(StrEnum):
    """ServType of the referral (Volven 8263-style N/M/C, as in the samples)."""

    NEW = "N"
    CHANGE = "M"
    CANCEL = "C"


class HenvisningVersion(StrEnum):
    V1_0 = "1.0"
    V1_1 = "1.1"
    V2_0 = "2.0"


@dataclass(frozen=True)
class Coded:
    """A KITH CS/CV value: V (code), S (code system OID), DN (display), OT (original text)."""

    code: str | None = None
    system: str | None = None
    display: str | None = None
    original_text: str | None = None


@dataclass(frozen=True)
class Ident:
    """An identifier and its type, e.g. ("13116900216", Coded("FNR", 8116-OID, "Fødselsnummer"))."""

    id: str
    type: Coded


@dataclass(frozen=True)
class Telecom:
    address: str  # URL form as KITH writes it: "tel:+4712345678", "mailto:..."
    type: Coded | None = None  # Volven 7 (MC mobil, HP hjem, WP arbeid ...)


@dataclass(frozen=True)
class Address:
    type: Coded | None = None  # H bostedsadresse, PST postadresse, WP arbeidsadresse ...
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    postbox: str | None = None
    county: Coded | None = None  # KITH "County": kommunenummer (Volven 3402) in practice
    country: Coded | None = None
    city_district: Coded | None = None  # bydel (Henvisning 1.x only)


@dataclass(frozen=True)
class HumanName:
    family: str | None = None
    given: str | None = None
    middle: str | None = None
    text: str | None = None  # unstructured name (Henvisning 1.x HCProf/HCPerson "Name") when not split


@dataclass(frozen=True)
class HealthProfessional:
    name: HumanName = HumanName()
    idents: tuple[Ident, ...] = ()  # HPR-nummer, HER-id (Volven 8116)
    type: Coded | None = None  # helsepersonellkategori (LE lege, SP sykepleier, TL tannlege ...)
    role_to_patient: Coded | None = None  # Volven 9034
    address: Address | None = None
    telecoms: tuple[Telecom, ...] = ()

    def ident(self, type_code: str) -> str | None:
        return next((i.id for i in self.idents if i.type.code == type_code), None)


def _name_key(name: HumanName) -> tuple[str, ...] | None:
    """A person's name for comparison: family and given (or the unsplit text), case and spacing ignored."""
    parts = (name.family, name.given) if name.family or name.given else (name.text,)
    key = tuple(" ".join((p or "").casefold().split()) for p in parts)
    return key if any(key) else None


def same_person(a: HealthProfessional, b: HealthProfessional) -> bool:
    """Whether two mentions of health personnel name the same person: they share an identifier, or they
    carry no conflicting identifier (two different values of one type) and have the same name. Without a
    name on either side and no shared identifier they are not taken to be the same."""
    if set(a.idents) & set(b.idents):
        return True
    for i in a.idents:
        other = b.ident(i.type.code) if i.type.code is not None else None
        if other is not None and other != i.id:
            return False
    key = _name_key(a.name)
    return key is not None and key == _name_key(b.name)


@dataclass(frozen=True)
class Organisation:
    """A MsgHead Organisation (or Henvisning 1.x Inst): HER-id/orgnr, optional department and person."""

    name: str | None = None
    idents: tuple[Ident, ...] = ()  # HER, ENH (organisasjonsnummer), RSH (Volven 9051)
    type: Coded | None = None
    address: Address | None = None
    telecoms: tuple[Telecom, ...] = ()
    sub_organisation: Organisation | None = None  # department / avdeling
    professional: HealthProfessional | None = None

    def ident(self, type_code: str) -> str | None:
        return next((i.id for i in self.idents if i.type.code == type_code), None)


@dataclass(frozen=True)
class Patient:
    idents: tuple[Ident, ...]
    name: HumanName = HumanName()
    birth_date: date | None = None
    death_date: date | None = None
    sex: Coded | None = None  # Volven 3101 (1 mann, 2 kvinne, 9 ikke spesifisert)
    nationality: Coded | None = None
    address: Address | None = None
    telecoms: tuple[Telecom, ...] = ()
    marital_status: Coded | None = None  # po:TilleggsopplysningPasient/SivilStatus (2.0)
    lives_alone: bool | None = None  # po:TilleggsopplysningPasient/BorAlene (2.0)
    language: Coded | None = None  # po:TilleggsopplysningPasient/Sprak (2.0)
    receives_municipal_services: bool | None = None  # po:.../MottarKommunaleTjenester (2.0)
    additional_info_note: str | None = None  # po:TilleggsopplysningPasient/Merknad (2.0)

    def ident(self, type_code: str) -> str | None:
        return next((i.id for i in self.idents if i.type.code == type_code), None)


@dataclass(frozen=True)
class RelatedPerson:
    """Pårørende/foresatt (po:ParorendeForesatt)."""

    name: HumanName = HumanName()
    relationship: Coded | None = None  # Slektskap (Volven 9033)
    care_function: Coded | None = None  # Omsorgsfunksjon
    next_of_kin: bool | None = None  # NarmesteParorende (2.0)
    minor_birth_year: int | None = None  # FodselsarMindrearigParorende (2.0): a minor relative's birth year
    idents: tuple[Ident, ...] = ()
    address: Address | None = None
    telecoms: tuple[Telecom, ...] = ()
    note: str | None = None


class ProfessionalRole(StrEnum):
    """Where a related professional travels in the XML (so each version can write it back)."""

    PATIENT_RELATION = "PatRelHCP"  # 1.x: Relation HHE henvisende helsepersonell, FLE fastlege ...
    CONTACT = "KontaktpersonHelsepersonell"  # 2.0
    REPORT_RESPONSIBLE = "AnsvarForRapport"  # 2.0: TypeRelasjon (Volven 8254), e.g. HHE


@dataclass(frozen=True)
class RelatedProfessional:
    role: ProfessionalRole
    professional: HealthProfessional
    relation: Coded | None = None
    approved_date: date | None = None  # AnsvarForRapport/GodkjentDato
    note: str | None = None


@dataclass(frozen=True)
class InterpreterNeed:
    """Assisted communication (po:AssistertKommunikasjon)."""

    language: Coded | None = None  # BehovTolkSprak
    person: HumanName | None = None  # PersonTolkebehov: who needs the interpreter, if not the patient
    hearing_impaired: bool | None = None
    visually_impaired: bool | None = None
    note: str | None = None
    preferred_interpreter: HumanName | None = None  # PreferertTolk (2.0)
    ended: date | None = None  # BehovOpphortDato (2.0): the need ended


@dataclass(frozen=True)
class ContactPerson:
    """po:PasientrelatertKontaktperson (2.0): someone around the patient who is neither next of kin nor
    health personnel, e.g. a teacher or a case worker at NAV."""

    name: HumanName = HumanName()  # Referanseperson (fk1:Person)
    idents: tuple[Ident, ...] = ()
    address: Address | None = None
    telecoms: tuple[Telecom, ...] = ()
    position: str | None = None  # StillingRolle
    workplace: str | None = None  # Arbeidssted
    note: str | None = None  # Merknad


@dataclass(frozen=True)
class AssociatedUnit:
    """po:TilknyttetEnhet (2.0): a unit the patient is associated with (a nursing home, home care ...)."""

    organisation: Organisation  # Kontaktenhet (fk1:Organisation, hierarchical, top level first)
    note: str | None = None


@dataclass(frozen=True)
class SentDocument:
    """po:SendtDokument (2.0): whether another relevant document was (or was not) sent separately."""

    information: Coded  # Opplysning: which document (e.g. Volven 8329)
    sent: bool  # JaNei
    date: date | None = None  # DatoSendt
    recipient_type: Coded | None = None  # TypeMottaker
    recipient_name: str | None = None  # NavnMottaker
    note: str | None = None


@dataclass(frozen=True)
class MedicationReview:
    """po:Legemiddelgjennomgang (2.0): when the medicines were last reviewed and reconciled."""

    reviewed: date | None = None  # DatoLegemiddelgjennomgang
    reconciled: date | None = None  # DatoSamstemming
    note: str | None = None


@dataclass(frozen=True)
class ReferralConsent:
    """Consent (2.0 Henvisning/Consent): who consented to the referral, with the status as coded."""

    status: Coded  # ConsentStatus
    date: date | None = None  # ConsentDate
    note: str | None = None  # Merknad
    given_by: str | None = None  # GivenBy


@dataclass(frozen=True)
class Quantity:
    value: float | None = None
    unit: str | None = None


@dataclass(frozen=True)
class Medication:
    drug: Coded  # DrugId (Volven 7180 ATC / FEST), OT carries free-text drug names
    status: Coded | None = None
    unit_dose: Quantity | None = None
    dosage_text: str | None = None
    comment: str | None = None


class ResultKind(StrEnum):
    """Which form a ResultItem's value takes (the XML element of the choice)."""

    TEXT = "TextResult"
    INTERVAL = "Interval"
    DATE = "DateResult"
    NUMERIC = "NumResult"


@dataclass(frozen=True)
class LabResult:
    """InfItem/ResultItem: an investigation result (undersøkelsesresultat), e.g. a lab value."""

    investigation: Coded  # ClinInv/Id (e.g. NLK, Volven 7280)
    kind: ResultKind
    specs: tuple[Coded, ...] = ()  # ClinInv/Spec
    value: Quantity | None = None  # NumResult/NumResultValue
    comparator: Coded | None = None  # NumResult/ArithmeticComp (<, >, ...)
    low: Quantity | None = None  # Interval/Low
    high: Quantity | None = None  # Interval/High
    date_value: datetime | None = None  # DateResult/DateResultValue
    text: TextSection | None = None  # TextResult/Result (Heading, TextResultValue, TextCode)
    service_type: Coded | None = None  # ServType (N/M/C of the result)
    investigation_date: datetime | None = None  # InvDate
    comment: str | None = None
    deviation: Coded | None = None  # DevResultInd (avvikende resultat)


@dataclass(frozen=True)
class ClinicalItem:
    """InfItem: sykehistorie (ANAM), funn (FUNN), legemidler (MEDB), cave (CAVE) ... as text or medication."""

    type: Coded
    description: str | None = None
    comment: str | None = None
    medication: Medication | None = None
    start: datetime | None = None
    end: datetime | None = None
    result: LabResult | None = None  # ResultItem (instead of Observation/Medication)


@dataclass(frozen=True)
class Precaution:
    """PatientPrecaution: a precaution (e.g. pregnancy, infection) and the period it applies to."""

    text: str
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class TextSection:
    """ReasonAsText / Comment: heading (Volven 8231 for reasons) + free text + optional codes."""

    heading: Coded | None = None
    text: str | None = None
    codes: tuple[Coded, ...] = ()


@dataclass(frozen=True)
class Diagnosis:
    """Henvisningsdiagnose; the first one is the main diagnosis. ICD-10 (7110) or ICPC-2 (7170)."""

    concept: Coded

    @property
    def code_system_name(self) -> str | None:
        return {OID_ICD10: "ICD-10", OID_ICPC2: "ICPC-2"}.get(self.concept.system or "")


@dataclass(frozen=True)
class RequestedService:
    service_type: Coded | None = None  # ReqServ/ServType
    priority: Coded | None = None  # Volven 8303-style (Henvisning 1.x numeric, 2.0 letters in samples)
    requested_date: date | None = None
    comment: str | None = None


@dataclass(frozen=True)
class Attachment:
    """A RefDoc: inline base64 content, or a file reference (e.g. another part of the same delivery)."""

    msg_type: Coded  # A vedlegg, XML instans ...
    mime_type: str | None = None
    description: str | None = None
    issue_date: datetime | None = None
    id: str | None = None
    compression: Coded | None = None
    content_base64: str | None = None  # kept encoded: decoding is the consumer's choice, and size bounded
    file_reference: str | None = None


@dataclass(frozen=True)
class AssessmentDate:
    """VurderingAvHenvisning/DatoMottakOgVurdering: a typed date (received, assessed, deadline ...)."""

    type: Coded
    date: date


@dataclass(frozen=True)
class RightsAssessment:
    """VurderingAvHenvisning/Opplysninger: the rettighetsvurdering carried with a viderehenvisning."""

    right_to_care: bool  # RettTilHelsehjelp: right to necessary specialist care
    outcome: Coded  # UtfallAvVurdering
    pathway_id: str  # ForlopsId
    free_hospital_choice: bool | None = None  # FrittSykehusvalg
    waiting_end_code: Coded | None = None  # VentetidSluttkode


@dataclass(frozen=True)
class CancerPathway:
    code: Coded  # Pakkeforlopskode
    note: str | None = None


@dataclass(frozen=True)
class Forwarding:
    """Viderehenvisning data (Henvisning 2.0, type HENVISNING_VIDERE)."""

    dates: tuple[AssessmentDate, ...] = ()
    assessment: RightsAssessment | None = None
    pathways: tuple[CancerPathway, ...] = ()

    def date_of(self, type_code: str) -> date | None:
        return next((d.date for d in self.dates if d.type.code == type_code), None)


@dataclass(frozen=True)
class OriginalReference:
    """Reference to earlier messages (MsgHead ConversationRef): for changes, cancellations and forwarding."""

    parent_id: str  # RefToParent: the message this one changes/cancels/forwards
    conversation_id: str  # RefToConversation: the first referral of the conversation


@dataclass(frozen=True)
class Referral:
    version: HenvisningVersion  # the version the message was parsed from (or is to be written as)
    kind: MessageKind
    msg_id: str
    message_type: Coded  # HENVISNING_NYTILSTAND / HENVISNING_VIDERE (2.0), "H"/"HENVISNING" (1.x)
    generated: datetime  # GenDate
    document_id: str  # ServReq/Id (1.x), Henvisning/DocumentId (2.0)
    issued: datetime  # IssueDate
    patient: Patient
    sender: Organisation  # referring organisation (Requester 1.x, MsgHead Sender 2.0) with its person
    receiver: Organisation  # ServProvider (1.x), MsgHead Receiver (2.0), with department
    requested_service: RequestedService | None = None
    content_type: Coded | None = (
        None  # MsgDescr (1.x) / po:TypeInnholdIMelding/TypeInnhold (2.0), Volven 8455
    )
    content_type_note: str | None = None
    request_comment: str | None = None  # ReqComment: e.g. why it is changed or cancelled
    reasons: tuple[TextSection, ...] = ()
    diagnoses: tuple[Diagnosis, ...] = ()
    clinical_items: tuple[ClinicalItem, ...] = ()
    comments: tuple[TextSection, ...] = ()
    precautions: tuple[Precaution, ...] = ()  # PatientPrecaution
    related_persons: tuple[RelatedPerson, ...] = ()
    professionals: tuple[RelatedProfessional, ...] = ()
    interpreter_needs: tuple[InterpreterNeed, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    original: OriginalReference | None = None
    forwarding: Forwarding | None = None
    processing_status: Coded | None = None  # Message/Status (1.x: TEST/PROD)
    payment_category: Coded | None = None  # PaymentCat (betalingskategori)
    basis_for_health_services: Coded | None = None  # BasisForHealthServices (grunnlag for helsetjenester)
    associated_units: tuple[AssociatedUnit, ...] = ()  # po:TilknyttetEnhet (2.0)
    sent_documents: tuple[SentDocument, ...] = ()  # po:SendtDokument (2.0)
    contact_persons: tuple[ContactPerson, ...] = ()  # po:PasientrelatertKontaktperson (2.0)
    medication_review: MedicationReview | None = None  # po:Legemiddelgjennomgang (2.0)
    consents: tuple[ReferralConsent, ...] = ()  # Consent (2.0)

    @property
    def referrer(self) -> HealthProfessional | None:
        """The referring professional, merging the ids the two places of the message carry.

        1.x puts the HER-id under Requester/Inst/HCPerson and the HPR number under PatRelHCP(HHE); 2.0 puts
        the HER-id under MsgHead Sender and the HPR number under po:AnsvarForRapport(HHE). They are merged
        only when they are the same person (`same_person`); a referral signed by one doctor and sent by
        another has the signer (HHE) as its referrer.
        """
        hhe = next(
            (
                p.professional
                for p in self.professionals
                if p.relation is not None and p.relation.code == "HHE"
            ),
            None,
        )
        sender_person = self.sender.professional
        if hhe is None:
            return sender_person
        if sender_person is None or not same_person(hhe, sender_person):
            return hhe
        extra = tuple(i for i in sender_person.idents if i not in hhe.idents)
        return HealthProfessional(
            name=hhe.name,
            idents=hhe.idents + extra,
            type=hhe.type,
            role_to_patient=hhe.role_to_patient,
            address=hhe.address or sender_person.address,
            telecoms=hhe.telecoms or sender_person.telecoms,
        )


M = TypeVar("M")


@dataclass(frozen=True)
class Sent(Generic[M]):
    """A message sent from here: its outgoing record (a Communication), the message read back from the
    record, and its XML as sent (app/adapters/kith/outgoing.read_sent)."""

    record: dict[str, Any]
    message: M
    xml: bytes
