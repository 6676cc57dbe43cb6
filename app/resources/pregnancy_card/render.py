"""The card's printable HTML (pure): the same document Bundle, rendered for paper.

For women and services not yet digital: everything on it comes from the document's own Composition
(section titles and their generated narratives, which card.py writes and this module does not repeat),
so the print and the FHIR document cannot say different things.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #111; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; border-bottom: 1px solid #999; margin-top: 1.4em; }
h3 { font-size: 1em; margin-bottom: 0.2em; }
.who { color: #333; }
ul { margin-top: 0.3em; }
footer { margin-top: 2em; font-size: 0.85em; color: #555; }
@media print { body { margin: 1cm; } h2 { break-after: avoid; } section { break-inside: avoid-page; } }
"""


def _name(patient: Mapping[str, Any]) -> str:
    for name in patient.get("name", []):
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("given", []), name.get("family", "")]
        if any(parts):
            return " ".join(str(p) for p in parts if p)
    return "Ukjent navn"


def _section_html(section: Mapping[str, Any], level: int) -> str:
    title = escape(str(section.get("title", "")))
    body = str(section.get("text", {}).get("div", ""))  # generated XHTML; its text was escaped when built
    parts = "".join(_section_html(s, level + 1) for s in section.get("section", []))
    return f"<section><h{level}>{title}</h{level}>{body}{parts}</section>"


def render_html(bundle: Mapping[str, Any]) -> str:
    """A complete HTML page of a pregnancy card document Bundle."""
    resources = [e.get("resource", {}) for e in bundle.get("entry", [])]
    composition = resources[0] if resources else {}
    subject = str(composition.get("subject", {}).get("reference", ""))
    patient: Mapping[str, Any] = next((r for r in resources if f"Patient/{r.get('id')}" == subject), {})
    title = escape(str(composition.get("title", "Helsekort for gravide")))
    born = escape(str(patient.get("birthDate", "")))
    sections = "".join(_section_html(s, 2) for s in composition.get("section", []))
    stamp = escape(str(bundle.get("timestamp", "")))
    return (
        '<!DOCTYPE html><html lang="nb"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f'<h1>{title}</h1><p class="who">{escape(_name(patient))}'
        + (f", født {born}" if born else "")
        + f"</p>{sections}"
        f"<footer>Utskrift av dokument {escape(str(bundle.get('id', '')))}, laget {stamp}. "
        "Helsekortet oppdateres fortløpende; det digitale helsekortet gjelder foran utskriften.</footer>"
        "</body></html>"
    )
