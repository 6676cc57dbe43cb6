"""The rules that recognise critical information (rules.json, data) and the pure functions of the flow:
which rule a written resource matches, whether two resources are about the same substance or code, and
how a core-journal entry is built from a source and merged with further sources."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from app.fhir.search.extract import split_reference
from app.resources.core_journal.codes import (
    ENTRY_SOURCE,
    ENTRY_TAG,
    SOURCE_EXTENSION,
    CriticalCategory,
    category_coding,
    is_entry,
)
from app.resources.no_basis.identifiers import HPR_SYSTEM, ORGNR_SYSTEM

RULES_FILE = Path(__file__).with_name("rules.json")
# Recorded as not (or no longer) true: never critical information.
_NOT_TRUE = frozenset({"refuted", "entered-in-error"})
_CRITICALITY_RANK = {"unable-to-assess": 0, "low": 1, "high": 2}
# Clinical content an entry takes from its first source (the rest it keeps as the pack's own).
_COPIED = {
    "AllergyIntolerance": ("type", "category", "criticality", "code", "patient", "onsetDateTime", "reaction"),
    "Condition": ("severity", "code", "bodySite", "subject", "onsetDateTime"),
    "Procedure": (
        "status",
        "category",
        "code",
        "subject",
        "performedDateTime",
        "performedPeriod",
        "bodySite",
    ),
    "Device": ("status", "type", "patient", "deviceName", "manufacturer", "udiCarrier"),
    "Flag": ("status", "category", "code", "subject", "period"),
}
_STATUS = ("clinicalStatus", "verificationStatus")
# The element that says what a resource is about (merging, rules' codes): `code`, but a Device's `type`.
_CONCEPT = {"Device": "type"}
# The search parameter on that element, for the If-None-Exist claim of a new entry (R4's Flag has none).
_CLAIM_PARAMETER = {"AllergyIntolerance": "code", "Condition": "code", "Procedure": "code", "Device": "type"}


def _concept_element(resource: Mapping[str, Any]) -> str:
    return _CONCEPT.get(str(resource.get("resourceType")), "code")


@dataclass(frozen=True)
class Rule:
    name: str
    resource_type: str
    category: CriticalCategory
    criticality: frozenset[str] = frozenset()  # any of these (empty: not a condition of the rule)
    codes: frozenset[str] = frozenset()  # "system|code" tokens, any of which matches
    tags: frozenset[str] = frozenset()  # "system|code" of meta.tag, any of which matches
    categories: frozenset[str] = frozenset()  # "system|code" of the resource's category, any of which


def parse_rules(data: Mapping[str, Any]) -> tuple[Rule, ...]:
    return tuple(
        Rule(
            name=r["name"],
            resource_type=r["resourceType"],
            category=CriticalCategory(r["category"]),
            criticality=frozenset(r.get("criticality", ())),
            codes=frozenset(f"{c['system']}|{c['code']}" for c in r.get("codes", ())),
            tags=frozenset(f"{t['system']}|{t['code']}" for t in r.get("tags", ())),
            categories=frozenset(f"{c['system']}|{c['code']}" for c in r.get("categories", ())),
        )
        for r in data["rules"]
    )


def load_rules(path: Path = RULES_FILE) -> tuple[Rule, ...]:
    return parse_rules(orjson.loads(path.read_bytes()))


def _codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding", []) if isinstance(c, dict) and c.get("system") and c.get("code")]


def _status_code(resource: Mapping[str, Any], element: str) -> str | None:
    codings = _codings(resource.get(element))
    return str(codings[0]["code"]) if codings else None


def _tag_keys(resource: Mapping[str, Any]) -> frozenset[str]:
    meta = resource.get("meta")
    tags = meta.get("tag", []) if isinstance(meta, dict) else []
    return frozenset(f"{t.get('system')}|{t.get('code')}" for t in tags if isinstance(t, dict))


def _category_keys(resource: Mapping[str, Any]) -> frozenset[str]:
    """ "system|code" of the resource's coded category (one CodeableConcept, or a list of them)."""
    category = resource.get("category")
    concepts = category if isinstance(category, list) else [category]
    return frozenset(f"{c['system']}|{c['code']}" for concept in concepts for c in _codings(concept))


def concept_keys(resource: Mapping[str, Any]) -> frozenset[str]:
    """What a resource is about, for merging: its code's "system|code" tokens, or its normalised text
    when it has no coding (an allergy typed as free text by one system still merges with its twin)."""
    concept = resource.get(_concept_element(resource))
    codings = _codings(concept)
    if codings:
        return frozenset(f"{c['system']}|{c['code']}" for c in codings)
    text = concept.get("text") if isinstance(concept, dict) else None
    return (
        frozenset({f"text:{' '.join(text.lower().split())}"})
        if isinstance(text, str) and text
        else frozenset()
    )


def same_concept(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Same substance or code: any shared coding (or the same text where neither is coded)."""
    return bool(concept_keys(a) & concept_keys(b))


def classify(resource: Mapping[str, Any], rules: Sequence[Rule]) -> Rule | None:
    """The first rule a locally written resource matches; None for the pack's own entries, for what is
    refuted or entered in error, and for everything no rule names."""
    if is_entry(resource) or _status_code(resource, "verificationStatus") in _NOT_TRUE:
        return None
    for rule in rules:
        if resource.get("resourceType") != rule.resource_type:
            continue
        if rule.criticality and resource.get("criticality") not in rule.criticality:
            continue
        if rule.codes and not rule.codes & concept_keys(resource):
            continue
        if rule.tags and not rule.tags & _tag_keys(resource):
            continue
        if rule.categories and not rule.categories & _category_keys(resource):
            continue
        return rule
    return None


def patient_reference(resource: Mapping[str, Any]) -> str | None:
    """ "Patient/{id}" of the patient the resource is about (AllergyIntolerance.patient, .subject)."""
    for element in ("patient", "subject"):
        ref = resource.get(element)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            res_type, res_id, _ = split_reference(ref["reference"])
            if res_type == "Patient" and res_id:
                return f"Patient/{res_id}"
    return None


@dataclass(frozen=True)
class Writer:
    """Who wrote a source, from the verified caller: organisation numbers, HPR number, system."""

    orgnrs: tuple[str, ...] = ()
    hpr: str | None = None
    system: str | None = None

    @classmethod
    def of(cls, principal: object) -> Writer:
        """Read duck-typed (the pack does not import the security layer): a personnel Principal has
        orgnr/child_orgnr/hpr/source_system/client_id; a SystemPrincipal (an adapter) has its name."""
        orgnrs = tuple(
            o for o in (getattr(principal, "orgnr", None), getattr(principal, "child_orgnr", None)) if o
        )
        system = getattr(principal, "source_system", None) or getattr(principal, "client_id", None)
        if system is None and getattr(principal, "reason", None) is not None:
            system = f"helsebro/{getattr(principal, 'name', '')}"
        return cls(orgnrs, getattr(principal, "hpr", None), system)


def source_extension(reference: str, resource: Mapping[str, Any], writer: Writer) -> dict[str, Any]:
    """One source of an entry: the source resource, its organisation, author and system."""
    parts: list[dict[str, Any]] = [{"url": "resource", "valueReference": {"reference": reference}}]
    if writer.orgnrs:
        org = writer.orgnrs[-1]  # the sub-unit the person works in when given, else the legal entity
        parts.append(
            {"url": "organization", "valueReference": {"identifier": {"system": ORGNR_SYSTEM, "value": org}}}
        )
    author = resource.get("recorder") or resource.get("asserter")
    if isinstance(author, dict) and author:
        parts.append({"url": "author", "valueReference": author})
    elif writer.hpr:
        parts.append(
            {"url": "author", "valueReference": {"identifier": {"system": HPR_SYSTEM, "value": writer.hpr}}}
        )
    system = resource.get("meta", {}).get("source") or writer.system
    if system:
        parts.append({"url": "system", "valueString": str(system)})
    recorded = resource.get("recordedDate")
    if isinstance(recorded, str):
        parts.append({"url": "recorded", "valueDateTime": recorded})
    return {"url": SOURCE_EXTENSION, "extension": parts}


def source_of(extension: Mapping[str, Any]) -> str | None:
    """The reference of the source resource a source extension names."""
    for part in extension.get("extension", []):
        if part.get("url") == "resource":
            ref = part.get("valueReference", {}).get("reference")
            return ref if isinstance(ref, str) else None
    return None


def sources(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [e for e in entry.get("extension", []) if isinstance(e, dict) and e.get("url") == SOURCE_EXTENSION]


def source_references(entry: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(r for e in sources(entry) if (r := source_of(e)) is not None)


def new_entry(source: Mapping[str, Any], rule: Rule, extension: dict[str, Any]) -> dict[str, Any]:
    """A core-journal entry for a first source: its clinical content, the category, the entry tag, and
    the source. Its verification status starts as the source's; a clinician may set it on the entry."""
    res_type = str(source["resourceType"])
    entry: dict[str, Any] = {
        "resourceType": res_type,
        "meta": {"source": ENTRY_SOURCE, "tag": [ENTRY_TAG, category_coding(rule.category)]},
        "extension": [extension],
    }
    for element in (*_STATUS, *_COPIED.get(res_type, ())):
        if element in source:
            entry[element] = source[element]
    if res_type == "Condition":
        entry["category"] = [{"coding": [category_coding(rule.category)]}]
    return entry


def _union(first: Iterable[Any], second: Iterable[Any]) -> list[Any]:
    seen = {orjson.dumps(x, option=orjson.OPT_SORT_KEYS) for x in first}
    out = list(first)
    for item in second:
        key = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def merge(
    entry: Mapping[str, Any], source: Mapping[str, Any], extension: dict[str, Any]
) -> dict[str, Any] | None:
    """The entry with one more (or a changed) source: the source listed once (sorted by reference, so the
    order does not depend on which system wrote first), the higher criticality, every reaction and
    coding; the entry's own statuses (a clinician's verification) stay. None when nothing changes."""
    merged = {k: v for k, v in entry.items() if k not in ("meta", "text")}
    merged["meta"] = {"source": ENTRY_SOURCE, "tag": entry.get("meta", {}).get("tag", [ENTRY_TAG])}
    reference = source_of(extension)
    kept = [e for e in sources(entry) if source_of(e) != reference]
    others = [
        e
        for e in entry.get("extension", [])
        if not (isinstance(e, dict) and e.get("url") == SOURCE_EXTENSION)
    ]
    merged["extension"] = others + sorted([*kept, extension], key=lambda e: source_of(e) or "")
    rank = _CRITICALITY_RANK
    if rank.get(str(source.get("criticality")), -1) > rank.get(str(entry.get("criticality")), -1):
        merged["criticality"] = source["criticality"]
    if source.get("reaction"):
        merged["reaction"] = _union(entry.get("reaction", []), source["reaction"])
    element = _concept_element(entry)
    codings = _union(_codings(entry.get(element)), _codings(source.get(element)))
    if codings:
        merged[element] = {**entry.get(element, {}), "coding": codings}
    comparable = {k: v for k, v in entry.items() if k != "meta"}
    same = orjson.dumps(comparable, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        {k: v for k, v in merged.items() if k != "meta"}, option=orjson.OPT_SORT_KEYS
    )
    return None if same else merged


def withdraw(entry: Mapping[str, Any], reference: str) -> dict[str, Any] | None:
    """The entry without the source `reference` (deleted, or no longer critical or about this substance);
    None when no source remains (the entry goes too). Its clinical content stays as merged."""
    merged = {k: v for k, v in entry.items() if k not in ("meta", "text")}
    merged["meta"] = {"source": ENTRY_SOURCE, "tag": entry.get("meta", {}).get("tag", [ENTRY_TAG])}
    extensions = [
        e for e in entry.get("extension", []) if not (isinstance(e, dict) and source_of(e) == reference)
    ]
    if not any(source_of(e) for e in extensions if isinstance(e, dict) and e.get("url") == SOURCE_EXTENSION):
        return None
    merged["extension"] = extensions
    return merged


def claim_criteria(patient: str, resource: Mapping[str, Any], tag_token: str) -> str | None:
    """If-None-Exist criteria for creating the entry about `resource`: two writers recording the same
    coded substance for the same patient at once claim the same unique key, so the second one's unit of
    work runs again and merges into the first one's entry instead of creating a twin. None when the
    resource has no coding (text only) or its type no search parameter on it (Flag): such entries are
    merged, but not protected against that race."""
    codings = sorted(k for k in concept_keys(resource) if not k.startswith("text:"))
    parameter = _CLAIM_PARAMETER.get(str(resource.get("resourceType")))
    if not codings or parameter is None:
        return None
    return urlencode([("patient", patient), ("_tag", tag_token), (parameter, codings[0])])
