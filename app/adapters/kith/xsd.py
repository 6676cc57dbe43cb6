"""Validation against the official KITH / Helsedirektoratet XSDs, read from a configured directory.

The schemas' licence is not stated, so they are not shipped: a deployment points `XsdValidator` at a
directory laid out like `shared/data/legacy/xsd` (any tree of *.xsd files). Schemas are found by target
namespace; imports are resolved inside that directory by file name, whatever their schemaLocation says
(several say `http://www.kith.no/xmlstds/kith.xsd`), and nothing is ever fetched from the network.

No directory, or no schema for a namespace the message uses (or an import that cannot be found), means
validation is skipped: one warning is logged per cause and the result says `skipped`. A MsgHead is
validated together with the business documents inside it in one pass (its `Content` is `processContents=
"strict"`), using an in-memory driver schema that imports every namespace involved. Compiled schemas are
cached per (directory, namespaces), since compiling them takes a noticeable fraction of a second.

The W3C XML-DSig schema, which MsgHead imports for its optional `Signature`, is taken from the directory
when present; otherwise a permissive stand-in declares `Signature` (its content is then not checked here;
signatures are verified elsewhere, not by schema). Likewise poKomponent v1.5, which Henvisning 1.1 imports
and the official set lacks: a stand-in declares `po:ParorendeForesatt` and `po:AssistertKommunikasjon`, so
the rest of a 1.1 message is validated.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from app.adapters.kith.errors import AppRecError, KithError

log = logging.getLogger(__name__)

NS_MSGHEAD = "http://www.kith.no/xmlstds/msghead/2006-05-24"
NS_XSD = "http://www.w3.org/2001/XMLSchema"
NS_DSIG = "http://www.w3.org/2000/09/xmldsig#"
_DSIG_STUB = f"""<schema xmlns="{NS_XSD}" targetNamespace="{NS_DSIG}" elementFormDefault="qualified">
  <element name="Signature"><complexType><sequence>
    <any namespace="##any" processContents="skip" minOccurs="0" maxOccurs="unbounded"/>
  </sequence><anyAttribute processContents="skip"/></complexType></element>
</schema>""".encode()
# poKomponent v1.5 (namespace 2009-06-30), which Henvisning 1.1 imports, is not in the official set. A
# permissive stand-in declares the two elements Henvisning 1.1 refers to, so the rest of a 1.1 message is
# schema-checked; their own content (po:ParorendeForesatt, po:AssistertKommunikasjon) is not.
NS_PO_2009 = "http://www.kith.no/xmlstds/po/poKomponent/2009-06-30"
_PO_2009_ELEMENTS = ("ParorendeForesatt", "AssistertKommunikasjon")
_PO_2009_STUB = (
    f"""<schema xmlns="{NS_XSD}" targetNamespace="{NS_PO_2009}" elementFormDefault="qualified">"""
    + "".join(
        f"""<element name="{name}"><complexType><sequence>
    <any namespace="##any" processContents="skip" minOccurs="0" maxOccurs="unbounded"/>
  </sequence><anyAttribute processContents="skip"/></complexType></element>"""
        for name in _PO_2009_ELEMENTS
    )
    + "</schema>"
).encode()
STAND_INS = {"xmldsig-core-schema.xsd": _DSIG_STUB, "poKomponent-v1.5.xsd": _PO_2009_STUB}
_MAX_REPORTED = 20


@dataclass(frozen=True)
class ValidationResult:
    valid: bool  # True when validated without errors; False when invalid *or* skipped
    skipped: bool = False
    reason: str | None = None  # why validation was skipped
    errors: tuple[str, ...] = ()  # "line N: ERROR_TYPE at /xpath", never element values


class _Resolver(etree.Resolver):  # type: ignore[misc]  # lxml is untyped
    """Serve every schema import from the local directory (by file name) and record what is missing."""

    def __init__(self, by_name: dict[str, Path]) -> None:
        super().__init__()
        self.by_name = by_name
        self.missing: list[str] = []

    def resolve(self, system_url: str | None, public_id: str | None, context: Any) -> Any:
        if not system_url:
            return None
        name = system_url.replace("\\", "/").rsplit("/", 1)[-1]
        local = self.by_name.get(name)
        if local is not None:
            return self.resolve_filename(str(local), context)
        if name in STAND_INS:
            return self.resolve_string(STAND_INS[name], context)
        self.missing.append(name)
        # An empty schema instead of a fetch: the compile then fails on the unresolved references.
        return self.resolve_string(f'<schema xmlns="{NS_XSD}"/>'.encode(), context)


def _schema_parser(resolver: _Resolver | None = None) -> etree.XMLParser:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False, huge_tree=False)
    if resolver is not None:
        parser.resolvers.add(resolver)
    return parser


def _where(root: etree._Element, path: str | None) -> str:
    """libxml2 reports "/*/*[1]/*[7]" under a default namespace; name the elements instead (no values)."""
    try:
        found = root.getroottree().xpath(path) if path else []
    except etree.XPathError:
        return str(path)
    if not found or not isinstance(found[0], etree._Element):
        return str(path)
    names = [etree.QName(el).localname for el in (found[0], *found[0].iterancestors())]
    return "/" + "/".join(reversed(names))


class XsdValidator:
    """Validates parsed messages against the XSDs under `xsd_dir` (None: always skip)."""

    def __init__(self, xsd_dir: str | Path | None) -> None:
        self.xsd_dir = None if xsd_dir is None else Path(xsd_dir)
        self._by_ns: dict[str, Path] = {}
        self._by_name: dict[str, Path] = {}
        self._cache: dict[frozenset[str], etree.XMLSchema | str] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        if self.xsd_dir is not None and self.xsd_dir.is_dir():
            self._index(self.xsd_dir)

    def _index(self, root: Path) -> None:
        for path in sorted(root.rglob("*.xsd")):
            self._by_name.setdefault(path.name, path)
            try:
                schema_root = etree.parse(str(path), _schema_parser()).getroot()
            except etree.XMLSyntaxError:
                continue
            ns = schema_root.get("targetNamespace")
            if ns:
                self._by_ns.setdefault(ns, path)

    def _warn_once(self, reason: str) -> None:
        with self._lock:
            if reason in self._warned:
                return
            self._warned.add(reason)
        log.warning("KITH XSD validation skipped: %s", reason)

    @staticmethod
    def namespaces(root: etree._Element) -> frozenset[str]:
        """The root's namespace plus those of the XML inside its RefDoc/Content (a MsgHead's business
        documents, a Henvisning 1.x attachment's Base64Container)."""
        root_ns = etree.QName(root).namespace or ""
        found = {root_ns}
        if root.tag != f"{{{NS_MSGHEAD}}}MsgHead":
            for content in root.iter(f"{{{root_ns}}}Content"):
                found.update(etree.QName(c).namespace or "" for c in content if isinstance(c.tag, str))
        if root.tag == f"{{{NS_MSGHEAD}}}MsgHead":
            for content in root.iterfind(
                f"{{{NS_MSGHEAD}}}Document/{{{NS_MSGHEAD}}}RefDoc/{{{NS_MSGHEAD}}}Content"
            ):
                found.update(etree.QName(c).namespace or "" for c in content if isinstance(c.tag, str))
        return frozenset(found)

    def _compile(self, namespaces: frozenset[str]) -> etree.XMLSchema | str:
        missing = sorted(ns for ns in namespaces if ns not in self._by_ns)
        if missing:
            return f"no schema for namespace(s) {', '.join(missing)}"
        driver = etree.Element(f"{{{NS_XSD}}}schema", nsmap={"xs": NS_XSD})
        for ns in sorted(namespaces):
            etree.SubElement(
                driver, f"{{{NS_XSD}}}import", namespace=ns, schemaLocation=self._by_ns[ns].as_uri()
            )
        resolver = _Resolver(self._by_name)
        try:
            doc = etree.fromstring(
                etree.tostring(driver), _schema_parser(resolver), base_url=str(self.xsd_dir) + "/"
            )
            return etree.XMLSchema(doc)
        except etree.XMLSchemaParseError as exc:
            if resolver.missing:
                return (
                    f"schema import(s) not found in the directory: {', '.join(sorted(set(resolver.missing)))}"
                )
            return f"schemas for {', '.join(sorted(namespaces))} do not compile ({exc.error_log.last_error.type_name})"

    def _schema(self, namespaces: frozenset[str]) -> etree.XMLSchema | str:
        with self._lock:
            cached = self._cache.get(namespaces)
            if cached is None:
                cached = self._cache[namespaces] = self._compile(namespaces)
            return cached

    def validate(self, root: etree._Element) -> ValidationResult:
        if self.xsd_dir is None or not self.xsd_dir.is_dir():
            reason = "no XSD directory configured" if self.xsd_dir is None else "XSD directory does not exist"
            self._warn_once(reason)
            return ValidationResult(valid=False, skipped=True, reason=reason)
        schema = self._schema(self.namespaces(root))
        if isinstance(schema, str):
            self._warn_once(schema)
            return ValidationResult(valid=False, skipped=True, reason=schema)
        if schema.validate(root):
            return ValidationResult(valid=True)
        errors = tuple(
            f"line {e.line}: {e.type_name} at {_where(root, e.path)}"
            for e in list(schema.error_log)[:_MAX_REPORTED]
        )
        return ValidationResult(valid=False, errors=errors)

    def check(self, root: etree._Element) -> ValidationResult:
        """Validate and raise KithError (T02) when invalid; a skipped validation passes."""
        result = self.validate(root)
        if not result.valid and not result.skipped:
            first = result.errors[0] if result.errors else "unknown error"
            raise KithError(AppRecError.NOT_VALID, f"message does not validate against its XSD ({first})")
        return result


_validators: dict[str, XsdValidator] = {}
_validators_lock = threading.Lock()


def get_validator(xsd_dir: str | Path | None) -> XsdValidator:
    """A process-wide validator per directory, so compiled schemas are shared between requests."""
    key = "" if xsd_dir is None else str(Path(xsd_dir).resolve())
    with _validators_lock:
        if key not in _validators:
            _validators[key] = XsdValidator(xsd_dir)
        return _validators[key]
