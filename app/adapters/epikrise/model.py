"""The Epikrise model: one frozen dataclass tree for versions 1.0, 1.1 and 1.2 (the differences are in the
XML only). Persons, organisations and coded values are the KITH adapter's (`app.adapters.kith.model`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from app.adapters.kith.model import (
    Attachment,
    Coded,
    HealthProfessional,
    LabResult,
    MessageKind,
    Organisation,
    Patient,
    Quantity,
)

NS_V1_0 = "http://www.kith.no/xmlstds/epikrise"
NS_V1_1 = "http://www.kith.no/xmlstds/epikrise/2006-09-23"
NS_V1_2 = "http://www.kith.no/xmlstds/epikrise/2012-02-15"


class EpikriseVersion(StrEnum):
    V1_0 = "1.0"
    V1_1 = "1.1"
    V1_2 = "1.2"


VERSIONS = {NS_V1_0: EpikriseVersion.V1_0, NS_V1_1: EpikriseVersion.V1_1, NS_V1_2: EpikriseVersion.V1_2}
NAMESPACES = {v: ns for ns, v in VERSIONS.items()}
MIG_VERSIONS = {
    EpikriseVersion.V1_0: "v1.0 2001-03-28",
    EpikriseVersion.V1_1: "v1.1 2006-09-23",
    EpikriseVersion.V1_2: "v1.2 2012-02-15",
}
TYPE = Coded(code="EPIKRISE", display="Epikrise")


@dataclass(frozen=True)
class Modifier:
    """CodedDescr/Modifier: e.g. Name S (ICD-10 stjernekode) with the star code as Value."""

    name: Coded
    value: Coded


@dataclass(frozen=True)
class DiagnosisItem:
    """InfItem with Observation/CodedDescr: Type H hoveddiagnose, B bidiagnose (Volven 8233)."""

    type: Coded
    concept: Coded  # ICD-10 (7110) or ICPC-2 (7170)
    modifiers: tuple[Modifier, ...] = ()
    description: str | None = None  # Observation/Description beside the code (XHTML or text)
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class MedicationItem:
    """InfItem with Medication (Type MEDB): a medicine the hospital proposes for the medication list."""

    type: Coded
    drug: Coded  # DrugId (ATC 7180, or free text in OT)
    status: Coded | None = None  # Volven 7420-style use status (6 Benyttes regelmessig ...)
    dosage_coded: Coded | None = None
    form: Coded | None = None
    route: Coded | None = None
    unit_dose: Quantity | None = None
    dosage_text: str | None = None
    comment: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class TextItem:
    """InfItem with Observation/Description: CAVE, FUNN, ANAM ... (the text as XHTML markup or plain)."""

    type: Coded
    description: str | None = None
    comment: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class ResultEntry:
    """InfItem with ResultItem: an investigation result (a lab value: NLK 7280 ...); `lab` = InfItem/Origin."""

    type: Coded
    result: LabResult
    start: datetime | None = None
    end: datetime | None = None
    lab: Organisation | None = None


@dataclass(frozen=True)
class ResultGroup:
    """A nested Event holding results: the XML's own grouping of them (e.g. one set of blood samples)."""

    results: tuple[ResultEntry, ...]
    start: datetime | None = None  # ReportedEvent
    end: datetime | None = None
    kind: Coded | None = None  # Event/ServType
    specialty: Coded | None = None  # Service/MedSpecialty


@dataclass(frozen=True)
class TextPart:
    """Comment: a heading (Volven 8311: AI, FO, HJ, VU, OP planer for videre oppfølging, SY, IP) and text."""

    heading: Coded | None = None
    text: str | None = None


@dataclass(frozen=True)
class Stay:
    """Event/ReportedEvent: the stay or contact the summary is about."""

    start: datetime | None = None
    end: datetime | None = None
    kind: Coded | None = None  # Event/ServType
    outcome: Coded | None = None  # AdmOutcome (utskrevet til ...)
    category: Coded | None = None  # Service/AdmCat (Volven 8240: 1 heldøgn, 2 dag, 3 poliklinisk)
    specialty: Coded | None = None  # Service/MedSpecialty
    diagnoses: tuple[DiagnosisItem, ...] = ()
    texts: tuple[TextItem, ...] = ()
    medications: tuple[MedicationItem, ...] = ()
    comments: tuple[TextPart, ...] = ()
    results: tuple[ResultEntry, ...] = ()  # InfItem/ResultItem directly in the stay's Event
    result_groups: tuple[ResultGroup, ...] = ()  # nested Events with results


@dataclass(frozen=True)
class RelatedReferral:
    """ServReq: the referral the summary answers."""

    kind: Coded | None = None
    issued: datetime | None = None
    content_type: Coded | None = None  # MsgDescr (CS in 1.2, text in 1.0/1.1: kept in original_text)
    id: str | None = None
    diagnoses: tuple[Coded, ...] = ()


@dataclass(frozen=True)
class Responsible:
    """RelServProvider (AHP ansvarlig helsepersonell) or Patient/PatRelHCP (HHE, FLE fastlege ...)."""

    relation: Coded
    professional: HealthProfessional


@dataclass(frozen=True)
class Epikrise:
    version: EpikriseVersion
    kind: MessageKind  # ServRprt/ServType: N new, M change, C cancellation
    msg_id: str
    generated: datetime
    issued: datetime
    sender: Organisation  # ServProvider: the hospital (department, person)
    receiver: Organisation  # Requester: the GP (or whoever asked)
    patient: Patient
    document_id: str | None = None  # ServProvId: the same in N, M and C
    msg_type: Coded = TYPE
    processing_status: Coded | None = None  # Message/Status (1.2)
    approved: datetime | None = None  # ApprDate
    report_status: Coded | None = None  # ServRprt/Status (F endelig, ...)
    description: str | None = None  # ServRprt/MsgDescr ("Sykehusepikrise")
    referrals: tuple[RelatedReferral, ...] = ()
    stays: tuple[Stay, ...] = ()
    patient_relations: tuple[Responsible, ...] = ()  # Patient/PatRelHCP
    precautions: tuple[str, ...] = ()  # Patient/PatientPrecaution/Precaution
    copy_to: tuple[Organisation, ...] = ()  # CopyDest
    responsible: tuple[Responsible, ...] = ()  # RelServProvider
    attachments: tuple[Attachment, ...] = ()  # RefDoc
    source: bytes | None = field(default=None, compare=False, repr=False)  # the XML as received

    @property
    def key_document_id(self) -> str:
        """What a change and a cancellation repeat: ServProvId, else (nothing to change) the MsgId."""
        return self.document_id or self.msg_id
