"""The PLO messages as read: frozen dataclasses, independent of XML and of FHIR.

One `PloMessage` for every family; `family` says which business document it carried, `version` which
schema (1.5, 1.6, 2.0, by namespace). Pasientlogistikk is read into `events` (TidsfestetHendelse) and
`discharged_to`; the reports (Innleggelsesrapport, Utskrivningsrapport, Helseopplysninger ...) into
`sections` (each top-level part of the document: heading, readable text and its `fields`, the element tree
as read) and the structured parts (`diagnoses` and `functions` are kept only structured, not in the
fields, nor are the existing services (EksisterendeTjeneste) and the medicines (Legemiddelinfo); the
needed services, `events` and the people are read from the fields).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from app.adapters.kith.model import (
    Coded,
    HealthProfessional,
    Organisation,
    OriginalReference,
    Patient,
    RelatedPerson,
)

OID_EVENT = "2.16.578.1.12.4.1.1.9121"  # Volven 9121 Hendelsekode (pasientlogistikk)


class PloVersion(StrEnum):
    V1_5 = "1.5"
    V1_6 = "1.6"
    V2_0 = "2.0"


class Family(StrEnum):
    LOGISTICS = "pasientlogistikk"
    ADMISSION_REPORT = "innleggelsesrapport"
    DISCHARGE_REPORT = "utskrivningsrapport"  # TverrfagligEpikrise
    HEALTH_INFO_GP = "helseopplysninger-til-lege"
    HEALTH_INFO = (
        "helseopplysninger"  # HelseopplysningerVedSoknad (1.x), HelseopplysningerSaksbehandling (2.0)
    )
    MEDICAL_INFO = "medisinske-opplysninger"
    SERVICE_INFO = "orientering-om-tjenestetilbud"
    SUMMARY = "sammenfatning"  # 2.0

    @property
    def display(self) -> str:
        return _DISPLAY[self]

    @property
    def is_report(self) -> bool:
        return self is not Family.LOGISTICS


_DISPLAY = {
    Family.LOGISTICS: "Pasientlogistikk",
    Family.ADMISSION_REPORT: "Innleggelsesrapport",
    Family.DISCHARGE_REPORT: "Utskrivningsrapport",
    Family.HEALTH_INFO_GP: "Helseopplysninger til lege",
    Family.HEALTH_INFO: "Helseopplysninger",
    Family.MEDICAL_INFO: "Medisinske opplysninger",
    Family.SERVICE_INFO: "Orientering om tjenestetilbud",
    Family.SUMMARY: "Sammenfatning",
}


class Kind(StrEnum):
    """InformasjonOmForsendelsen/Forsendelsesstatus."""

    NEW = "N"
    CHANGE = "M"
    CANCEL = "C"


class Logistics(StrEnum):
    """The Pasientlogistikk message, by its element."""

    ADMITTED = "MeldingInnlagtPasient"
    DISCHARGE_READY = "MeldingUtskrivningsklarPasient"
    WITHDRAWN = "AvmeldingUtskrivningsklarPasient"
    DISCHARGED = "MeldingOmUtskrevetPasient"
    DEATH = "OrienteringOmDod"
    ANSWER = "TilbakemeldingUtskrivningsklarPasient"  # 2.0: the municipality's answer


# MsgHead Type of each logistics message (MeldingsVersjoner.xml); the 2.0 answer's is not in the reference
# data: LOG_TILBAKEMELDING is this service's name for it.
MESSAGE_TYPES = {
    Logistics.ADMITTED: Coded(code="LOG_INNLAGT", display="Melding om innlagt pasient"),
    Logistics.DISCHARGE_READY: Coded(
        code="LOG_UTSKRIVNINGSKLAR", display="Melding om utskrivningsklar pasient"
    ),
    Logistics.WITHDRAWN: Coded(code="LOG_AVMELDING", display="Avmelding av utskrivningsklar pasient"),
    Logistics.DISCHARGED: Coded(code="LOG_UTSKREVET", display="Melding om utskrevet pasient"),
    Logistics.DEATH: Coded(code="LOG_DOD", display="Orientering om dødsfall"),
    Logistics.ANSWER: Coded(code="LOG_TILBAKEMELDING", display="Tilbakemelding utskrivningsklar pasient"),
}


# MsgHead Type of each report (the official 1.6 samples)
REPORT_TYPES = {
    Family.ADMISSION_REPORT: Coded(code="INNLEGGELSESRAPPORT", display="Innleggelsesrapport"),
    Family.DISCHARGE_REPORT: Coded(code="UTSKRIVNINGSRAPPORT", display="Utskrivningsrapport"),
    Family.HEALTH_INFO_GP: Coded(code="HELSEOPPLYSNINGER_LEGE", display="Helseopplysninger til lege"),
    Family.HEALTH_INFO: Coded(code="HELSEOPPL_SOKNAD", display="Helseopplysninger"),
    Family.MEDICAL_INFO: Coded(code="MEDISINSKE_OPPLYSNINGER", display="Medisinske opplysninger"),
    Family.SERVICE_INFO: Coded(code="ORIENTERING_TJENESTETILBUD", display="Orientering om tjenestetilbud"),
}
# The 1.6 document element of each report (the root of the official samples, as the XSDs name it)
REPORT_DOCUMENTS = {
    Family.ADMISSION_REPORT: "Innleggelsesrapport",
    Family.DISCHARGE_REPORT: "TverrfagligEpikrise",
    Family.HEALTH_INFO_GP: "Konsultasjon",
    Family.HEALTH_INFO: "HelseopplysningerVedSoknad",
    Family.MEDICAL_INFO: "OverforingMedisinskeOpplysninger",
    Family.SERVICE_INFO: "OrienteringOmTjenestetilbud",
}


class EventCode(StrEnum):
    """Volven 9121 codes used by the clock."""

    ADMITTED = "1"
    DISCHARGED = "2"
    DISCHARGE_READY = "3"
    WITHDRAWN = "4"
    DEAD = "13"

    @property
    def coded(self) -> Coded:
        """As the samples write it (system and display)."""
        return Coded(code=self.value, system=OID_EVENT, display=_EVENT_DISPLAY[self])


_EVENT_DISPLAY = {
    EventCode.ADMITTED: "Pasient innlagt",
    EventCode.DISCHARGED: "Pasient utskrevet",
    EventCode.DISCHARGE_READY: "Pasient utskrivningsklar",
    EventCode.WITHDRAWN: "Avmelding av utskrivningsklar pasient",
    EventCode.DEAD: "Pasienten er død",
}


@dataclass(frozen=True)
class Event:
    """TidsfestetHendelse."""

    code: Coded | None
    time: datetime | date
    estimated: bool | None = None
    description: str | None = None
    remark: str | None = None


class UnbuildableError(ValueError):
    """The model cannot be written as PLO 1.6 (the reason names the part, never patient data)."""


@dataclass(frozen=True)
class Field:
    """One element of a report part as read: its namespace (a short key: `po`, `fk1`, `epj1`..`epj3`,
    `m1`, `doc` for the document's own; else the URI), local name, text and attributes (by name, sorted:
    their order carries nothing) and child elements, so the part can be written again in any version."""

    ns: str
    name: str
    text: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()
    children: tuple[Field, ...] = ()


@dataclass(frozen=True)
class Section:
    """A top-level part of a report: its element name, a heading, its readable text and its elements (one
    `Field` per element of the part; without the diagnoses and mapped functions, kept structured)."""

    element: str
    title: str
    text: str
    fields: tuple[Field, ...] = ()


@dataclass(frozen=True)
class Diagnosis:
    code: Coded
    main: bool | None = None
    description: str | None = None  # DiagnoseBeskrivelse


@dataclass(frozen=True)
class Medication:
    """epj3:Legemiddelinfo: ForenkletForskrivning and its Forskrivningsinfo (the simple prescription)."""

    name: str | None
    form: Coded | None = None
    strength: str | None = None  # Styrke "V U": "2.5 mg"
    dosage_text: str | None = None
    use: Coded | None = None  # Bruk: fast / behov
    start: datetime | date | None = None  # DoseringStarttidspunkt (kith:TS)
    remark: str | None = None
    multidose: Coded | None = None
    end: datetime | date | None = None  # DoseringSluttidspunkt
    status: Coded | None = None  # StatusTilForskrivningen
    prescription_id: str | None = None  # ReseptId
    prescriber: Field | None = None  # Forskriver (fk1:HealthcareProfessional), its elements as read
    usage_text: str | None = None  # BruksomradeTekst
    number: str | None = None  # Nr
    generic_name: str | None = None  # GeneriskNavn
    atc: Coded | None = None  # Atc
    not_with_other: bool | None = None  # SkalIkkeTasSammenMedAnnetLegemiddel
    component_id: str | None = None  # Legemiddelinfo@komponentID
    category: str | None = None  # Legemiddelinfo@m1:informasjonskategori


@dataclass(frozen=True)
class ContactPerson:
    """KontaktpersonHelsepersonell: a health professional to contact about the patient, and a note."""

    professional: HealthProfessional
    note: str | None = None


@dataclass(frozen=True)
class Function:
    """KartlagtFunksjon: a mapped function variable and its level."""

    variable: Coded
    level: Coded | None = None
    remark: str | None = None


@dataclass(frozen=True)
class Service:
    """A municipal service existing or asked for (EksisterendeTjeneste / TjenesteBehov); the rest are
    EksisterendeTjeneste's elements (a needed service is kept in its part's fields)."""

    type: Coded | None
    text: str | None
    existing: bool
    private: bool | None = None  # PrivatTjeneste (required for an existing one)
    provider: str | None = None  # TjenestenLevertAv
    info: str | None = None  # OpplysningerOmTjenesten
    amount: str | None = None  # AntallEnheter (xs:decimal, as written)
    unit: str | None = None  # Enhet
    start: date | None = None
    end: date | None = None
    remark: str | None = None


@dataclass(frozen=True)
class PloMessage:
    version: PloVersion
    family: Family
    kind: Kind
    msg_id: str
    msg_type: Coded
    gen_date: datetime
    sender: Organisation
    receiver: Organisation
    patient: Patient | None
    issue_date: datetime | None = None
    conversation: OriginalReference | None = None
    logistics: Logistics | None = None
    document: str | None = None  # the report's document element (Innleggelsesrapport, Konsultasjon ...)
    events: tuple[Event, ...] = ()
    discharged_to: tuple[Coded, ...] = ()  # UtskrevetTil: Uttilstand, UtTil
    responsible: HealthProfessional | None = None  # AnsvarForRapport/AnsvarligRapport
    approved: date | None = None  # AnsvarForRapport/GodkjentDato
    responsible_relation: Coded | None = None  # AnsvarForRapport/TypeRelasjon
    responsible_note: str | None = None  # AnsvarForRapport/Merknad
    contacts: tuple[ContactPerson, ...] = ()  # KontaktpersonHelsepersonell
    contact_units: tuple[Organisation, ...] = ()  # TilknyttetEnhet/Kontaktenhet
    related_persons: tuple[RelatedPerson, ...] = ()  # ParorendeForesatt
    sections: tuple[Section, ...] = ()
    diagnoses: tuple[Diagnosis, ...] = ()
    medications: tuple[Medication, ...] = ()
    functions: tuple[Function, ...] = ()
    services: tuple[Service, ...] = ()

    @property
    def conversation_id(self) -> str:
        """The first message of the conversation (RefToConversation), else this one: a change or a
        cancellation names the Ny it changes this way."""
        return self.conversation.conversation_id if self.conversation is not None else self.msg_id

    def event(self, code: EventCode) -> Event | None:
        return next((e for e in self.events if e.code is not None and e.code.code == code.value), None)
