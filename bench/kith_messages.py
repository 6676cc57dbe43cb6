"""New KITH messages for the benchmarks (pure): variants of a template message, each a new message about a
new synthetic patient.

A variant gets a fresh MsgId, a fresh document id where the message has one (Henvisning 2.0
`DocumentId`, Henvisning 1.x `ServReq/Id`, Epikrise `ServRprt/ServProvId`; a PLO report is kept by its
MsgId, a PLO stay by patient and admission day) and a patient of its own: a synthetic fødselsnummer
(month + 80, valid check digits, odd or even to match the template's sex) with the matching date of
birth. Sender, receiver and professionals are the template's (fictitious HER-id/HPR) in every variant.

The templates are the adapter's own fixtures (Henvisning) and the official samples of the legacy
reference data (PLO 1.6, Epikrise 1.2: `$HELSEBRO_LEGACY_DIR/samples`, else `../shared/data/legacy`).
"""

from __future__ import annotations

import copy
import os
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from lxml import etree

from app.adapters.epikrise.model import VERSIONS as EPIKRISE_VERSIONS
from app.adapters.kith import henvisning_v1, henvisning_v2, msghead
from app.adapters.kith.xmlsafe import parse_xml
from app.resources.no_basis.identifiers import synthetic_fnr
from bench.common import REPO_ROOT

FIXTURES_DIR = REPO_ROOT / "tests" / "adapters" / "kith" / "fixtures"
LEGACY_DIR_ENV = "HELSEBRO_LEGACY_DIR"
DEFAULT_LEGACY_DIR = REPO_ROOT.parent / "shared" / "data" / "legacy"
_PLO_1_6 = "samples/plo/1_6"


@dataclass(frozen=True)
class Kind:
    """One kind of new message: its template and the search that finds one resource per message of it."""

    name: str  # the phase is "new <name>"
    template: str  # a fixture's file name, or a path under the legacy reference data
    legacy: bool  # the template is in the legacy reference data (not in the repository)
    # One resource per accepted new message of this kind: (type, search parameters) for `_summary=count`.
    counted: tuple[str, dict[str, str]]


# A referral is one ServiceRequest of intent order (a PLO report's services are plans and proposals).
REFERRALS = ("ServiceRequest", {"intent": "order"})
KINDS = {
    kind.name: kind
    for kind in (
        Kind(
            "2.0",
            "henvisning_v2_nytilstand.xml",
            False,
            REFERRALS,
        ),
        Kind(
            "1.1",
            "henvisning_v1_1_ny.xml",
            False,
            REFERRALS,
        ),
        Kind(
            "plo-log",
            f"{_PLO_1_6}/pasientlogistikk_1_6_mottak/Pasientlogistikk_Utskrivningsklar_pasient_v1-6_Ny.xml",
            True,
            ("Task", {"code": "http://helsebro.no/fhir/CodeSystem/plo-task|discharge-ready"}),
        ),
        Kind(
            "plo-report",
            f"{_PLO_1_6}/utskrivningsrapport_1.6_mottak/Utskrivningsrapport_v1-6_Ny.xml",
            True,
            ("DocumentReference", {"type": "http://helsebro.no/fhir/CodeSystem/plo-message|"}),
        ),
        Kind(
            "epikrise",
            "samples/Epikrise/Epikrise_v1-2/epikrise_v1.2_n.xml",
            True,
            ("Composition", {"type": "http://loinc.org|18842-5"}),
        ),
    )
}
# Synthetic patients: one date of birth per index (28 days x 12 months x 70 years, born 1930-1999), then
# the same dates again with individual numbers 50 higher.
_DATES = 28 * 12 * 70
MAX_MESSAGES = _DATES * 8  # distinct patients available (individual numbers 100-499)


@dataclass(frozen=True)
class Variant:
    version: str  # the Kind's name ("2.0", "1.1", "plo-log", ...)
    msg_id: str
    document_id: str | None  # None: the message has no document id of its own (PLO)
    fnr: str
    body: bytes  # the message as posted, in the template's encoding


def legacy_dir() -> Path:
    """$HELSEBRO_LEGACY_DIR, else <repo>/../shared/data/legacy (which may not exist)."""
    legacy = os.environ.get(LEGACY_DIR_ENV)
    return Path(legacy) if legacy else DEFAULT_LEGACY_DIR


def load_template(name: str) -> bytes:
    kind = KINDS[name]
    path = legacy_dir() / kind.template if kind.legacy else FIXTURES_DIR / kind.template
    if not path.is_file():
        raise FileNotFoundError(f"template of {name!r} not found: {path} (set ${LEGACY_DIR_ENV})")
    return path.read_bytes()


def patient_identity(index: int, male: bool) -> tuple[str, date]:
    """A synthetic fødselsnummer (month + 80, valid check digits; odd 9th digit for men) and its date of
    birth: distinct for every index below MAX_MESSAGES."""
    if not 0 <= index < MAX_MESSAGES:
        raise ValueError(f"patient index must be in [0, {MAX_MESSAGES})")
    born = date(1930 + (index // 336) % 70, 1 + (index // 28) % 12, 1 + index % 28)
    serial = 100 + 50 * (index // _DATES)
    while True:
        fnr = synthetic_fnr(born.day, born.month, born.year, serial)
        if int(fnr[8]) % 2 == int(male):
            return fnr, born
        serial = int(fnr[6:9]) + 1  # the next individual number; synthetic_fnr skips invalid ones


def _one(root: etree._Element, path: str, namespaces: dict[str, str]) -> etree._Element:
    found = root.find(path, namespaces)
    if found is None:
        raise ValueError(f"template has no {path}")
    return found


@dataclass(frozen=True)
class _Fields:
    """The elements a variant changes."""

    msg_id: etree._Element
    document_id: etree._Element | None
    fnr: etree._Element
    born: etree._Element
    sex: etree._Element
    born_in_attribute: bool  # DateOfBirth's date is its V attribute (own-root messages), else its text


def _msghead_fields(root: etree._Element) -> _Fields:
    """A MsgHead (Henvisning 2.0, PLO): the patient of MsgInfo; the Henvisning 2.0's DocumentId."""
    ns = {"mh": msghead.NS, "h": henvisning_v2.NS}
    patient = _one(root, "mh:MsgInfo/mh:Patient", ns)
    fnr_ident = next(
        (i for i in patient.iterfind("mh:Ident", ns) if _one(i, "mh:TypeId", ns).get("V") == "FNR"), None
    )
    if fnr_ident is None:
        raise ValueError("template patient has no FNR")
    return _Fields(
        _one(root, "mh:MsgInfo/mh:MsgId", ns),
        root.find("mh:Document/mh:RefDoc/mh:Content/h:Henvisning/h:DocumentId", ns),
        _one(fnr_ident, "mh:Id", ns),
        _one(patient, "mh:DateOfBirth", ns),
        _one(patient, "mh:Sex", ns),
        born_in_attribute=False,
    )


def _own_root_fields(root: etree._Element, report: str, document_id: str) -> _Fields:
    """A message with its own header (Henvisning 1.x: ServReq/Id; Epikrise: ServRprt/ServProvId)."""
    ns = {"h": etree.QName(root).namespace or ""}
    patient = _one(root, f"h:{report}/h:Patient", ns)
    if _one(patient, "h:TypeOffId", ns).get("V") != "FNR":
        raise ValueError("template patient has no FNR")
    return _Fields(
        _one(root, "h:MsgId", ns),
        _one(root, f"h:{report}/h:{document_id}", ns),
        _one(patient, "h:OffId", ns),
        _one(patient, "h:DateOfBirth", ns),
        _one(patient, "h:Sex", ns),
        born_in_attribute=True,
    )


def _fields(root: etree._Element) -> _Fields:
    qname = etree.QName(root)
    if root.tag == f"{{{msghead.NS}}}MsgHead":
        return _msghead_fields(root)
    if qname.localname == "Message" and qname.namespace in henvisning_v1.VERSIONS:
        return _own_root_fields(root, "ServReq", "Id")
    if qname.localname == "Message" and qname.namespace in EPIKRISE_VERSIONS:
        return _own_root_fields(root, "ServRprt", "ServProvId")
    raise ValueError("template is not a MsgHead, a Henvisning 1.x or an Epikrise")


def make_variants(name: str, template: bytes, count: int, first_patient: int = 0) -> list[Variant]:
    """`count` new messages of kind `name` from `template`: fresh MsgId and document id (uuid4), and
    patients `first_patient`, `first_patient + 1`, ... (see patient_identity)."""
    root = parse_xml(template)
    encoding = root.getroottree().docinfo.encoding or "UTF-8"
    male = _fields(root).sex.get("V") == "1"  # Volven 3101: 1 mann, 2 kvinne
    variants = []
    for i in range(count):
        copy_root = copy.deepcopy(root)
        fields = _fields(copy_root)
        msg_id = str(uuid.uuid4())
        fields.msg_id.text = msg_id
        document_id = None
        if fields.document_id is not None:
            document_id = fields.document_id.text = str(uuid.uuid4())
        fnr, born = patient_identity(first_patient + i, male)
        fields.fnr.text = fnr
        if fields.born_in_attribute:
            fields.born.set("V", born.isoformat())
        else:
            fields.born.text = born.isoformat()
        body: bytes = etree.tostring(copy_root, xml_declaration=True, encoding=encoding)
        variants.append(Variant(name, msg_id, document_id, fnr, body))
    return variants
