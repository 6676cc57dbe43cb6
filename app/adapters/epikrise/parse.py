"""Epikrise 1.0, 1.1 and 1.2 (own `<Message>` root) → the model, by namespace.

The three versions share one structure: `Message/ServRprt` with the referral answered (`ServReq`), the stay
(`Event`), the patient, the hospital (`ServProvider`, the sender), copy receivers (`CopyDest`), the GP
(`Requester`, the receiver) and the responsible professionals (`RelServProvider`). Text parts
(Observation/Description, Comment/TextResultValue) are XHTML in practice: kept as the serialized
`<div xmlns="http://www.w3.org/1999/xhtml">`, or as plain text when they hold no markup.
"""

from __future__ import annotations

import copy
from datetime import datetime

from lxml import etree

from app.adapters.epikrise.model import (
    TYPE,
    VERSIONS,
    DiagnosisItem,
    Epikrise,
    MedicationItem,
    Modifier,
    RelatedReferral,
    Responsible,
    ResultEntry,
    ResultGroup,
    Stay,
    TextItem,
    TextPart,
)
from app.adapters.kith import _henv_common as c
from app.adapters.kith import _xml as x
from app.adapters.kith import henvisning_v1 as v1
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded, Organisation

XHTML = "http://www.w3.org/1999/xhtml"


FAMILY = "http://www.kith.no/xmlstds/epikrise"  # every version's namespace starts so


def is_epikrise(root: etree._Element) -> bool:
    """An own `Message` root in an Epikrise namespace, known or not (an unknown version is refused T10 by
    `parse_epikrise`, still answered to its sender)."""
    return x.local(root) == "Message" and (x.namespace(root) or "").startswith(FAMILY)


def rich_text(el: etree._Element | None) -> str | None:
    """An anyType text part: its XHTML `div` serialized (namespaces of the message left out), else its text."""
    if el is None:
        return None
    for child in el:
        if isinstance(child.tag, str) and x.namespace(child) == XHTML:
            div = copy.deepcopy(child)
            div.tail = None
            etree.cleanup_namespaces(div, top_nsmap={None: XHTML})
            return str(etree.tostring(div, encoding="unicode"))
    return el.text or ""


def _ts(el: etree._Element | None, ns: str, tag: str) -> datetime | None:
    return x.ts_attr(el, ns, tag)


def _responsible(el: etree._Element, ns: str) -> Responsible | None:
    hcp = x.require(el, ns, "HCP")
    prof = x.child(hcp, ns, "HCProf")
    if prof is None:  # an institution as the relation is not modelled
        return None
    person = v1._hcp_person(prof, ns, x.child(hcp, ns, "Address"))
    return Responsible(relation=x.coded(el, ns, "Relation") or Coded(), professional=person)


def _referral(el: etree._Element, ns: str) -> RelatedReferral:
    descr = x.child(el, ns, "MsgDescr")
    content_type = None
    if descr is not None:
        content_type = (
            x.coded(descr) if descr.get("V") or descr.get("DN") else Coded(display=descr.text or "")
        )
    return RelatedReferral(
        kind=x.coded(el, ns, "ServType"),
        issued=_ts(el, ns, "IssueDate"),
        content_type=content_type,
        id=x.ident_text(el, ns, "Id"),
        diagnoses=tuple(x.coded(d, ns, "Concept") or Coded() for d in x.children(el, ns, "Diagnosis")),
    )


def _medication(item: etree._Element, med: etree._Element, ns: str, item_type: Coded) -> MedicationItem:
    return MedicationItem(
        type=item_type,
        drug=x.coded(med, ns, "DrugId") or Coded(),
        status=x.coded(med, ns, "Status"),
        dosage_coded=x.coded(med, ns, "DosageCoded"),
        form=x.coded(med, ns, "Form"),
        route=x.coded(med, ns, "RouteOfAdm"),
        unit_dose=x.quantity(x.child(med, ns, "UnitDose")),
        dosage_text=x.text(med, ns, "DosageText"),
        comment=x.text(med, ns, "Comment"),
        start=_ts(item, ns, "StartDateTime"),
        end=_ts(item, ns, "EndDateTime"),
    )


def _result(item: etree._Element, result: etree._Element, ns: str, item_type: Coded) -> ResultEntry:
    origin = x.child(item, ns, "Origin")
    return ResultEntry(
        type=item_type,
        result=c.parse_result(result, ns, v2=False),
        start=_ts(item, ns, "StartDateTime"),
        end=_ts(item, ns, "EndDateTime"),
        lab=None if origin is None else v1._hcp(origin, ns, "Origin"),
    )


def _results(el: etree._Element, ns: str) -> tuple[ResultEntry, ...]:
    return tuple(
        _result(item, found, ns, x.coded(x.require(item, ns, "Type")) or Coded())
        for item in x.children(el, ns, "InfItem")
        if (found := x.child(item, ns, "ResultItem")) is not None
    )


def _group(el: etree._Element, ns: str) -> ResultGroup:
    """A nested Event: its results (anything else in it is named in the receipt: `unmapped_epikrise`)."""
    reported = x.child(el, ns, "ReportedEvent")
    return ResultGroup(
        results=_results(el, ns),
        start=_ts(reported, ns, "StartDateTime"),
        end=_ts(reported, ns, "EndDateTime"),
        kind=x.coded(el, ns, "ServType"),
        specialty=x.coded(x.child(el, ns, "Service"), ns, "MedSpecialty"),
    )


def _stay(el: etree._Element, ns: str) -> Stay:
    reported = x.child(el, ns, "ReportedEvent")
    service = x.child(el, ns, "Service")
    diagnoses: list[DiagnosisItem] = []
    texts: list[TextItem] = []
    medications: list[MedicationItem] = []
    for item in x.children(el, ns, "InfItem"):
        item_type = x.coded(x.require(item, ns, "Type")) or Coded()
        med = x.child(item, ns, "Medication")
        if med is not None:
            medications.append(_medication(item, med, ns, item_type))
            continue
        obs = x.child(item, ns, "Observation")
        if obs is None:  # ResultItem: read by `_results`
            continue
        start, end = _ts(item, ns, "StartDateTime"), _ts(item, ns, "EndDateTime")
        described = x.child(obs, ns, "CodedDescr")
        if described is not None:
            diagnoses.append(
                DiagnosisItem(
                    type=item_type,
                    concept=x.coded(described, ns, "Concept") or Coded(),
                    modifiers=tuple(
                        Modifier(
                            name=x.coded(m, ns, "Name") or Coded(), value=x.coded(m, ns, "Value") or Coded()
                        )
                        for m in x.children(described, ns, "Modifier")
                    ),
                    description=rich_text(x.child(obs, ns, "Description")),
                    start=start,
                    end=end,
                )
            )
        else:
            texts.append(
                TextItem(
                    type=item_type,
                    description=rich_text(x.child(obs, ns, "Description")),
                    comment=x.text(obs, ns, "Comment"),
                    start=start,
                    end=end,
                )
            )
    return Stay(
        start=_ts(reported, ns, "StartDateTime"),
        end=_ts(reported, ns, "EndDateTime"),
        kind=x.coded(el, ns, "ServType"),
        outcome=x.coded(el, ns, "AdmOutcome"),
        category=x.coded(service, ns, "AdmCat"),
        specialty=x.coded(service, ns, "MedSpecialty"),
        diagnoses=tuple(diagnoses),
        texts=tuple(texts),
        medications=tuple(medications),
        comments=tuple(
            TextPart(heading=x.coded(cm, ns, "Heading"), text=rich_text(x.child(cm, ns, "TextResultValue")))
            for cm in x.children(el, ns, "Comment")
        ),
        results=_results(el, ns),
        result_groups=tuple(_group(g, ns) for g in x.children(el, ns, "Event")),
    )


def parse_epikrise(root: etree._Element) -> Epikrise:
    """The model of an Epikrise 1.0/1.1/1.2; a KithError (Volven 8221 code) when it cannot be one."""
    ns = x.namespace(root) or ""
    if not is_epikrise(root) or ns not in VERSIONS:
        raise KithError(AppRecError.UNSUPPORTED_FORMAT, "not an Epikrise 1.0/1.1/1.2 (namespace or name)")
    rprt = x.require(root, ns, "ServRprt")
    generated = _ts(root, ns, "GenDate")
    issued = _ts(rprt, ns, "IssueDate")
    if generated is None or issued is None:
        raise KithError(AppRecError.NOT_VALID, "mandatory element <GenDate> or <IssueDate> is missing")
    patient_el = x.require(rprt, ns, "Patient", AppRecError.PATIENT_INFO_INSUFFICIENT)
    relations = (_responsible(r, ns) for r in x.children(patient_el, ns, "PatRelHCP"))
    responsible = (_responsible(r, ns) for r in x.children(rprt, ns, "RelServProvider"))
    return Epikrise(
        version=VERSIONS[ns],
        kind=c.parse_kind(rprt, ns),
        msg_id=x.required_text(root, ns, "MsgId"),
        generated=generated,
        issued=issued,
        sender=v1._hcp(x.require(rprt, ns, "ServProvider"), ns, "ServProvider"),
        receiver=v1._hcp(x.require(rprt, ns, "Requester", AppRecError.RECEIVER_UNKNOWN), ns, "Requester"),
        patient=v1._patient(patient_el, ns),
        document_id=x.ident_text(rprt, ns, "ServProvId") or None,
        msg_type=x.coded(root, ns, "Type") or TYPE,
        processing_status=x.coded(root, ns, "Status"),
        approved=_ts(rprt, ns, "ApprDate"),
        report_status=x.coded(rprt, ns, "Status"),
        description=x.text(rprt, ns, "MsgDescr"),
        referrals=tuple(_referral(r, ns) for r in x.children(rprt, ns, "ServReq")),
        stays=tuple(_stay(e, ns) for e in x.children(rprt, ns, "Event")),
        patient_relations=tuple(r for r in relations if r is not None),
        precautions=tuple(
            x.text(p, ns, "Precaution") or "" for p in x.children(patient_el, ns, "PatientPrecaution")
        ),
        copy_to=tuple(v1._hcp(cd, ns, "CopyDest") for cd in x.children(rprt, ns, "CopyDest")),
        responsible=tuple(r for r in responsible if r is not None),
        attachments=v1._attachments(rprt, ns),
    )


def lenient_envelope(root: etree._Element) -> tuple[str, datetime | None, Coded, Organisation | None] | None:
    """MsgId, GenDate, Type and sender (ServProvider) of an Epikrise that does not parse as a whole, for the
    refusal; None without a MsgId."""
    ns = x.namespace(root) or ""
    msg_id = x.ident_text(root, ns, "MsgId")
    if not msg_id:
        return None
    try:
        generated = _ts(root, ns, "GenDate")
    except KithError:
        generated = None
    provider = x.child(x.child(root, ns, "ServRprt"), ns, "ServProvider")
    try:
        sender = v1._hcp(provider, ns, "ServProvider") if provider is not None else None
    except KithError:
        sender = None
    return msg_id, generated, x.coded(root, ns, "Type") or TYPE, sender


# --- what the model does not hold ----------------------------------------------------------------------------

# For each element (by local name) whose children the parser reads: the children it maps (the shared parts
# as for a Henvisning 1.x). A child not listed is dropped on parse, and `unmapped_epikrise` names it: the
# receipt then says "OK with error in part" (status 3).
_SHARED = ("HCP", "Inst", "HCProf", "HCPerson", "Dept", "Address", "RefDoc", "PatRelHCP", "ClinInv")
_RESULT = ("ResultItem", "NumResult", "TextResult", "Result", "Interval", "DateResult")
_PARTY = frozenset({"Role", "ComMethod", "HCP"})  # Role and ComMethod have fixed values (README)
_MAPPED: dict[str, frozenset[str]] = {
    **{name: v1._MAPPED_V1[name] for name in (*_SHARED, *_RESULT)},
    "Message": frozenset({"Type", "MIGversion", "GenDate", "MsgId", "Status", "ServRprt"}),
    "ServRprt": frozenset(
        {"ServType", "IssueDate", "ApprDate", "Status", "MsgDescr", "ServProvId", "ServReq", "Event"}
        | {"Patient", "ServProvider", "CopyDest", "Requester", "RelServProvider", "RefDoc"}
    ),
    "ServReq": frozenset({"ServType", "IssueDate", "MsgDescr", "Id", "Diagnosis"}),
    "Diagnosis": frozenset({"Concept"}),
    # Id (1.0/1.1 only) numbered the Events for references inside the message, which 1.2 dropped
    "Event": frozenset({"ReportedEvent", "ServType", "AdmOutcome", "Id", "Service", "InfItem", "Comment"}),
    "ReportedEvent": frozenset({"StartDateTime", "EndDateTime"}),
    "Service": frozenset({"AdmCat", "MedSpecialty"}),
    "InfItem": frozenset({"ResultItem", "Medication", "Observation", "Type", "StartDateTime", "EndDateTime"})
    | {"Origin"},
    "Origin": frozenset({"HCP"}),
    "Observation": frozenset({"Description", "Comment", "CodedDescr"}),
    "CodedDescr": frozenset({"Concept", "Modifier"}),
    "Modifier": frozenset({"Name", "Value"}),
    "Medication": frozenset(
        {"DrugId", "DosageCoded", "Comment", "Status", "Form", "RouteOfAdm", "UnitDose", "DosageText"}
    ),
    "Comment": frozenset({"Heading", "TextResultValue"}),
    "Patient": frozenset(
        {"Sex", "DateOfBirth", "DateOfDeath", "Name", "OffId", "TypeOffId", "PatientPrecaution", "PatRelHCP"}
        | {"AdditionalId", "Address"}
    ),
    "PatientPrecaution": frozenset({"Precaution"}),
    "RelServProvider": frozenset({"Relation", "HCP"}),
    "ServProvider": _PARTY,
    "Requester": _PARTY,
    "CopyDest": frozenset({"HCP"}),
    "Content": frozenset({"Base64Container"}),  # other embedded content is not kept
}
# A nested Event (a group of results) holds only its times, kind, specialty and results.
_MAPPED_GROUP = {
    **_MAPPED,
    "Event": frozenset({"ReportedEvent", "ServType", "Id", "Service", "InfItem"}),
    "Service": frozenset({"MedSpecialty"}),
    "InfItem": frozenset({"ResultItem", "Type", "StartDateTime", "EndDateTime", "Origin"}),
}


def unmapped_epikrise(root: etree._Element) -> tuple[str, ...]:
    """Paths (element names only, never values) of the elements of an Epikrise that the model does not hold,
    each once: e.g. `ServRprt/Event/InfItem/ResultItem/DiagComment`."""
    ns = x.namespace(root) or ""
    found = [p for p in c.unmapped(root, _MAPPED) if p != "ServRprt/Event/Event"]
    for event in x.children(x.child(root, ns, "ServRprt"), ns, "Event"):
        for group in x.children(event, ns, "Event"):
            found += c.unmapped(group, _MAPPED_GROUP, "ServRprt/Event/Event")
    return tuple(dict.fromkeys(found))
