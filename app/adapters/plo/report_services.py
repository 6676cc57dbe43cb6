"""A report's services as ServiceRequests and back (pure): EksisterendeTjeneste (intent `plan`) is kept
only as its ServiceRequest, so what is changed there is what a report written from FHIR says.

| EksisterendeTjeneste | ServiceRequest |
| --- | --- |
| IPLOStjenestetype (Volven 9151), BetegnelseTjeneste | `code` (coding; `text` = BetegnelseTjeneste, for readers) |
| PrivatTjeneste, BetegnelseTjeneste, OpplysningerOmTjenesten | `ext:plo-service` `private`, `name`, `info` |
| TjenestenLevertAv | `performer.display` |
| AntallEnheter, Enhet | `quantityQuantity` (`value`, `unit`) |
| Startdato, Sluttdato | `occurrencePeriod` |
| Merknad | `note` |

A TjenesteBehov (intent `proposal`) is the FHIR view of its part, whose fields are what is written.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith.model import Coded
from app.adapters.plo.model import Service

Json = dict[str, Any]
EXT_SERVICE = f"{f.SD}/plo-service"


def service_request(s: Service, cancel: bool) -> Json:
    """The ServiceRequest of a service (subject, requester and identifier are the caller's)."""
    sr: Json = {"resourceType": "ServiceRequest", "status": "revoked" if cancel else "active"}
    parts = [] if s.private is None else [f.ext("private", "Boolean", s.private)]
    parts += [f.ext(n, "String", v) for n, v in (("name", s.text), ("info", s.info)) if v is not None]
    if parts and s.existing:
        sr["extension"] = [f.complex_ext(EXT_SERVICE, parts)]
    sr["intent"] = "plan" if s.existing else "proposal"
    sr["category"] = [{"text": "Kommunal helse- og omsorgstjeneste"}]
    code: Json = {"coding": [f.coding(s.type)]} if s.type is not None else {}
    if s.text:
        code["text"] = s.text
    sr["code"] = code or {"text": "Tjeneste"}
    if s.amount is not None or s.unit is not None:
        quantity: Json = {} if s.amount is None else {"value": _number(s.amount)}
        sr["quantityQuantity"] = quantity | ({} if s.unit is None else {"unit": s.unit})
    period = {k: v.isoformat() for k, v in (("start", s.start), ("end", s.end)) if v is not None}
    if period:
        sr["occurrencePeriod"] = period
    if s.provider is not None:
        sr["performer"] = [{"display": s.provider}]
    if s.remark is not None:
        sr["note"] = [{"text": s.remark}]
    return sr


def _number(value: str) -> int | float:
    d = Decimal(value)
    return int(d) if d == d.to_integral_value() else float(d)


def _part(sr: Json, name: str, value_type: str) -> Any:
    ext = next(iter(f.exts(sr, EXT_SERVICE)), None)
    return next(
        (e.get(f"value{value_type}") for e in (ext or {}).get("extension", []) if e.get("url") == name), None
    )


def _amount(value: Any) -> str | None:
    """xs:decimal again (trailing zeros, as in "2.50", are not kept by a JSON number)."""
    return None if value is None else format(Decimal(str(value)).normalize(), "f")


def service_from(sr: Json) -> Service:
    """An existing service (EksisterendeTjeneste) from its ServiceRequest."""
    codings = (sr.get("code") or {}).get("coding") or []
    c = codings[0] if codings else None
    quantity = sr.get("quantityQuantity") or {}
    period = sr.get("occurrencePeriod") or {}
    performer = (sr.get("performer") or [{}])[0]
    notes = sr.get("note") or []
    return Service(
        type=None
        if c is None
        else Coded(code=c.get("code"), system=f.kith_system(c.get("system")), display=c.get("display")),
        text=_part(sr, "name", "String"),
        existing=True,
        private=_part(sr, "private", "Boolean"),
        provider=performer.get("display"),
        info=_part(sr, "info", "String"),
        amount=_amount(quantity.get("value")),
        unit=quantity.get("unit"),
        start=f.from_fhir_date(period.get("start")),
        end=f.from_fhir_date(period.get("end")),
        remark=notes[0].get("text") if notes else None,
    )
