"""Henvisning 1.0 (`.../henvisning/2005-07-08`) and 1.1 (`.../henvisning/2012-02-15`): own `<Message>` root.

Both are parsed into the referral model; serialization is to 1.1 only (1.0 is superseded and differs from
1.1 only in parts the samples do not use). In 1.x the referring organisation is `Requester`, the receiver
`ServProvider`, the patient sits inside `ServReq`, and person names are one string ("Etternavn, Fornavn").
"""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from app.adapters.kith import _henv_common as c
from app.adapters.kith import _xml as x
from app.adapters.kith import msghead
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import (
    Address,
    Attachment,
    Coded,
    HealthProfessional,
    HenvisningVersion,
    HumanName,
    Ident,
    Organisation,
    Patient,
    ProfessionalRole,
    Referral,
    RelatedProfessional,
    RequestedService,
    Telecom,
)

NS_V1_0 = "http://www.kith.no/xmlstds/henvisning/2005-07-08"
NS_V1_1 = "http://www.kith.no/xmlstds/henvisning/2012-02-15"
NS_PO_2009 = "http://www.kith.no/xmlstds/po/poKomponent/2009-06-30"  # poKomponent used by 1.1
NS_BASE64 = msghead.NS_BASE64
VERSIONS = {NS_V1_0: HenvisningVersion.V1_0, NS_V1_1: HenvisningVersion.V1_1}
MIG_V1_1 = "v1.1 2012-02-15"
TYPE_V1_1 = Coded(code="HENVISNING", display="Henvisning")


def split_name(value: str | None) -> HumanName:
    """1.x names are "Etternavn, Fornavn"; without a comma the order is unknown and the text is kept."""
    if value is None:
        return HumanName()
    if "," in value:
        family, given = value.split(",", 1)
        return HumanName(family=family.strip(), given=given.strip())
    return HumanName(text=value)


def join_name(name: HumanName) -> str | None:
    given = " ".join(p for p in (name.given, name.middle) if p)
    if name.family and given:
        return f"{name.family}, {given}"
    return name.text or name.family or given or None


# --- parsing ------------------------------------------------------------------------------------------------


def _ids(el: etree._Element, ns: str) -> tuple[Ident, ...]:
    """Id + TypeId, then AdditionalId (Id + Type), as 1.x writes identifiers."""
    out: list[Ident] = []
    own = x.ident_text(el, ns, "Id")
    if own:
        out.append(Ident(id=own, type=x.coded(el, ns, "TypeId") or Coded()))
    for extra in x.children(el, ns, "AdditionalId"):
        out.append(Ident(id=x.required_text(extra, ns, "Id"), type=x.coded(extra, ns, "Type") or Coded()))
    return tuple(out)


def _address(el: etree._Element | None, ns: str) -> tuple[Address | None, tuple[Telecom, ...]]:
    if el is None:
        return None, ()
    telecoms = tuple(Telecom(address=t.get("V", "")) for t in x.children(el, ns, "TeleAddress") if t.get("V"))
    address = Address(
        type=x.coded(el, ns, "Type"),
        street=x.text(el, ns, "StreetAdr"),
        postal_code=x.text(el, ns, "PostalCode"),
        city=x.text(el, ns, "City"),
        county=x.coded(el, ns, "County"),
        country=x.coded(el, ns, "Country"),
        city_district=x.coded(el, ns, "CityDistr"),
    )
    return address, telecoms


def _hcp_person(el: etree._Element, ns: str, address_el: etree._Element | None = None) -> HealthProfessional:
    address, telecoms = _address(address_el, ns)
    return HealthProfessional(
        name=split_name(x.text(el, ns, "Name")),
        idents=_ids(el, ns),
        type=x.coded(el, ns, "Type"),
        address=address,
        telecoms=telecoms,
    )


def _hcp(parent: etree._Element, ns: str, what: str) -> Organisation:
    """Requester/ServProvider HCP: an institution (with department and person) or a lone professional."""
    hcp = x.require(parent, ns, "HCP")
    address, telecoms = _address(x.child(hcp, ns, "Address"), ns)
    inst = x.child(hcp, ns, "Inst")
    if inst is None:
        prof = x.child(hcp, ns, "HCProf")
        if prof is None:
            raise KithError(AppRecError.NOT_VALID, f"{what} has neither Inst nor HCProf")
        return Organisation(professional=_hcp_person(prof, ns, x.child(hcp, ns, "Address")))
    dept = x.child(inst, ns, "Dept")
    person = x.child(inst, ns, "HCPerson")
    return Organisation(
        name=x.text(inst, ns, "Name"),
        idents=_ids(inst, ns),
        address=address,
        telecoms=telecoms,
        sub_organisation=None
        if dept is None
        else Organisation(
            name=x.text(dept, ns, "Name"), idents=_ids(dept, ns), type=x.coded(dept, ns, "Type")
        ),
        professional=None if person is None else _hcp_person(person, ns),
    )


def _patient(el: etree._Element, ns: str) -> Patient:
    address, telecoms = _address(x.child(el, ns, "Address"), ns)
    idents: list[Ident] = []
    off_id = x.ident_text(el, ns, "OffId")
    if off_id:
        idents.append(Ident(id=off_id, type=x.coded(el, ns, "TypeOffId") or Coded()))
    for extra in x.children(el, ns, "AdditionalId"):
        idents.append(Ident(id=x.required_text(extra, ns, "Id"), type=x.coded(extra, ns, "Type") or Coded()))
    patient = Patient(
        idents=tuple(idents),
        name=split_name(x.text(el, ns, "Name")),
        birth_date=x.to_date(_v(el, ns, "DateOfBirth"), "DateOfBirth"),
        death_date=x.to_date(_v(el, ns, "DateOfDeath"), "DateOfDeath"),
        sex=x.coded(el, ns, "Sex"),
        address=address,
        telecoms=telecoms,
    )
    return c.check_patient(patient)


def _v(el: etree._Element, ns: str, tag: str) -> str | None:
    found = x.child(el, ns, tag)
    return None if found is None else found.get("V")


def _professionals(patient_el: etree._Element, ns: str) -> tuple[RelatedProfessional, ...]:
    out: list[RelatedProfessional] = []
    for rel in x.children(patient_el, ns, "PatRelHCP"):
        hcp = x.require(rel, ns, "HCP")
        prof = x.child(hcp, ns, "HCProf")
        if prof is None:  # relations to institutions are not modelled
            continue
        out.append(
            RelatedProfessional(
                role=ProfessionalRole.PATIENT_RELATION,
                professional=_hcp_person(prof, ns, x.child(hcp, ns, "Address")),
                relation=x.coded(rel, ns, "Relation"),
            )
        )
    return tuple(out)


def _attachments(serv_req: etree._Element, ns: str) -> tuple[Attachment, ...]:
    out: list[Attachment] = []
    for ref in x.children(serv_req, ns, "RefDoc"):
        container = x.child(x.child(ref, ns, "Content"), NS_BASE64, "Base64Container")
        out.append(
            Attachment(
                msg_type=x.coded(ref, ns, "MsgType") or Coded(),
                mime_type=x.ident_text(ref, ns, "MimeType"),
                description=x.text(ref, ns, "Description"),
                issue_date=x.ts_attr(ref, ns, "IssueDate"),
                id=x.ident_text(ref, ns, "Id"),
                compression=x.coded(ref, ns, "Compression"),
                content_base64=None if container is None else "".join((container.text or "").split()),
                file_reference=x.ident_text(ref, ns, "FileReference"),
            )
        )
    return tuple(out)


def requester(parent: etree._Element, ns: str) -> Organisation:
    """The sender of a 1.x message (ServReq/Requester), for the receipt of one that is refused."""
    return _hcp(parent, ns, "Requester")


def parse_envelope_v1(root: etree._Element) -> tuple[str, datetime, Coded, Organisation, Organisation]:
    """(MsgId, GenDate, Type, Requester, ServProvider) of a 1.x message: what a receipt needs, read without
    the rest of the referral, so that a message whose content is refused can still be answered."""
    ns = x.namespace(root) or ""
    serv_req = x.require(root, ns, "ServReq")
    generated = x.ts_attr(root, ns, "GenDate")
    if generated is None:
        raise KithError(AppRecError.NOT_VALID, "mandatory element <GenDate> is missing")
    return (
        x.required_text(root, ns, "MsgId"),
        generated,
        x.coded(root, ns, "Type") or TYPE_V1_1,
        _hcp(x.require(serv_req, ns, "Requester"), ns, "Requester"),
        _hcp(x.require(serv_req, ns, "ServProvider", AppRecError.RECEIVER_UNKNOWN), ns, "ServProvider"),
    )


def parse_v1(root: etree._Element) -> Referral:
    ns = x.namespace(root) or ""
    if ns not in VERSIONS or x.local(root) != "Message":
        raise KithError(
            AppRecError.UNSUPPORTED_FORMAT, "not a Henvisning 1.0/1.1 message (namespace or name)"
        )
    serv_req = x.require(root, ns, "ServReq")
    patient_el = x.require(serv_req, ns, "Patient", AppRecError.PATIENT_INFO_INSUFFICIENT)
    req = x.child(serv_req, ns, "ReqServ")
    generated = x.ts_attr(root, ns, "GenDate")
    issued = x.ts_attr(serv_req, ns, "IssueDate")
    if generated is None or issued is None:
        raise KithError(AppRecError.NOT_VALID, "mandatory element <GenDate> or <IssueDate> is missing")
    msg_id = x.required_text(root, ns, "MsgId")
    return Referral(
        version=VERSIONS[ns],
        kind=c.parse_kind(serv_req, ns),
        msg_id=msg_id,
        message_type=x.coded(root, ns, "Type") or TYPE_V1_1,
        generated=generated,
        document_id=x.required_text(serv_req, ns, "Id"),
        issued=issued,
        patient=_patient(patient_el, ns),
        sender=_hcp(x.require(serv_req, ns, "Requester"), ns, "Requester"),
        receiver=_hcp(
            x.require(serv_req, ns, "ServProvider", AppRecError.RECEIVER_UNKNOWN), ns, "ServProvider"
        ),
        requested_service=None
        if req is None
        else RequestedService(
            service_type=x.coded(req, ns, "ServType"),
            priority=x.coded(req, ns, "Priority"),
            requested_date=x.to_date(_v(req, ns, "ReqDate"), "ReqDate"),
            comment=x.text(req, ns, "Comment"),
        ),
        content_type=x.coded(serv_req, ns, "MsgDescr"),
        request_comment=x.text(serv_req, ns, "ReqComment"),
        payment_category=x.coded(serv_req, ns, "PaymentCat"),
        basis_for_health_services=x.coded(patient_el, ns, "BasisForHealthServices"),
        reasons=c.parse_sections(serv_req, ns, "ReasonAsText"),
        diagnoses=c.parse_diagnoses(serv_req, ns),
        clinical_items=c.parse_items(patient_el, ns, v2=False),
        comments=c.parse_sections(serv_req, ns, "Comment"),
        precautions=c.parse_precautions(patient_el, ns, v2=False),
        related_persons=c.parse_related_persons(patient_el, NS_PO_2009) if ns == NS_V1_1 else (),
        professionals=_professionals(patient_el, ns),
        attachments=_attachments(serv_req, ns),
        processing_status=x.coded(root, ns, "Status"),
    )


# --- serializing (1.1) --------------------------------------------------------------------------------------

NS = NS_V1_1


def _put_ids(el: etree._Element, idents: tuple[Ident, ...]) -> None:
    if idents:
        x.sub(el, NS, "Id", idents[0].id)
        x.put_coded(el, NS, "TypeId", idents[0].type, cv=False)
    for extra in idents[1:]:
        add = x.sub(el, NS, "AdditionalId")
        x.sub(add, NS, "Id", extra.id)
        x.put_coded(add, NS, "Type", extra.type, cv=False)


def _put_address(
    parent: etree._Element, address: Address | None, telecoms: tuple[Telecom, ...], default_type: str
) -> None:
    if address is None and not telecoms:
        return
    a = address or Address()
    el = x.sub(parent, NS, "Address")
    x.put_coded(el, NS, "Type", a.type or Coded(code=default_type), cv=False)
    x.opt_text(el, NS, "StreetAdr", a.street)
    x.opt_text(el, NS, "PostalCode", a.postal_code)
    x.opt_text(el, NS, "City", a.city)
    x.put_coded(el, NS, "County", a.county, cv=False)
    x.put_coded(el, NS, "Country", a.country, cv=False)
    x.put_coded(el, NS, "CityDistr", a.city_district, cv=False)
    for tc in telecoms:
        x.sub(el, NS, "TeleAddress").set("V", tc.address)


def _put_person(parent: etree._Element, tag: str, hp: HealthProfessional, with_type: bool) -> None:
    el = x.sub(parent, NS, tag)
    if with_type:
        x.put_coded(el, NS, "Type", hp.type, cv=False)
    x.opt_text(el, NS, "Name", join_name(hp.name))
    _put_ids(el, hp.idents)


def _put_hcp(parent: etree._Element, tag: str, org: Organisation) -> None:
    hcp = x.sub(x.sub(parent, NS, tag), NS, "HCP")
    if org.name is None and not org.idents and org.professional is not None:
        _put_person(hcp, "HCProf", org.professional, with_type=True)
        _put_address(hcp, org.professional.address, org.professional.telecoms, "WP")
        return
    inst = x.sub(hcp, NS, "Inst")
    x.opt_text(inst, NS, "Name", org.name)
    _put_ids(inst, org.idents)
    if org.professional is not None:
        _put_person(inst, "HCPerson", org.professional, with_type=False)
    if org.sub_organisation is not None:
        dept = x.sub(inst, NS, "Dept")
        x.put_coded(dept, NS, "Type", org.sub_organisation.type, cv=False)
        x.opt_text(dept, NS, "Name", org.sub_organisation.name)
        _put_ids(dept, org.sub_organisation.idents)
    _put_address(hcp, org.address, org.telecoms, "WP")


def _put_patient(serv_req: etree._Element, ref: Referral) -> None:
    p = ref.patient
    el = x.sub(serv_req, NS, "Patient")
    x.put_coded(el, NS, "BasisForHealthServices", ref.basis_for_health_services, cv=False)
    x.put_coded(el, NS, "Sex", p.sex, cv=False)
    x.put_ts_attr(el, NS, "DateOfBirth", p.birth_date)
    x.put_ts_attr(el, NS, "DateOfDeath", p.death_date)
    x.opt_text(el, NS, "Name", join_name(p.name))
    if p.idents:
        x.sub(el, NS, "OffId", p.idents[0].id)
        x.put_coded(el, NS, "TypeOffId", p.idents[0].type, cv=False)
    c.put_precautions(el, NS, ref.precautions, v2=False)
    c.put_items(el, NS, ref.clinical_items, v2=False)
    for rp in ref.professionals:
        rel = x.sub(el, NS, "PatRelHCP")
        x.put_coded(rel, NS, "Relation", rp.relation or Coded(), cv=False)
        hcp = x.sub(rel, NS, "HCP")
        _put_person(hcp, "HCProf", rp.professional, with_type=True)
        _put_address(hcp, rp.professional.address, rp.professional.telecoms, "WP")
    c.put_related_persons(el, NS_PO_2009, ref.related_persons, v2=False)
    for extra in p.idents[1:]:
        add = x.sub(el, NS, "AdditionalId")
        x.sub(add, NS, "Id", extra.id)
        x.put_coded(add, NS, "Type", extra.type, cv=False)
    _put_address(el, p.address, p.telecoms, "H")


def _put_attachments(serv_req: etree._Element, attachments: tuple[Attachment, ...]) -> None:
    for att in attachments:
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
        msghead.put_ref_doc(serv_req, NS, ref_doc)


def serialize_v1_1(ref: Referral) -> etree._Element:
    root = etree.Element(x.q(NS, "Message"), nsmap={None: NS, "po": NS_PO_2009, "fk1": c.NS_FK1})
    x.put_coded(
        root, NS, "Type", TYPE_V1_1 if ref.version is HenvisningVersion.V2_0 else ref.message_type, cv=False
    )
    x.sub(root, NS, "MIGversion", MIG_V1_1)
    x.put_ts_attr(root, NS, "GenDate", ref.generated)
    x.sub(root, NS, "MsgId", ref.msg_id)
    x.put_coded(root, NS, "Status", ref.processing_status, cv=False)
    serv_req = x.sub(root, NS, "ServReq")
    x.put_coded(serv_req, NS, "ServType", c.kind_coded(ref.kind), cv=False)
    x.put_ts_attr(serv_req, NS, "IssueDate", ref.issued)
    x.put_coded(serv_req, NS, "PaymentCat", ref.payment_category, cv=False)
    x.opt_text(serv_req, NS, "ReqComment", ref.request_comment)
    x.put_coded(serv_req, NS, "MsgDescr", ref.content_type or Coded(), cv=False)
    x.sub(serv_req, NS, "Id", ref.document_id)
    _put_patient(serv_req, ref)
    _put_hcp(serv_req, "ServProvider", ref.receiver)
    _put_hcp(serv_req, "Requester", ref.sender)
    _put_attachments(serv_req, ref.attachments)
    c.put_sections(serv_req, NS, "ReasonAsText", ref.reasons, v2=False)
    c.put_diagnoses(serv_req, NS, ref.diagnoses)
    # 1.1 makes ReqServ and its Priority mandatory; a 1.0 cancellation may lack both, so write the kind and
    # an empty Priority rather than invent a priority.
    rs = ref.requested_service or RequestedService(service_type=c.kind_coded(ref.kind))
    req = x.sub(serv_req, NS, "ReqServ")
    x.put_coded(req, NS, "ServType", rs.service_type or c.kind_coded(ref.kind), cv=False)
    x.put_ts_attr(req, NS, "ReqDate", rs.requested_date)
    x.put_coded(req, NS, "Priority", rs.priority or Coded(), cv=False)
    x.opt_text(req, NS, "Comment", rs.comment)
    c.put_sections(serv_req, NS, "Comment", ref.comments, v2=False)
    return root


# --- what the model does not hold --------------------------------------------------------------------------

_ADDRESS = frozenset(
    {"Type", "StreetAdr", "PostalCode", "City", "County", "Country", "CityDistr", "TeleAddress"}
)
_IDS = frozenset({"Id", "TypeId", "AdditionalId"})
# For each element (by local name) whose children the parser reads: the children it maps. A child not
# listed is dropped on parse; `unmapped_v1` names it (the receipt then says "OK with error in part").
# Leaves and subtrees read whole (fk1 persons, Base64 content) are not listed.
_MAPPED_V1: dict[str, frozenset[str]] = {
    "Message": frozenset({"Type", "MsgVersion", "MIGversion", "GenDate", "MsgId", "Status", "ServReq"}),
    "ServReq": frozenset(
        {"ServType", "IssueDate", "PaymentCat", "ReqComment", "MsgDescr", "Id", "Patient", "ServProvider"}
        | {"Requester"}
        | {"RefDoc", "ReasonAsText", "Diagnosis", "ReqServ", "Comment"}
    ),
    "ReqServ": frozenset({"ServType", "ReqDate", "Priority", "Comment"}),
    "Patient": frozenset(
        {"Sex", "DateOfBirth", "DateOfDeath", "Name", "OffId", "TypeOffId", "PatientPrecaution", "InfItem"}
        | {"BasisForHealthServices"}
        | {"PatRelHCP", "ParorendeForesatt", "AdditionalId", "Address"}
    ),
    "PatientPrecaution": frozenset({"Precaution", "StartDateTime", "EndDateTime"}),
    "InfItem": frozenset({"ResultItem", "Medication", "Observation", "Type", "StartDateTime", "EndDateTime"}),
    "Medication": frozenset({"DrugId", "Comment", "Status", "UnitDose", "DosageText"}),
    "Observation": frozenset({"Description", "Comment"}),
    "ResultItem": frozenset(
        {"TextResult", "Interval", "DateResult", "NumResult", "ServType", "InvDate", "Comment"}
        | {"DevResultInd", "ClinInv"}
    ),
    "NumResult": frozenset({"ArithmeticComp", "NumResultValue"}),
    "TextResult": frozenset({"Result"}),
    "Result": frozenset({"Heading", "TextResultValue", "TextCode"}),
    "Interval": frozenset({"Low", "High"}),
    "DateResult": frozenset({"DateResultValue"}),
    "ClinInv": frozenset({"Id", "Spec"}),
    "PatRelHCP": frozenset({"Relation", "HCP"}),
    "Requester": frozenset({"HCP"}),
    "ServProvider": frozenset({"HCP"}),
    "HCP": frozenset({"Inst", "HCProf", "Address"}),
    "Inst": frozenset({"Name", "HCPerson", "Dept"}) | _IDS,
    "HCProf": frozenset({"Type", "Name"}) | _IDS,
    "HCPerson": frozenset({"Name"}) | _IDS,
    "Dept": frozenset({"Type", "Name"}) | _IDS,
    "Address": _ADDRESS,
    "RefDoc": frozenset(
        {"IssueDate", "MsgType", "Id", "MimeType", "Description", "Compression", "FileReference", "Content"}
    ),
    "Diagnosis": frozenset({"Concept"}),
    "ReasonAsText": frozenset({"Heading", "TextResultValue", "TextCode"}),
    "Comment": frozenset({"Heading", "TextResultValue", "CodedComment"}),
    "ParorendeForesatt": frozenset({"Slektskap", "Omsorgsfunksjon", "Referanseperson", "Merknad"}),
}
_FIRST_ONLY = frozenset({"HCPerson", "Dept"})  # Inst: only the first department and person are modelled


def unmapped_v1(root: etree._Element) -> tuple[str, ...]:
    """Paths (element names only, never values) of the elements of a Henvisning 1.x that the model does
    not hold, in document order, each once: e.g. `ServReq/PaymentCat`, `ServReq/Patient/Consent`."""
    found: dict[str, None] = {}

    def walk(el: etree._Element, path: str) -> None:
        mapped = _MAPPED_V1.get(x.local(el))
        if mapped is None:
            return
        seen: set[str] = set()
        for kid in el:
            if not isinstance(kid.tag, str):
                continue  # comments, processing instructions
            name = x.local(kid)
            kid_path = f"{path}/{name}" if path else name
            if name not in mapped:
                found[kid_path] = None
            elif name in _FIRST_ONLY and x.local(el) == "Inst" and name in seen:
                found[f"{kid_path}[2]"] = None
            elif (
                name == "HCP" and x.local(el) == "PatRelHCP" and x.child(kid, x.namespace(kid) or "", "Inst")
            ):
                found[f"{kid_path}/Inst"] = None  # a relation to an institution
            else:
                walk(kid, kid_path)
            seen.add(name)

    walk(root, "")
    return tuple(found)
