"""Small helpers shared by the KITH parsers and builders: namespaced lookup, coded values, dates.

Text is kept exactly as the message has it (no stripping) so that parse → serialize → parse is lossless;
identifiers and codes are the exception and are stripped, since whitespace there is never meaningful.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TypeAlias

from lxml import etree

from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import (
    Address,
    Coded,
    HealthProfessional,
    HumanName,
    Ident,
    Quantity,
    Telecom,
)

Element: TypeAlias = etree._Element  # lxml has no usable stubs: this is Any to mypy


def q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def local(el: Element) -> str:
    # From the tag string ("{namespace}local"): a QName object per call cost ten times as much, and the
    # PLO reader asks for thousands of names per message.
    return _tag(el).rpartition("}")[2]


def namespace(el: Element) -> str | None:
    tag = _tag(el)
    return tag[1 : tag.index("}")] if tag.startswith("{") else None


def _tag(el: Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):  # a comment or processing instruction has no name (as QName says)
        raise ValueError(f"Invalid input tag of type {type(tag)!r}")
    return tag


def child(el: Element | None, ns: str, tag: str) -> Element | None:
    return None if el is None else el.find(q(ns, tag))


def children(el: Element | None, ns: str, tag: str) -> list[Element]:
    return [] if el is None else el.findall(q(ns, tag))


def require(el: Element | None, ns: str, tag: str, code: AppRecError = AppRecError.NOT_VALID) -> Element:
    found = child(el, ns, tag)
    if found is None:
        raise KithError(code, f"mandatory element <{tag}> is missing")
    return found


def text(el: Element | None, ns: str, tag: str) -> str | None:
    found = child(el, ns, tag)
    return None if found is None else (found.text or "")


def ident_text(el: Element | None, ns: str, tag: str) -> str | None:
    value = text(el, ns, tag)
    return None if value is None else value.strip()


def required_text(el: Element | None, ns: str, tag: str) -> str:
    value = ident_text(require(el, ns, tag).getparent(), ns, tag)
    if not value:
        raise KithError(AppRecError.NOT_VALID, f"mandatory element <{tag}> is empty")
    return value


def coded(el: Element | None, ns: str | None = None, tag: str | None = None) -> Coded | None:
    """Read `<X V= S= DN= OT=>`; with ns/tag, read that child of `el`."""
    if el is not None and ns is not None and tag is not None:
        el = child(el, ns, tag)
    if el is None:
        return None
    v, s = el.get("V"), el.get("S")
    return Coded(
        code=None if v is None else v.strip(),
        system=None if s is None else s.strip(),
        display=el.get("DN"),
        original_text=el.get("OT"),
    )


def _bad_date(tag: str) -> KithError:
    return KithError(AppRecError.NOT_VALID, f"invalid date/time in <{tag}>")


def to_datetime(value: str | None, tag: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise _bad_date(tag) from None


def to_date(value: str | None, tag: str) -> date | None:
    if value is None or not value.strip():
        return None
    raw = value.strip()
    try:
        return date.fromisoformat(raw[:10]) if "T" in raw else date.fromisoformat(raw)
    except ValueError:
        raise _bad_date(tag) from None


def ts_attr(el: Element | None, ns: str, tag: str) -> datetime | None:
    """KITH TS: the value sits in the V attribute (Henvisning 1.x, AppRec/RefDoc IssueDate)."""
    found = child(el, ns, tag)
    return None if found is None else to_datetime(found.get("V"), tag)


def to_bool(value: str | None, tag: str) -> bool | None:
    if value is None:
        return None
    raw = value.strip()
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0"):
        return False
    raise KithError(AppRecError.NOT_VALID, f"invalid boolean in <{tag}>")


def to_int(value: str | None, tag: str) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise KithError(AppRecError.NOT_VALID, f"invalid integer in <{tag}>") from None


def quantity(el: Element | None) -> Quantity | None:
    if el is None:
        return None
    raw = el.get("V")
    try:
        value = None if raw is None else float(raw)
    except ValueError:
        raise KithError(AppRecError.NOT_VALID, f"invalid number in <{local(el)}>") from None
    return Quantity(value=value, unit=el.get("U"))


# --- building ---------------------------------------------------------------------------------------------


def sub(parent: Element, ns: str, tag: str, value: str | None = None) -> Element:
    el = etree.SubElement(parent, q(ns, tag))
    if value is not None:
        el.text = value
    return el


def opt_text(parent: Element, ns: str, tag: str, value: str | None) -> None:
    if value is not None:
        sub(parent, ns, tag, value)


def put_coded(parent: Element, ns: str, tag: str, value: Coded | None, *, cv: bool = True) -> None:
    """Write a CS (V, DN) or CV (V, S, DN, OT) element; nothing when value is None."""
    if value is None:
        return
    el = sub(parent, ns, tag)
    if value.code is not None:
        el.set("V", value.code)
    if cv and value.system is not None:
        el.set("S", value.system)
    if value.display is not None:
        el.set("DN", value.display)
    if cv and value.original_text is not None:
        el.set("OT", value.original_text)


def iso(value: datetime | date) -> str:
    return value.isoformat()


def put_ts_attr(parent: Element, ns: str, tag: str, value: datetime | date | None) -> None:
    if value is not None:
        sub(parent, ns, tag).set("V", iso(value))


def put_date(parent: Element, ns: str, tag: str, value: datetime | date | None) -> None:
    if value is not None:
        sub(parent, ns, tag, iso(value))


def put_bool(parent: Element, ns: str, tag: str, value: bool | None) -> None:
    if value is not None:
        sub(parent, ns, tag, "true" if value else "false")


def put_quantity(parent: Element, ns: str, tag: str, value: Quantity | None) -> None:
    if value is None:
        return
    el = sub(parent, ns, tag)
    if value.value is not None:
        el.set("V", format(value.value, "g"))
    if value.unit is not None:
        el.set("U", value.unit)


# --- the felleskomponent1-shaped structures (MsgHead, fk1, dialog share them) -----------------------------


def parse_ident(el: Element, ns: str) -> Ident:
    type_ = coded(el, ns, "TypeId")
    return Ident(id=required_text(el, ns, "Id"), type=type_ or Coded())


def parse_address(el: Element | None, ns: str) -> Address | None:
    if el is None:
        return None
    return Address(
        type=coded(el, ns, "Type"),
        street=text(el, ns, "StreetAdr"),
        postal_code=text(el, ns, "PostalCode"),
        city=text(el, ns, "City"),
        postbox=text(el, ns, "Postbox"),
        county=coded(el, ns, "County"),
        country=coded(el, ns, "Country"),
    )


def parse_telecoms(el: Element | None, ns: str, inner: str | None = None) -> tuple[Telecom, ...]:
    """TeleCom children of `el` (in `ns`); their own children are in `inner` (fk1 types) or `ns`."""
    ins = inner or ns
    out: list[Telecom] = []
    for tc in children(el, ns, "TeleCom"):
        addr = child(tc, ins, "TeleAddress")
        if addr is not None and addr.get("V"):
            out.append(Telecom(address=addr.get("V", ""), type=coded(tc, ins, "TypeTelecom")))
    return tuple(out)


def parse_name(el: Element, ns: str) -> HumanName:
    return HumanName(
        family=text(el, ns, "FamilyName"), given=text(el, ns, "GivenName"), middle=text(el, ns, "MiddleName")
    )


def parse_professional(el: Element, ns: str, inner: str | None = None) -> HealthProfessional:
    """MsgHead / fk1 / dialog HealthcareProfessional; `inner` is the namespace inside Ident/Address/TeleCom."""
    ins = inner or ns
    return HealthProfessional(
        name=parse_name(el, ns),
        idents=tuple(parse_ident(i, ins) for i in children(el, ns, "Ident")),
        type=coded(el, ns, "TypeHealthcareProfessional"),
        role_to_patient=coded(el, ns, "RoleToPatient"),
        address=parse_address(child(el, ns, "Address"), ins),
        telecoms=parse_telecoms(el, ns, ins),
    )


def put_ident(parent: Element, ns: str, ident: Ident, inner: str | None = None) -> None:
    ins = inner or ns
    el = sub(parent, ns, "Ident")
    sub(el, ins, "Id", ident.id)
    put_coded(el, ins, "TypeId", ident.type)


def put_address(parent: Element, ns: str, address: Address | None, inner: str | None = None) -> None:
    if address is None:
        return
    ins = inner or ns
    el = sub(parent, ns, "Address")
    put_coded(el, ins, "Type", address.type, cv=False)
    opt_text(el, ins, "StreetAdr", address.street)
    opt_text(el, ins, "PostalCode", address.postal_code)
    opt_text(el, ins, "City", address.city)
    opt_text(el, ins, "Postbox", address.postbox)
    put_coded(el, ins, "County", address.county, cv=False)
    put_coded(el, ins, "Country", address.country, cv=False)


def put_telecoms(parent: Element, ns: str, telecoms: tuple[Telecom, ...], inner: str | None = None) -> None:
    ins = inner or ns
    for tc in telecoms:
        el = sub(parent, ns, "TeleCom")
        put_coded(el, ins, "TypeTelecom", tc.type, cv=False)
        sub(el, ins, "TeleAddress").set("V", tc.address)


def put_name(parent: Element, ns: str, name: HumanName) -> None:
    family = name.family if name.family is not None or name.given is not None else name.text
    opt_text(parent, ns, "FamilyName", family)
    opt_text(parent, ns, "MiddleName", name.middle)
    opt_text(parent, ns, "GivenName", name.given)


def fill_professional(el: Element, ns: str, hp: HealthProfessional, inner: str | None = None) -> None:
    """Fill a HealthcareProfessional element (sequence as in MsgHead/fk1/dialog); `inner` as in parse_professional."""
    put_coded(el, ns, "TypeHealthcareProfessional", hp.type, cv=False)
    put_coded(el, ns, "RoleToPatient", hp.role_to_patient)
    put_name(el, ns, hp.name)
    for ident in hp.idents:
        put_ident(el, ns, ident, inner)
    put_address(el, ns, hp.address, inner)
    put_telecoms(el, ns, hp.telecoms, inner)
