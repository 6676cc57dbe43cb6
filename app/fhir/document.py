"""FHIR document Bundles built by operations ($summary, $pregnancy-card): one way to label a resource,
date it, write a section's narrative and wrap a Composition and its resources in a document Bundle.

Pure functions: the same resources give the same document except the ids and timestamps passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

LOINC = "http://loinc.org"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
XHTML = "http://www.w3.org/1999/xhtml"


def label(resource: Mapping[str, Any]) -> str:
    """What a reader calls the resource: its code's text or first display, else its type."""
    for element in ("code", "vaccineCode", "medicationCodeableConcept", "type", "deviceName", "category"):
        value = resource.get(element)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, dict):
            coding = value.get("coding", [{}])[0] if value.get("coding") else {}
            text = value.get("text") or coding.get("display") or coding.get("code") or value.get("name")
            if text:
                return str(text)
    return str(resource.get("resourceType"))


def when(resource: Mapping[str, Any]) -> str:
    """The resource's clinical date or start, as written ("" if it has none)."""
    for element in ("period", "effectivePeriod"):
        if isinstance(resource.get(element), dict):
            return str(resource[element].get("start", ""))
    for element in (
        "occurrenceDateTime",
        "effectiveDateTime",
        "onsetDateTime",
        "authoredOn",
        "sent",
        "recordedDate",
        "issued",
    ):
        if isinstance(resource.get(element), str):
            return str(resource[element])
    return ""


def instant(now: datetime) -> str:
    return now.astimezone(UTC).isoformat().replace("+00:00", "Z")


def narrative(items: Sequence[str]) -> dict[str, str]:
    """A generated narrative listing `items` (plain text, escaped here)."""
    body = (
        f"<ul>{''.join(f'<li>{escape(i)}</li>' for i in items)}</ul>"
        if items
        else "<p>Ingen opplysninger</p>"
    )
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{body}</div>'}


def entry_line(resource: Mapping[str, Any]) -> str:
    date = when(resource)[:10]
    return f"{label(resource)} ({date})" if date else label(resource)


def section(
    title: str,
    code: Mapping[str, str],
    entries: Sequence[Mapping[str, Any]],
    text: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A Composition section: its code, a narrative (`text`, else a line per entry) and references to
    its entries, or an empty reason."""
    out: dict[str, Any] = {
        "title": title,
        "code": {"coding": [dict(code)]},
        "text": narrative([entry_line(r) for r in entries] if text is None else text),
    }
    if entries:
        out["entry"] = [{"reference": f"{r['resourceType']}/{r['id']}"} for r in entries]
    else:
        out["emptyReason"] = {
            "coding": [{"system": EMPTY_REASON, "code": "unavailable", "display": "Unavailable"}],
            "text": "Ingen opplysninger",
        }
    return out


def document_bundle(
    base: str,
    document_id: str,
    stamp: str,
    resources: Sequence[Mapping[str, Any]],
    profile: str | None = None,
) -> dict[str, Any]:
    """The document Bundle: `resources` in order (the Composition first), each once, with full URLs."""
    seen: set[tuple[str, str]] = set()
    entries = []
    for r in resources:
        key = (str(r["resourceType"]), str(r["id"]))
        if key not in seen:
            seen.add(key)
            entries.append({"fullUrl": f"{base}/{key[0]}/{key[1]}", "resource": r})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": document_id}
    if profile:
        bundle["meta"] = {"profile": [profile]}
    return {
        **bundle,
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{document_id}"},
        "type": "document",
        "timestamp": stamp,
        "entry": entries,
    }
