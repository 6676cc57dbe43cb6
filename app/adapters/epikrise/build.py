"""The model → an Epikrise 1.2 (`http://www.kith.no/xmlstds/epikrise/2012-02-15`), in the XSD's element order.

Text parts held as XHTML markup are parsed back with the hardened parser (they may come from a FHIR
client's narrative); plain text is written as text. Mandatory elements the model may lack (ServRprt/Status,
MsgDescr, Event/ServType, Medication/Status) get the neutral values named below.
"""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from app.adapters.epikrise.model import (
    MIG_VERSIONS,
    NS_V1_2,
    DiagnosisItem,
    Epikrise,
    EpikriseVersion,
    MedicationItem,
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
from app.adapters.kith import msghead
from app.adapters.kith.model import (
    Address,
    Coded,
    HealthProfessional,
    Ident,
    MessageKind,
    Organisation,
    Telecom,
)
from app.adapters.kith.xmlsafe import parse_xml

NS = NS_V1_2
FINAL = Coded(code="F", display="Endelig rapport")
NEW_EVENT = Coded(code="N", display="Ny")
STATUS_UNKNOWN = Coded(code="0", display="Ukjent")  # Medication/Status is mandatory


def _rich(parent: etree._Element, tag: str, value: str | None) -> None:
    if value is None:
        return
    el = x.sub(parent, NS, tag)
    if value.lstrip().startswith("<"):
        el.append(parse_xml(value.encode("utf-8")))
    else:
        el.text = value


def _ids(el: etree._Element, idents: tuple[Ident, ...]) -> list[Ident]:
    """Id and TypeId of the first identifier; the rest are AdditionalId, written by the caller in place."""
    if idents:
        x.sub(el, NS, "Id", idents[0].id)
        x.put_coded(el, NS, "TypeId", idents[0].type, cv=False)
    return list(idents[1:])


def _additional(el: etree._Element, idents: list[Ident]) -> None:
    for extra in idents:
        add = x.sub(el, NS, "AdditionalId")
        x.sub(add, NS, "Id", extra.id)
        x.put_coded(add, NS, "Type", extra.type, cv=False)


def _address(
    parent: etree._Element, address: Address | None, telecoms: tuple[Telecom, ...], default: str
) -> None:
    if address is None and not telecoms:
        return
    a = address or Address()
    el = x.sub(parent, NS, "Address")
    x.put_coded(el, NS, "Type", a.type or Coded(code=default), cv=False)
    x.opt_text(el, NS, "StreetAdr", a.street)
    x.opt_text(el, NS, "PostalCode", a.postal_code)
    x.opt_text(el, NS, "City", a.city)
    x.put_coded(el, NS, "County", a.county, cv=False)
    x.put_coded(el, NS, "Country", a.country, cv=False)
    x.put_coded(el, NS, "CityDistr", a.city_district, cv=False)
    for tc in telecoms:
        x.sub(el, NS, "TeleAddress").set("V", tc.address)


def _hcprof(hcp: etree._Element, hp: HealthProfessional) -> None:
    el = x.sub(hcp, NS, "HCProf")
    x.put_coded(el, NS, "Type", hp.type, cv=False)
    x.opt_text(el, NS, "Name", v1.join_name(hp.name))
    _additional(el, _ids(el, hp.idents))
    _address(hcp, hp.address, hp.telecoms, "WP")


def _hcp(parent: etree._Element, tag: str, org: Organisation) -> None:
    hcp = x.sub(x.sub(parent, NS, tag), NS, "HCP")
    if org.name is None and not org.idents and org.professional is not None:
        _hcprof(hcp, org.professional)
        return
    inst = x.sub(hcp, NS, "Inst")
    x.opt_text(inst, NS, "Name", org.name)
    x.put_coded(inst, NS, "Type", org.type, cv=False)
    extra = _ids(inst, org.idents)
    dept = org.sub_organisation
    if dept is not None:
        d = x.sub(inst, NS, "Dept")
        x.put_coded(d, NS, "Type", dept.type, cv=False)
        x.opt_text(d, NS, "Name", dept.name)
        _additional(d, _ids(d, dept.idents))
    person = org.professional or (dept.professional if dept is not None else None)
    if person is not None:
        p = x.sub(inst, NS, "HCPerson")
        x.opt_text(p, NS, "Name", v1.join_name(person.name))
        _additional(p, _ids(p, person.idents))
    _additional(inst, extra)
    _address(hcp, org.address, org.telecoms, "WP")


def _relation(parent: etree._Element, tag: str, r: Responsible) -> None:
    el = x.sub(parent, NS, tag)
    x.put_coded(el, NS, "Relation", r.relation, cv=False)
    _hcprof(x.sub(el, NS, "HCP"), r.professional)


def _item_times(el: etree._Element, item: DiagnosisItem | TextItem | MedicationItem | ResultEntry) -> None:
    x.put_ts_attr(el, NS, "StartDateTime", item.start)
    x.put_ts_attr(el, NS, "EndDateTime", item.end)


def _diagnosis(parent: etree._Element, d: DiagnosisItem) -> None:
    item = x.sub(parent, NS, "InfItem")
    obs = x.sub(item, NS, "Observation")
    _rich(obs, "Description", d.description)
    coded = x.sub(obs, NS, "CodedDescr")
    x.put_coded(coded, NS, "Concept", d.concept)
    for m in d.modifiers:
        mod = x.sub(coded, NS, "Modifier")
        x.put_coded(mod, NS, "Name", m.name, cv=False)
        x.put_coded(mod, NS, "Value", m.value)
    x.put_coded(item, NS, "Type", d.type, cv=False)
    _item_times(item, d)


def _text(parent: etree._Element, t: TextItem) -> None:
    item = x.sub(parent, NS, "InfItem")
    obs = x.sub(item, NS, "Observation")
    _rich(obs, "Description", t.description)
    x.opt_text(obs, NS, "Comment", t.comment)
    x.put_coded(item, NS, "Type", t.type, cv=False)
    _item_times(item, t)


def _medication(parent: etree._Element, m: MedicationItem) -> None:
    item = x.sub(parent, NS, "InfItem")
    med = x.sub(item, NS, "Medication")
    x.put_coded(med, NS, "DrugId", m.drug)
    x.put_coded(med, NS, "DosageCoded", m.dosage_coded)
    x.opt_text(med, NS, "Comment", m.comment)
    x.put_coded(med, NS, "Status", m.status or STATUS_UNKNOWN, cv=False)
    x.put_coded(med, NS, "Form", m.form)
    x.put_coded(med, NS, "RouteOfAdm", m.route)
    x.put_quantity(med, NS, "UnitDose", m.unit_dose)
    x.opt_text(med, NS, "DosageText", m.dosage_text)
    x.put_coded(item, NS, "Type", m.type, cv=False)
    _item_times(item, m)


def _result(parent: etree._Element, r: ResultEntry) -> None:
    item = x.sub(parent, NS, "InfItem")
    c.put_result(item, NS, r.result, v2=False)
    x.put_coded(item, NS, "Type", r.type, cv=False)
    _item_times(item, r)
    if r.lab is not None:
        _hcp(item, "Origin", r.lab)


def _group(parent: etree._Element, group: ResultGroup, start: datetime) -> None:
    """A nested Event; without its own time, the stay's (ReportedEvent/StartDateTime is mandatory)."""
    el = x.sub(parent, NS, "Event")
    reported = x.sub(el, NS, "ReportedEvent")
    x.put_ts_attr(reported, NS, "StartDateTime", group.start or start)
    x.put_ts_attr(reported, NS, "EndDateTime", group.end)
    x.put_coded(el, NS, "ServType", group.kind or NEW_EVENT, cv=False)
    x.put_coded(x.sub(el, NS, "Service"), NS, "MedSpecialty", group.specialty)
    for r in group.results:
        _result(el, r)


def _comment(parent: etree._Element, part: TextPart) -> None:
    el = x.sub(parent, NS, "Comment")
    x.put_coded(el, NS, "Heading", part.heading, cv=False)
    _rich(el, "TextResultValue", part.text)


def _stay(parent: etree._Element, stay: Stay) -> None:
    el = x.sub(parent, NS, "Event")
    if stay.start is None:  # the whole content is optional, but not without its time
        return
    reported = x.sub(el, NS, "ReportedEvent")
    x.put_ts_attr(reported, NS, "StartDateTime", stay.start)
    x.put_ts_attr(reported, NS, "EndDateTime", stay.end)
    x.put_coded(el, NS, "ServType", stay.kind or NEW_EVENT, cv=False)
    x.put_coded(el, NS, "AdmOutcome", stay.outcome, cv=False)
    for group in stay.result_groups:
        _group(el, group, stay.start)
    service = x.sub(el, NS, "Service")
    x.put_coded(service, NS, "MedSpecialty", stay.specialty)
    x.put_coded(service, NS, "AdmCat", stay.category, cv=False)
    for d in stay.diagnoses:
        _diagnosis(el, d)
    for t in stay.texts:
        _text(el, t)
    for r in stay.results:
        _result(el, r)
    for m in stay.medications:
        _medication(el, m)
    for part in stay.comments:
        _comment(el, part)


def _patient(parent: etree._Element, e: Epikrise) -> None:
    p = e.patient
    el = x.sub(parent, NS, "Patient")
    x.put_coded(el, NS, "Sex", p.sex, cv=False)
    x.put_ts_attr(el, NS, "DateOfBirth", p.birth_date)
    x.put_ts_attr(el, NS, "DateOfDeath", p.death_date)
    x.opt_text(el, NS, "Name", v1.join_name(p.name))
    if p.idents:
        x.sub(el, NS, "OffId", p.idents[0].id)
        x.put_coded(el, NS, "TypeOffId", p.idents[0].type, cv=False)
    for precaution in e.precautions:
        x.sub(x.sub(el, NS, "PatientPrecaution"), NS, "Precaution", precaution)
    for r in e.patient_relations:
        _relation(el, "PatRelHCP", r)
    _additional(el, list(p.idents[1:]))
    _address(el, p.address, p.telecoms, "H")


def build_epikrise(e: Epikrise) -> etree._Element:
    """The Epikrise 1.2 of the model (whatever version it was read from)."""
    root = etree.Element(x.q(NS, "Message"), nsmap={None: NS})
    x.put_coded(root, NS, "Type", e.msg_type, cv=False)
    x.sub(root, NS, "MIGversion", MIG_VERSIONS[EpikriseVersion.V1_2])
    x.put_ts_attr(root, NS, "GenDate", e.generated)
    x.sub(root, NS, "MsgId", e.msg_id)
    x.put_coded(root, NS, "Status", e.processing_status, cv=False)
    rprt = x.sub(root, NS, "ServRprt")
    x.put_coded(rprt, NS, "ServType", c.kind_coded(e.kind), cv=False)
    x.put_ts_attr(rprt, NS, "IssueDate", e.issued)
    x.put_ts_attr(rprt, NS, "ApprDate", e.approved)
    x.put_coded(rprt, NS, "Status", e.report_status or FINAL, cv=False)
    x.sub(rprt, NS, "MsgDescr", e.description if e.description is not None else "Epikrise")
    x.opt_text(rprt, NS, "ServProvId", e.document_id)
    for ref in e.referrals:
        if ref.id is None or ref.issued is None or not ref.diagnoses:
            continue  # 1.2 makes these mandatory: a referral without them is not written
        req = x.sub(rprt, NS, "ServReq")
        x.put_coded(req, NS, "ServType", ref.kind or c.kind_coded(MessageKind.NEW), cv=False)
        x.put_ts_attr(req, NS, "IssueDate", ref.issued)
        x.put_coded(req, NS, "MsgDescr", ref.content_type or Coded(), cv=False)
        x.sub(req, NS, "Id", ref.id)
        for concept in ref.diagnoses:
            x.put_coded(x.sub(req, NS, "Diagnosis"), NS, "Concept", concept)
    for stay in e.stays:
        _stay(rprt, stay)
    _patient(rprt, e)
    _hcp(rprt, "ServProvider", e.sender)
    for copy_to in e.copy_to:
        _hcp(rprt, "CopyDest", copy_to)
    _hcp(rprt, "Requester", e.receiver)
    for r in e.responsible:
        _relation(rprt, "RelServProvider", r)
    _attachments(rprt, e)
    return root


def _attachments(rprt: etree._Element, e: Epikrise) -> None:
    for att in e.attachments:
        ref_doc = msghead.RefDoc(
            msg_type=att.msg_type,
            issue_date=att.issue_date,
            id=att.id,
            mime_type=att.mime_type,
            description=att.description,
            compression=att.compression,
            file_reference=att.file_reference,
            base64=att.content_base64,
        )
        msghead.put_ref_doc(rprt, NS, ref_doc)
