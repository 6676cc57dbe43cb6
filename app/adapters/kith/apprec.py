"""AppRec 1.0 (`.../apprec/2004-11-21`) and 1.1 (`.../apprec/2012-02-15`): build receipts, parse receipts.

A receipt answers one received message: status (Volven 8258), errors (Volven 8221, the detail text in the
CV's OT attribute), OriginalMsgId (type, GenDate, MsgId of the original) and the original's sender and
receiver swapped. The two versions differ only in namespace and MIGversion for everything built here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lxml import etree

from app.adapters.kith import _xml as x
from app.adapters.kith.errors import DESCRIPTIONS, AppRecError, KithError, norwegian
from app.adapters.kith.model import (
    OID_APPREC_ERROR,
    Coded,
    HealthProfessional,
    HumanName,
    Ident,
    Organisation,
    Referral,
)
from app.adapters.kith.msghead import MsgHead

NS_V1_0 = "http://www.kith.no/xmlstds/apprec/2004-11-21"
NS_V1_1 = "http://www.kith.no/xmlstds/apprec/2012-02-15"


APPREC_TYPE = Coded(code="APPREC", display="Applikasjonskvittering")


class AppRecVersion(StrEnum):
    V1_0 = "1.0"
    V1_1 = "1.1"


_NS = {AppRecVersion.V1_0: NS_V1_0, AppRecVersion.V1_1: NS_V1_1}
_MIG = {AppRecVersion.V1_0: "1.0 2004-11-21", AppRecVersion.V1_1: "v1.1 2012-02-15"}


class AppRecStatus(StrEnum):
    """Volven 8258 Status for mottak av melding."""

    OK = "1"
    REJECTED = "2"
    OK_PARTIAL_ERROR = "3"


STATUS_DISPLAY = {
    AppRecStatus.OK: "OK",
    AppRecStatus.REJECTED: "Avvist",
    AppRecStatus.OK_PARTIAL_ERROR: "OK, feil i delmelding",
}


@dataclass(frozen=True)
class AppRecErrorItem:
    code: str  # Volven 8221
    description: str | None = None  # DN
    details: str | None = None  # OT: free text; callers must keep patient data out of it

    @classmethod
    def of(cls, code: AppRecError, details: str | None = None) -> AppRecErrorItem:
        return cls(code=code.value, description=DESCRIPTIONS[code], details=details)

    @classmethod
    def from_error(cls, error: KithError) -> AppRecErrorItem:
        """The error with its text in Norwegian (the receipt goes to a Norwegian sender)."""
        return cls.of(error.code, norwegian(error))


@dataclass(frozen=True)
class ReceivedMessage:
    """What a receipt needs to know about the message it answers."""

    msg_type: Coded
    issue_date: datetime  # the original's GenDate
    msg_id: str
    sender: Organisation
    receiver: Organisation

    @classmethod
    def from_msghead(cls, head: MsgHead) -> ReceivedMessage:
        return cls(head.msg_type, head.gen_date, head.msg_id, head.sender, head.receiver)

    @classmethod
    def from_referral(cls, ref: Referral) -> ReceivedMessage:
        return cls(ref.message_type, ref.generated, ref.msg_id, ref.sender, ref.receiver)


@dataclass(frozen=True)
class AppRec:
    version: AppRecVersion
    id: str
    gen_date: datetime
    status: AppRecStatus
    sender: Organisation
    receiver: Organisation
    original_msg_type: Coded
    original_issue_date: datetime
    original_id: str
    errors: tuple[AppRecErrorItem, ...] = ()
    msg_type: Coded = APPREC_TYPE
    software_name: str | None = None
    software_version: str | None = None


# --- building -----------------------------------------------------------------------------------------------


def _put_ids(el: etree._Element, ns: str, idents: tuple[Ident, ...]) -> tuple[Ident, ...]:
    """Write Id/TypeId of the first identifier; return the rest (AdditionalId comes later in Inst)."""
    if idents:
        x.sub(el, ns, "Id", idents[0].id)
        x.put_coded(el, ns, "TypeId", idents[0].type, cv=False)
    return idents[1:]


def _put_additional(el: etree._Element, ns: str, idents: tuple[Ident, ...]) -> None:
    for ident in idents:
        add = x.sub(el, ns, "AdditionalId")
        x.sub(add, ns, "Id", ident.id)
        x.put_coded(add, ns, "Type", ident.type, cv=False)


def _name(hp: HealthProfessional) -> str | None:
    n = hp.name
    return n.text or " ".join(p for p in (n.given, n.middle, n.family) if p) or None


def _put_party(parent: etree._Element, ns: str, tag: str, org: Organisation) -> None:
    hcp = x.sub(x.sub(parent, ns, tag), ns, "HCP")
    if org.name is None and not org.idents and org.professional is not None:
        prof = x.sub(hcp, ns, "HCProf")
        x.put_coded(prof, ns, "Type", org.professional.type, cv=False)
        x.opt_text(prof, ns, "Name", _name(org.professional))
        _put_additional(prof, ns, _put_ids(prof, ns, org.professional.idents))
        return
    inst = x.sub(hcp, ns, "Inst")
    x.opt_text(inst, ns, "Name", org.name)
    rest = _put_ids(inst, ns, org.idents)
    if org.sub_organisation is not None:
        dept = x.sub(inst, ns, "Dept")
        x.put_coded(dept, ns, "Type", org.sub_organisation.type, cv=False)
        x.opt_text(dept, ns, "Name", org.sub_organisation.name)
        _put_additional(dept, ns, _put_ids(dept, ns, org.sub_organisation.idents))
    _put_additional(inst, ns, rest)
    if org.professional is not None:
        person = x.sub(inst, ns, "HCPerson")
        x.opt_text(person, ns, "Name", _name(org.professional))
        _put_additional(person, ns, _put_ids(person, ns, org.professional.idents))


def build_apprec(apprec: AppRec) -> etree._Element:
    ns = _NS[apprec.version]
    if apprec.status is not AppRecStatus.OK and not apprec.errors:
        raise ValueError("a rejected or partly failed receipt needs at least one error")
    root = etree.Element(x.q(ns, "AppRec"), nsmap={None: ns})
    x.put_coded(root, ns, "MsgType", apprec.msg_type, cv=False)
    x.sub(root, ns, "MIGversion", _MIG[apprec.version])
    x.opt_text(root, ns, "SoftwareName", apprec.software_name)
    x.opt_text(root, ns, "SoftwareVersion", apprec.software_version)
    x.sub(root, ns, "GenDate", x.iso(apprec.gen_date))
    x.sub(root, ns, "Id", apprec.id)
    _put_party(root, ns, "Sender", apprec.sender)
    _put_party(root, ns, "Receiver", apprec.receiver)
    x.put_coded(
        root, ns, "Status", Coded(code=apprec.status.value, display=STATUS_DISPLAY[apprec.status]), cv=False
    )
    for error in apprec.errors:
        x.put_coded(
            root,
            ns,
            "Error",
            Coded(
                code=error.code,
                system=OID_APPREC_ERROR,
                display=error.description,
                original_text=error.details,
            ),
        )
    original = x.sub(root, ns, "OriginalMsgId")
    x.put_coded(original, ns, "MsgType", apprec.original_msg_type, cv=False)
    x.sub(original, ns, "IssueDate", x.iso(apprec.original_issue_date))
    x.sub(original, ns, "Id", apprec.original_id)
    return root


def receipt_for(
    received: ReceivedMessage,
    status: AppRecStatus,
    errors: tuple[AppRecErrorItem, ...] = (),
    *,
    version: AppRecVersion = AppRecVersion.V1_1,
    apprec_id: str | None = None,
    gen_date: datetime | None = None,
) -> AppRec:
    """The receipt for a received message: we (its receiver) send it back to its sender."""
    return AppRec(
        version=version,
        id=apprec_id or str(uuid.uuid4()),
        gen_date=gen_date or datetime.now().replace(microsecond=0),
        status=status,
        sender=received.receiver,
        receiver=received.sender,
        original_msg_type=received.msg_type,
        original_issue_date=received.issue_date,
        original_id=received.msg_id,
        errors=errors,
    )


def rejection_for(
    received: ReceivedMessage, error: KithError, *, version: AppRecVersion = AppRecVersion.V1_1
) -> AppRec:
    """Status 2 (avvist) with the KithError's code and safe message."""
    return receipt_for(received, AppRecStatus.REJECTED, (AppRecErrorItem.from_error(error),), version=version)


# --- parsing ------------------------------------------------------------------------------------------------


def _ids(el: etree._Element, ns: str) -> tuple[Ident, ...]:
    out = []
    own = x.ident_text(el, ns, "Id")
    if own:
        out.append(Ident(id=own, type=x.coded(el, ns, "TypeId") or Coded()))
    for add in x.children(el, ns, "AdditionalId"):
        out.append(Ident(id=x.required_text(add, ns, "Id"), type=x.coded(add, ns, "Type") or Coded()))
    return tuple(out)


def _person(el: etree._Element, ns: str) -> HealthProfessional:
    return HealthProfessional(
        name=HumanName(text=x.text(el, ns, "Name")), idents=_ids(el, ns), type=x.coded(el, ns, "Type")
    )


def _party(parent: etree._Element, ns: str, tag: str) -> Organisation:
    hcp = x.require(x.require(parent, ns, tag), ns, "HCP")
    inst = x.child(hcp, ns, "Inst")
    if inst is None:
        return Organisation(professional=_person(x.require(hcp, ns, "HCProf"), ns))
    dept = x.child(inst, ns, "Dept")
    person = x.child(inst, ns, "HCPerson")
    return Organisation(
        name=x.text(inst, ns, "Name"),
        idents=_ids(inst, ns),
        sub_organisation=None
        if dept is None
        else Organisation(
            name=x.text(dept, ns, "Name"), idents=_ids(dept, ns), type=x.coded(dept, ns, "Type")
        ),
        professional=None if person is None else _person(person, ns),
    )


def parse_apprec(root: etree._Element) -> AppRec:
    """Read an AppRec; it may be the root or wrapped (e.g. NAV's EI_fellesformat)."""
    el = root
    if x.local(root) != "AppRec" or x.namespace(root) not in (NS_V1_0, NS_V1_1):
        found = next(root.iter(x.q(NS_V1_1, "AppRec"), x.q(NS_V1_0, "AppRec")), None)
        if found is None:
            raise KithError(AppRecError.UNSUPPORTED_FORMAT, "no AppRec 1.0/1.1 element found")
        el = found
    ns = x.namespace(el) or ""
    version = AppRecVersion.V1_0 if ns == NS_V1_0 else AppRecVersion.V1_1
    status = x.coded(x.require(el, ns, "Status"))
    try:
        status_value = AppRecStatus((status.code if status else None) or "")
    except ValueError:
        raise KithError(AppRecError.NOT_VALID, "unknown AppRec status (Volven 8258)") from None
    original = x.require(el, ns, "OriginalMsgId")
    gen_date = x.to_datetime(x.text(el, ns, "GenDate"), "GenDate")
    issue_date = x.to_datetime(x.text(original, ns, "IssueDate"), "IssueDate")
    if gen_date is None or issue_date is None:
        raise KithError(AppRecError.NOT_VALID, "mandatory element <GenDate> or <IssueDate> is missing")
    errors = []
    for e in x.children(el, ns, "Error"):
        c = x.coded(e) or Coded()
        errors.append(AppRecErrorItem(code=c.code or "", description=c.display, details=c.original_text))
    return AppRec(
        version=version,
        id=x.required_text(el, ns, "Id"),
        gen_date=gen_date,
        status=status_value,
        sender=_party(el, ns, "Sender"),
        receiver=_party(el, ns, "Receiver"),
        original_msg_type=x.coded(original, ns, "MsgType") or Coded(),
        original_issue_date=issue_date,
        original_id=x.required_text(original, ns, "Id"),
        errors=tuple(errors),
        msg_type=x.coded(el, ns, "MsgType") or Coded(),
        software_name=x.text(el, ns, "SoftwareName"),
        software_version=x.text(el, ns, "SoftwareVersion"),
    )
