"""Data types shared by the KITH referral ↔ FHIR R4 mapping (to_fhir.py, from_fhir.py), in both directions.

Rule of the mapping: a KITH value goes to the FHIR element that means the same thing; when that element is
a `code` (gender, ContactPoint.use ...) or a Coding with a fixed system, the exact KITH value (V/S/DN/OT) is
kept beside it in the `kith-coded` extension, so that model → FHIR → model is lossless. KITH OIDs are bare
("2.16.578..."); FHIR systems are `urn:oid:` URIs.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from app.adapters.kith.model import Address, Coded, HumanName, Ident, Quantity, Telecom
from app.fhir.search.values import escape_value
from app.resources.no_basis.identifiers import (
    DNR_SYSTEM,
    DUF_SYSTEM,
    FHN_SYSTEM,
    FNR_SYSTEM,
    HERID_SYSTEM,
    HNR_TYPE_CODE,
    HPR_SYSTEM,
    ID_TYPE_SYSTEM,
    MUNICIPALITY_SYSTEM,
    ORGNR_SYSTEM,
    RESH_SYSTEM,
)
from app.resources.no_basis.search import MIDDLENAME_EXTENSION, MUNICIPALITY_EXTENSION

Json = dict[str, Any]

SD = "http://helsebro.no/fhir/StructureDefinition"
NS = "http://helsebro.no/fhir/NamingSystem"
# ServiceRequest.identifier and Task.identifier: "<sender id type>:<sender id>/<document id>"
DOCUMENT_ID_SYSTEM = f"{NS}/kith-document-id"
# Resources owned by one referral that have no identifier of their own (related persons, attachments ...):
# "<referral key>#<part>", so a change message updates them instead of adding copies.
DOCUMENT_PART_SYSTEM = f"{NS}/kith-document-part"
REFDOC_ID_SYSTEM = f"{NS}/kith-refdoc-id"  # RefDoc/Id of an attachment

EXT_CODED = f"{SD}/kith-coded"  # the exact KITH value behind a code / fixed-system Coding
EXT_DERIVED = f"{SD}/kith-derived"  # Identifier merged in from elsewhere in the message (Referral.referrer)
EXT_POSTBOX = f"{SD}/kith-postbox"
EXT_NOTE = f"{SD}/kith-note"  # Merknad of a person (RelatedPerson)
EXT_DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
EXT_URBAN_DISTRICT = "http://hl7.no/fhir/StructureDefinition/no-basis-urban-district"
URBAN_DISTRICT_SYSTEM = "urn:oid:2.16.578.1.12.4.1.1.3403"  # bydel (Volven 3403)

OSLO = ZoneInfo("Europe/Oslo")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")

# Identifier type code (Volven 8116 persons, 9051 organisations) -> national system
ID_SYSTEMS = {
    "FNR": FNR_SYSTEM,
    "DNR": DNR_SYSTEM,
    "FHN": FHN_SYSTEM,
    "HPR": HPR_SYSTEM,
    "DUF": DUF_SYSTEM,
    "HER": HERID_SYSTEM,
    "ENH": ORGNR_SYSTEM,
    "RSH": RESH_SYSTEM,
}
_TYPE_BY_SYSTEM = {
    FNR_SYSTEM: ("FNR", "Fødselsnummer"),
    DNR_SYSTEM: ("DNR", "D-nummer"),
    FHN_SYSTEM: ("FHN", "Felles hjelpenummer"),
    HPR_SYSTEM: ("HPR", "HPR-nummer"),
    DUF_SYSTEM: ("DUF", "DUF-nummer"),
    HERID_SYSTEM: ("HER", "HER-id"),
    ORGNR_SYSTEM: ("ENH", "Organisasjonsnummeret i Enhetsregister"),
    RESH_SYSTEM: ("RSH", "RESH-id"),
}


# --- extensions ---------------------------------------------------------------------------------------------


def ext(url: str, value_type: str, value: Any) -> Json:
    return {"url": url, f"value{value_type}": value}


def complex_ext(url: str, parts: list[Json]) -> Json:
    """A complex extension; one without parts carries valueBoolean true (an extension cannot be empty)."""
    return {"url": url, "extension": parts} if parts else {"url": url, "valueBoolean": True}


def exts(node: Any, url: str) -> list[Json]:
    if not isinstance(node, dict):
        return []
    return [e for e in node.get("extension", []) if isinstance(e, dict) and e.get("url") == url]


def ext_value(node: Any, url: str, value_type: str) -> Any:
    found = exts(node, url)
    return found[0].get(f"value{value_type}") if found else None


def add_ext(node: Json, extension: Json | None) -> None:
    if extension is not None:
        node.setdefault("extension", []).append(extension)


# --- coded values -------------------------------------------------------------------------------------------


def fhir_system(oid: str | None) -> str | None:
    if oid is None:
        return None
    return f"urn:oid:{oid}" if _OID.fullmatch(oid) else oid


def kith_system(system: Any) -> str | None:
    if not isinstance(system, str):
        return None
    return system[len("urn:oid:") :] if system.startswith("urn:oid:") else system


def coding(c: Coded) -> Json:
    out: Json = {}
    if (system := fhir_system(c.system)) is not None:
        out["system"] = system
    if c.code is not None:
        out["code"] = c.code
    if c.display is not None:
        out["display"] = c.display
    return out


def cc(c: Coded) -> Json:
    """Coded -> CodeableConcept: one Coding (V, S, DN) and text = OT. An empty KITH value stays visible."""
    out: Json = {}
    if c.code is not None or c.system is not None or c.display is not None:
        out["coding"] = [coding(c)]
    if c.original_text is not None:
        out["text"] = c.original_text
    return out or {"extension": [ext(EXT_DAR, "Code", "unknown")]}


def coded(concept: Any) -> Coded:
    """CodeableConcept -> Coded: its first Coding (the KITH one) and its text."""
    if not isinstance(concept, dict):
        return Coded()
    codings = [c for c in concept.get("coding", []) if isinstance(c, dict)]
    first = codings[0] if codings else {}
    kept = ext_value(first, EXT_CODED, "CodeableConcept")
    if kept is not None:
        return coded(kept)
    return Coded(
        code=first.get("code"),
        system=kith_system(first.get("system")),
        display=first.get("display"),
        original_text=concept.get("text"),
    )


def opt_coded(concept: Any) -> Coded | None:
    return None if concept is None else coded(concept)


def fixed_coding(c: Coded, system: str) -> Json:
    """A Coding in a required system (e.g. kommunenummer); a KITH value that says otherwise is kept whole."""
    out = {"system": system, **{k: v for k, v in coding(c).items() if k != "system"}}
    if fhir_system(c.system) != system or c.original_text is not None:
        out["extension"] = [ext(EXT_CODED, "CodeableConcept", cc(c))]
    return out


def from_fixed_coding(value: Any) -> Coded:
    if not isinstance(value, dict):
        return Coded()
    kept = ext_value(value, EXT_CODED, "CodeableConcept")
    if kept is not None:
        return coded(kept)
    return Coded(
        code=value.get("code"), system=kith_system(value.get("system")), display=value.get("display")
    )


def kept_code(c: Coded) -> Json:
    """The `kith-coded` extension that keeps a KITH value mapped to a FHIR code."""
    return ext(EXT_CODED, "CodeableConcept", cc(c))


def kept_coded(node: Any) -> Coded | None:
    value = ext_value(node, EXT_CODED, "CodeableConcept")
    return None if value is None else coded(value)


# Volven 3101 (kjønn) <-> Patient.gender; the KITH code is kept in `_gender`, so a round trip restores it.
SEX_SYSTEM = "2.16.578.1.12.4.1.1.3101"
_GENDER = {"0": "unknown", "1": "male", "2": "female", "9": "unknown"}
_SEX = {"male": ("1", "Mann"), "female": ("2", "Kvinne")}


def gender_fields(sex: Coded | None) -> Json:
    """`gender` and `_gender` of a Patient with this KITH sex (none without one)."""
    if sex is None:
        return {}
    out: Json = {}
    if (gender := _GENDER.get(sex.code or "")) is not None:
        out["gender"] = gender
    out["_gender"] = {"extension": [kept_code(sex)]}
    return out


def sex_of(patient: Json, unknown: Coded) -> Coded | None:
    """A Patient's KITH sex: the kept code, else mapped from `gender`; `unknown` is how the message family
    says an unknown sex (Henvisning 0 "Ikke kjent", e-resept 9 "Ikke spesifisert")."""
    sex = kept_coded(patient.get("_gender"))
    if sex is not None:
        return sex
    gender = patient.get("gender")
    if gender == "unknown":
        return unknown
    if gender in _SEX:
        code, display = _SEX[gender]
        return Coded(code=code, system=SEX_SYSTEM, display=display)
    return None


# --- dates --------------------------------------------------------------------------------------------------


def fhir_datetime(moment: datetime) -> str:
    """KITH times usually have no offset: they are Norwegian local time, and FHIR needs the offset."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=OSLO)
    return aware.isoformat()


def from_fhir_datetime(value: Any) -> datetime | None:
    """A FHIR dateTime; a time in Oslo's offset comes back as the naive local time KITH writes."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), datetime.min.time())
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        return parsed
    local = parsed.replace(tzinfo=None)
    return local if local.replace(tzinfo=OSLO).utcoffset() == parsed.utcoffset() else parsed


def from_fhir_date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    return date.fromisoformat(value[:10])


# --- identifiers --------------------------------------------------------------------------------------------


def escape_token(value: str) -> str:
    """A token value inside a search URL: FHIR search escapes, then percent-encoding."""
    return quote(escape_value(value), safe="")


def search_identifier(identifier: Json) -> str:
    """`identifier=system|value` (or `identifier:of-type=...` for an H-nummer, which has no system)."""
    value = escape_token(str(identifier["value"]))
    if "system" in identifier:
        return f"identifier={quote(identifier['system'], safe=':/')}|{value}"
    return f"identifier:of-type={quote(ID_TYPE_SYSTEM, safe=':/')}|{HNR_TYPE_CODE}|{value}"


def identifier(i: Ident, assigner: Json | None = None) -> Json:
    out: Json = {}
    system = ID_SYSTEMS.get(i.type.code or "")
    if system is not None:
        out["system"] = system
    out["value"] = i.id
    concept = cc(i.type)
    if i.type.code == HNR_TYPE_CODE and fhir_system(i.type.system) != ID_TYPE_SYSTEM:
        # no-basis marks a local H-nummer by its type (Volven 8327) and requires the issuing organisation
        hnr = {"system": ID_TYPE_SYSTEM, "code": HNR_TYPE_CODE, "display": "H-nummer"}
        concept = {**concept, "coding": [*concept.get("coding", []), hnr]}
    out["type"] = concept
    if i.type.code == HNR_TYPE_CODE and assigner is not None:
        out["assigner"] = assigner
    return out


def part_identifier(key: str, part: str) -> Json:
    return {"system": DOCUMENT_PART_SYSTEM, "value": f"{key}#{part}"}


def idents(identifiers: Any) -> tuple[Ident, ...]:
    """Identifiers -> KITH idents, leaving out this mapping's own (part ids, merged-in ids)."""
    out: list[Ident] = []
    for i in identifiers if isinstance(identifiers, list) else ():
        if not isinstance(i, dict) or i.get("system") in (DOCUMENT_PART_SYSTEM, DOCUMENT_ID_SYSTEM):
            continue
        if ext_value(i, EXT_DERIVED, "Boolean"):
            continue
        if "type" in i:
            id_type = coded(i["type"])
        else:  # an identifier written by someone else: its type from the system
            code, display = _TYPE_BY_SYSTEM.get(i.get("system", ""), (None, None))
            id_type = Coded(code=code, display=display)
        out.append(Ident(id=str(i.get("value", "")), type=id_type))
    return tuple(out)


def first_identifier(identifiers: list[Json], systems: tuple[str, ...]) -> Json | None:
    """The first identifier of the first system in `systems` that has one (the dedup key)."""
    for system in systems:
        for i in identifiers:
            if i.get("system") == system and i.get("value"):
                return i
    return None


# --- names, telecom, address --------------------------------------------------------------------------------


def human_name(n: HumanName) -> Json | None:
    out: Json = {}
    if n.text is not None:
        out["text"] = n.text
    if n.family is not None:
        out["family"] = n.family
    if n.given is not None:
        out["given"] = [n.given]  # one entry: KITH "GivenName" may hold several names ("Åse Marit")
    if n.middle is not None:
        out["extension"] = [ext(MIDDLENAME_EXTENSION, "String", n.middle)]
    return out or None


def from_human_name(value: Any) -> HumanName:
    if not isinstance(value, dict):
        return HumanName()
    given = value.get("given") or []
    return HumanName(
        family=value.get("family"),
        given=" ".join(given) if given else None,
        middle=ext_value(value, MIDDLENAME_EXTENSION, "String"),
        text=value.get("text"),
    )


_SCHEMES = {"tel:": "phone", "fax:": "fax", "mailto:": "email", "sms:": "sms"}
_TELECOM_USE = {"MC": "mobile", "H": "home", "HP": "home", "HV": "home", "WP": "work", "TMP": "temp"}


def contact_point(t: Telecom) -> Json:
    out: Json = {}
    for scheme, system in _SCHEMES.items():
        if t.address.startswith(scheme):
            out = {"system": system, "value": t.address[len(scheme) :]}
            break
    else:
        system = "url" if t.address.startswith(("http://", "https://")) else "other"
        out = {"system": system, "value": t.address}
    if t.type is not None:
        if (use := _TELECOM_USE.get(t.type.code or "")) is not None:
            out["use"] = use
        out["extension"] = [kept_code(t.type)]
    return out


def from_contact_point(value: Json) -> Telecom:
    system, raw = value.get("system"), str(value.get("value", ""))
    scheme = next((s for s, sys in _SCHEMES.items() if sys == system), "")
    return Telecom(address=scheme + raw, type=kept_coded(value))


_ADDRESS_USE = {"H": ("home", "physical"), "HP": ("home", None), "PST": (None, "postal")}
_ADDRESS_USE |= {"WP": ("work", None), "TMP": ("temp", None), "BAD": ("old", None)}


def address(a: Address) -> Json:
    out: Json = {}
    if a.type is not None:
        use, kind = _ADDRESS_USE.get(a.type.code or "", (None, None))
        if use:
            out["use"] = use
        if kind:
            out["type"] = kind
        add_ext(out, kept_code(a.type))
    if a.postbox is not None:
        add_ext(out, ext(EXT_POSTBOX, "String", a.postbox))
    if a.city_district is not None:
        add_ext(out, ext(EXT_URBAN_DISTRICT, "Coding", fixed_coding(a.city_district, URBAN_DISTRICT_SYSTEM)))
    if a.street is not None:
        out["line"] = [a.street]
    if a.city is not None:
        out["city"] = a.city
    if a.county is not None:
        # no-basis: the kommunenummer rides on Address.district, whose text is the municipality's name
        out["district"] = a.county.display or a.county.code or "-"
        municipality = fixed_coding(a.county, MUNICIPALITY_SYSTEM)
        out["_district"] = {"extension": [ext(MUNICIPALITY_EXTENSION, "Coding", municipality)]}
    if a.postal_code is not None:
        out["postalCode"] = a.postal_code
    if a.country is not None:
        out["country"] = a.country.code or a.country.display or "-"
        out["_country"] = {"extension": [kept_code(a.country)]}
    return out or {"extension": [ext(EXT_DAR, "Code", "unknown")]}


def from_address(value: Any) -> Address | None:
    if not isinstance(value, dict):
        return None
    district = ext_value(value.get("_district"), MUNICIPALITY_EXTENSION, "Coding")
    bydel = ext_value(value, EXT_URBAN_DISTRICT, "Coding")
    country = kept_coded(value.get("_country"))
    if country is None and value.get("country"):
        country = Coded(code=value["country"])
    lines = value.get("line") or []
    return Address(
        type=kept_coded(value),
        street="\n".join(lines) if lines else None,
        postal_code=value.get("postalCode"),
        city=value.get("city"),
        postbox=ext_value(value, EXT_POSTBOX, "String"),
        county=None if district is None else from_fixed_coding(district),
        country=country,
        city_district=None if bydel is None else from_fixed_coding(bydel),
    )


def person_fields(
    name: HumanName, ids: tuple[Ident, ...], telecoms: tuple[Telecom, ...], addr: Address | None
) -> Json:
    """`identifier`, `name`, `telecom` and `address` of a person resource (RelatedPerson), those it has."""
    out: Json = {}
    if ids:
        out["identifier"] = [identifier(i) for i in ids]
    if (value := human_name(name)) is not None:
        out["name"] = [value]
    if telecoms:
        out["telecom"] = [contact_point(t) for t in telecoms]
    if addr is not None:
        out["address"] = [address(addr)]
    return out


def from_person_fields(
    resource: Json,
) -> tuple[HumanName, tuple[Ident, ...], tuple[Telecom, ...], Address | None]:
    """The name, identifiers, telecoms and address `person_fields` wrote (the first name and address)."""
    names, addresses = resource.get("name") or [None], resource.get("address") or [None]
    return (
        from_human_name(names[0]),
        idents(resource.get("identifier")),
        tuple(from_contact_point(t) for t in resource.get("telecom", [])),
        from_address(addresses[0]),
    )


def reference(full_url: str, display: str | None = None) -> Json:
    out: Json = {"reference": full_url}
    if display:
        out["display"] = display
    return out


def ref_of(node: Any) -> str | None:
    value = node.get("reference") if isinstance(node, dict) else None
    return value if isinstance(value, str) else None


def quantity(q: Quantity) -> Json:
    """A KITH PQ (V, U) as a FHIR Quantity (value, unit as written)."""
    return {k: v for k, v in (("value", q.value), ("unit", q.unit)) if v is not None}


def from_quantity(value: Any) -> Quantity:
    if not isinstance(value, dict):
        return Quantity()
    number = value.get("value")
    return Quantity(value=None if number is None else float(number), unit=value.get("unit"))


def has_her_id(resource: dict[str, Any] | None) -> bool:
    """Whether a stored Organization (or other resource) has a HER-id: a receiver reached by message,
    not on FHIR (the outgoing hooks send to those only)."""
    return any(
        i.get("system") == HERID_SYSTEM and i.get("value") for i in (resource or {}).get("identifier", [])
    )
