"""A report part's elements as `model.Field` trees: read from the XML, kept in FHIR as `ext:plo-field`
(on the Composition section), written back as PLO 1.6 (pure).

The parts of a report that have no structured home in FHIR (nursing notes, stay information, aids, the
prescription part ...) keep every element: the name, namespace (by a short key, so a 1.5 part is written
in 1.6's namespaces), text and attributes. A kith:CS/CV value (V with S or DN) is kept as a
CodeableConcept (`urn:oid:` Volven system), so the codes are searchable and readable as FHIR codes.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import _xml as x
from app.adapters.kith.model import Coded
from app.adapters.plo.model import Field, Kind

Json = dict[str, Any]
EXT_FIELD = f"{f.SD}/plo-field"
DOCUMENT = "doc"  # the key of the business document's own namespace
NS_PO = "http://www.kith.no/xmlstds/po/poKomponent/2012-04-01"
NS_FK1 = "http://www.kith.no/xmlstds/felleskomponent1"
_EPJ = "http://www.kith.no/xmlstds/epj"
# the namespaces 1.6 writes, by key; reading, the other versions' poKomponent is `po` too
WRITTEN = {
    "po": NS_PO,
    "fk1": NS_FK1,
    "epj1": f"{_EPJ}/epj1/2008-02-20",
    "epj2": f"{_EPJ}/epj2/2008-02-20",
    "epj3": f"{_EPJ}/epj3/2008-02-20",
    "m1": f"{_EPJ}/meta/2008-02-20",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
_KEYS = {uri: key for key, uri in WRITTEN.items()} | {
    "http://www.kith.no/xmlstds/po/poKomponent/2009-06-30": "po",
    "http://ehelse.no/xmlstds/po/poKomponent/2017-11-30": "po",
}
_CODE_ATTRS = frozenset({"V", "S", "DN", "OT"})
_KIND_DISPLAY = {Kind.NEW: "Ny", Kind.CHANGE: "Endring", Kind.CANCEL: "Kansellering"}


def kind_coded(kind: Kind) -> Coded:
    """InformasjonOmForsendelsen/Forsendelsesstatus as the samples write it."""
    return Coded(code=kind.value, display=_KIND_DISPLAY[kind])


def _key(uri: str | None, document_ns: str | None) -> str:
    if uri is None:
        return ""
    if uri == document_ns:
        return DOCUMENT
    return _KEYS.get(uri, uri)


def _attr_name(name: str, document_ns: str | None) -> str:
    q = etree.QName(name)
    return q.localname if q.namespace is None else f"{_key(q.namespace, document_ns)}:{q.localname}"


def read(el: etree._Element, document_ns: str | None, skip: frozenset[str] = frozenset()) -> Field:
    """An element as a Field (children named in `skip` left out: they are kept structured)."""
    kids = [c for c in el if isinstance(c.tag, str) and x.local(c) not in skip]
    return Field(
        ns=_key(x.namespace(el), document_ns),
        name=x.local(el),
        text=el.text if el.text is not None and el.text.strip() else None,  # not the indentation
        attrs=tuple(sorted((_attr_name(k, document_ns), v) for k, v in el.attrib.items())),
        children=tuple(read(c, document_ns) for c in kids),
    )


def uri(key: str, document_ns: str) -> str:
    if key == DOCUMENT:
        return document_ns
    return WRITTEN.get(key, key)


def write(parent: etree._Element, field: Field, document_ns: str) -> etree._Element:
    el = x.sub(parent, uri(field.ns, document_ns), field.name, field.text)
    for name, value in field.attrs:
        prefix, _, local = name.rpartition(":")
        el.set(x.q(uri(prefix, document_ns), local) if prefix else local, value)
    for child in field.children:
        write(el, child, document_ns)
    return el


def _as_code(attrs: tuple[tuple[str, str], ...]) -> Coded | None:
    names = {n for n, _ in attrs}
    if not names or not names <= _CODE_ATTRS or not names & {"S", "DN"}:
        return None
    values = dict(attrs)
    return Coded(
        code=values.get("V"), system=values.get("S"), display=values.get("DN"), original_text=values.get("OT")
    )


def to_ext(field: Field) -> Json:
    parts = [f.ext("element", "String", f"{field.ns}:{field.name}" if field.ns else field.name)]
    code = _as_code(field.attrs)
    if code is not None:
        parts.append(f.ext("code", "CodeableConcept", f.cc(code)))
    else:
        parts += [
            f.complex_ext("attribute", [f.ext("name", "String", n), f.ext("value", "String", v)])
            for n, v in field.attrs
        ]
    if field.text is not None:
        parts.append(f.ext("text", "String", field.text))
    parts += [{**to_ext(c), "url": "field"} for c in field.children]
    return f.complex_ext(EXT_FIELD, parts)


def _value(ext: Json, name: str, value_type: str) -> Any:
    return next((e.get(f"value{value_type}") for e in ext.get("extension", []) if e.get("url") == name), None)


def from_ext(ext: Json) -> Field:
    element = _value(ext, "element", "String") or ""
    ns, _, name = element.rpartition(":")
    attrs: list[tuple[str, str]] = []
    code = _value(ext, "code", "CodeableConcept")
    if code is not None:
        c = f.coded(code)
        pairs = (("V", c.code), ("S", c.system), ("DN", c.display), ("OT", c.original_text))
        attrs += [(n, v) for n, v in pairs if v is not None]
    for part in ext.get("extension", []):
        if part.get("url") == "attribute":
            attrs.append((_value(part, "name", "String"), _value(part, "value", "String")))
    return Field(
        ns=ns,
        name=name,
        text=_value(ext, "text", "String"),
        attrs=tuple(sorted(attrs)),
        children=tuple(from_ext(e) for e in ext.get("extension", []) if e.get("url") == "field"),
    )
