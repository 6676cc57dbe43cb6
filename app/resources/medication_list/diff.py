"""Reconciliation as pure functions: what a MedicationStatement is for matching, and the differences
between the shared list and an incoming one (README.md, "Reconciliation")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from app.resources.medication_list.codes import (
    ATC_SYSTEM,
    FEST_LEGEMIDDEL_SYSTEM,
    FEST_PAKNING_SYSTEM,
    FEST_VARENUMMER_SYSTEM,
    MULTIDOSE_EXTENSION,
    STRENGTH_EXTENSION,
    Aspect,
    ChangeKind,
    KeyKind,
    canonical_system,
)

Statement = dict[str, Any]
PASSES = (KeyKind.FEST, KeyKind.VARENR, KeyKind.ATC, KeyKind.TEXT)  # README: the pairing passes
_CODED = {
    FEST_LEGEMIDDEL_SYSTEM: KeyKind.FEST,
    FEST_PAKNING_SYSTEM: KeyKind.FEST,  # a package's FEST id is a FEST id too (not its varenummer)
    FEST_VARENUMMER_SYSTEM: KeyKind.VARENR,
    ATC_SYSTEM: KeyKind.ATC,
}
_NOT_ALNUM = re.compile(r"[\W_]+")


def normalise_text(text: str) -> str:
    """Case folded, with everything but letters and digits dropped (æ, ø and å stay letters of their own):
    'Paracetamol 500 mg' and 'paracetamol 500mg' are one text."""
    return _NOT_ALNUM.sub("", text.casefold())


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value)).normalize()
    except InvalidOperation:
        return None


def _quantity(quantity: Any) -> tuple[Decimal | None, str] | None:
    if not isinstance(quantity, dict):
        return None
    unit = quantity.get("code") or quantity.get("unit") or ""
    return _decimal(quantity.get("value")), normalise_text(str(unit))


def _dose_signature(dosage: Any) -> tuple[Any, ...]:
    """What 'the same dose' means: text, dose quantity, timing and as-needed of each Dosage, in order."""
    if not isinstance(dosage, dict):
        return ()
    text = dosage.get("text")
    rates = dosage.get("doseAndRate") or [{}]
    dose = _quantity(rates[0].get("doseQuantity")) if isinstance(rates[0], dict) else None
    timing = dosage.get("timing")
    repeat = timing.get("repeat") if isinstance(timing, dict) else None
    repeat = repeat if isinstance(repeat, dict) else {}
    frequency = tuple(_decimal(repeat.get(k)) for k in ("frequency", "period"))
    return (
        normalise_text(text) if isinstance(text, str) else None,
        dose,
        frequency,
        repeat.get("periodUnit"),
        tuple(repeat.get("timeOfDay") or ()),
        dosage.get("asNeededBoolean"),
    )


@dataclass(frozen=True)
class Medicine:
    """A MedicationStatement as reconciliation sees it."""

    statement: Statement
    codes: dict[KeyKind, str]  # FEST legemiddel id, varenummer, ATC code, normalised text (when present)
    strength: tuple[Decimal | None, str] | None
    dose: tuple[tuple[Any, ...], ...]
    multidose: bool = False

    @property
    def free_text(self) -> bool:
        return not any(kind in self.codes for kind in (KeyKind.FEST, KeyKind.VARENR, KeyKind.ATC))

    @property
    def key(self) -> str:
        """The strongest key this medicine has: what a caller names to accept its change."""
        kind = next((k for k in PASSES if k in self.codes), None)
        return f"{kind}:{self.codes[kind]}" if kind is not None else "text:"


def medicine(statement: Statement) -> Medicine:
    concept = statement.get("medicationCodeableConcept")
    concept = concept if isinstance(concept, dict) else {}
    codes: dict[KeyKind, str] = {}
    for coding in concept.get("coding") or []:
        if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
            continue
        kind = _CODED.get(canonical_system(coding.get("system")) or "")
        if kind is not None:
            codes.setdefault(kind, coding["code"].strip().upper() if kind == KeyKind.ATC else coding["code"])
    if isinstance(concept.get("text"), str) and normalise_text(concept["text"]):
        codes[KeyKind.TEXT] = normalise_text(concept["text"])
    strength = next(
        (
            _quantity(e.get("valueQuantity"))
            for e in statement.get("extension") or []
            if isinstance(e, dict) and e.get("url") == STRENGTH_EXTENSION
        ),
        None,
    )
    dose = tuple(_dose_signature(d) for d in statement.get("dosage") or [])
    multidose = any(
        isinstance(e, dict) and e.get("url") == MULTIDOSE_EXTENSION and e.get("valueBoolean") is True
        for e in statement.get("extension") or []
    )
    return Medicine(statement, codes, strength, dose, multidose)


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    key: str
    shared: Statement | None = None
    incoming: Statement | None = None
    aspects: tuple[Aspect, ...] = ()  # for CHANGED: dose and/or strength


def compare(shared: Medicine, incoming: Medicine) -> tuple[Aspect, ...]:
    """What differs between two paired statements: strength (when both are known), dose, multidose."""
    aspects: list[Aspect] = []
    if shared.strength is not None and incoming.strength is not None and shared.strength != incoming.strength:
        aspects.append(Aspect.STRENGTH)
    if shared.dose != incoming.dose:
        aspects.append(Aspect.DOSE)
    if shared.multidose != incoming.multidose:
        aspects.append(Aspect.MULTIDOSE)
    return tuple(aspects)


def _pick(shared: Medicine, candidates: list[tuple[int, Medicine]], kind: KeyKind) -> int:
    """Of several incoming statements with the same ATC code, the one with the same strength first."""
    if kind == KeyKind.ATC:
        for index, candidate in candidates:
            if candidate.strength == shared.strength:
                return index
    return candidates[0][0]


def pair(shared: list[Medicine], incoming: list[Medicine]) -> list[tuple[int, int, KeyKind]]:
    """(shared index, incoming index, what paired them), pass by pass (PASSES), each pass pairing only
    what the earlier ones left."""
    pairs: list[tuple[int, int, KeyKind]] = []
    free_in = list(range(len(incoming)))
    paired_shared: set[int] = set()
    for kind in PASSES:
        for s_index, s in enumerate(shared):
            value = s.codes.get(kind)
            if s_index in paired_shared or value is None:
                continue
            candidates = [(i, incoming[i]) for i in free_in if incoming[i].codes.get(kind) == value]
            if candidates:
                chosen = _pick(s, candidates, kind)
                free_in.remove(chosen)
                paired_shared.add(s_index)
                pairs.append((s_index, chosen, kind))
    return pairs


def diff(shared: list[Statement], incoming: list[Statement]) -> list[Change]:
    """The changes that would turn the shared list into the incoming one: per shared statement (in its
    order) same, changed or stopped; then each incoming statement with no partner, added."""
    old = [medicine(s) for s in shared]
    new = [medicine(s) for s in incoming]
    partner = {s: (i, kind) for s, i, kind in pair(old, new)}
    changes: list[Change] = []
    for s_index, s in enumerate(old):
        if s_index not in partner:
            changes.append(Change(ChangeKind.STOPPED, s.key, shared=s.statement))
            continue
        i_index, kind = partner[s_index]
        aspects = compare(s, new[i_index])
        changes.append(
            Change(
                ChangeKind.CHANGED if aspects else ChangeKind.SAME,
                f"{kind}:{s.codes[kind]}",
                shared=s.statement,
                incoming=new[i_index].statement,
                aspects=aspects,
            )
        )
    paired_in = {i for i, _ in partner.values()}
    changes += [
        Change(ChangeKind.ADDED, m.key, incoming=m.statement) for i, m in enumerate(new) if i not in paired_in
    ]
    return changes
