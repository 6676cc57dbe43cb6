"""The product (Medication) and the dosage (Dosage[]) in both directions: shared by M1 and M10.

What FHIR has an element for goes there (ATC and FEST codes, form, dose quantities, timing); the e-resept
values FHIR has no place for travel in `eresept-*` extensions, so that XML → FHIR → XML keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from typing import Any

from app.adapters.eresept._fhir_compound import compound_from, compound_medication
from app.adapters.eresept.model import (
    AsNeeded,
    Dosage,
    Dose,
    Medicine,
    Package,
    PrescribedMedicine,
    Prescribing,
    ProductKind,
)
from app.adapters.kith import _fhir_common as f
from app.adapters.kith.model import Coded, Quantity
from app.resources.medication_list.codes import (
    ATC_SYSTEM,
    FEST_LEGEMIDDEL_SYSTEM,
    FEST_PAKNING_SYSTEM,
    FEST_VARENUMMER_SYSTEM,
    FEST_VIRKESTOFF_SYSTEM,
)

Json = dict[str, Any]
SD = f.SD
NS = f.NS

ATC_OID = "2.16.578.1.12.4.1.1.7180"  # Volven 7180, what the XML carries in Atc/@S
# The FEST product ids and the varenummer: the medication list pack's systems (it owns them).
FEST_ID_SYSTEMS = {
    ProductKind.PACKAGE: FEST_PAKNING_SYSTEM,
    ProductKind.BRAND: FEST_LEGEMIDDEL_SYSTEM,
    ProductKind.SUBSTANCE: FEST_VIRKESTOFF_SYSTEM,
}
VARENR_SYSTEM = FEST_VARENUMMER_SYSTEM

EXT_PRODUCT_KIND = f"{SD}/eresept-product-kind"
EXT_PRESCRIPTION_GROUP = f"{SD}/eresept-reseptgruppe"
EXT_BRAND_NAME = f"{SD}/eresept-varenavn"
EXT_PACKAGE = f"{SD}/eresept-pakningsinfo"
EXT_ARTICLE_GROUP = f"{SD}/eresept-varegruppekode"
EXT_USE = f"{SD}/eresept-bruk"
EXT_NO_COMBINATION = f"{SD}/eresept-ingen-kombinasjon"
EXT_TIME_OF_DAY = f"{SD}/eresept-tidsomrade"
EXT_EXACT = f"{SD}/eresept-gis-eksakt"
EXT_INTERVAL = f"{SD}/eresept-intervall"
EXT_REIMBURSEMENT_BASIS = f"{SD}/eresept-refusjonshjemmel"
EXT_REIMBURSEMENT_CODE = f"{SD}/eresept-refusjonskode"
EXT_AS_NEEDED = f"{SD}/eresept-dose-etter-behov"  # DoseEtterBehov's limits, exactly as written
_LIMIT_NAMES = ("maxPerDay", "maxPerPeriod", "period", "minInterval")
PER_DAY = {"value": 1, "unit": "døgn", "system": "http://unitsofmeasure.org", "code": "d"}

USE_AS_NEEDED = "3"  # Bruk 3 "Ved behov"
# Tidsomrade → FHIR EventTiming, for readers that do not know the Volven code (not confirmed: see README).
_WHEN = {"1": "MORN", "2": "MORN.late", "3": "NOON", "4": "AFT", "5": "EVE", "6": "NIGHT"}
_PERIOD_UNIT = {"Minutt": "min", "Time": "h", "Døgn": "d", "Uke": "wk", "Måned": "mo", "År": "a"}


def _coding_ext(url: str, c: Coded | None) -> Json | None:
    return None if c is None else f.ext(url, "CodeableConcept", f.cc(c))


def _coded_ext(node: Any, url: str) -> Coded | None:
    return f.opt_coded(f.ext_value(node, url, "CodeableConcept"))


# --- Medication ---------------------------------------------------------------------------------------------


def medication(m: Medicine) -> Json:
    if m.compound is not None:  # magistrell: the mixture and its ingredients
        mixture = compound_medication(m.compound, medication)
        mixture["extension"].insert(0, f.ext(EXT_PRODUCT_KIND, "Code", m.kind))
        return mixture
    codings: list[Json] = []
    if m.atc is not None:
        atc = {"system": ATC_SYSTEM, **{k: v for k, v in f.coding(m.atc).items() if k != "system"}}
        if m.atc.system not in (None, ATC_OID) or m.atc.original_text is not None:
            atc["extension"] = [f.kept_code(m.atc)]
        codings.append(atc)
    if m.fest_id is not None:
        codings.append({"system": FEST_ID_SYSTEMS[m.kind], "code": m.fest_id})
    if m.item_number is not None:
        codings.append({"system": VARENR_SYSTEM, "code": m.item_number})
    out: Json = {
        "resourceType": "Medication",
        "code": {"coding": codings, "text": m.name_form_strength}
        if codings
        else {"text": m.name_form_strength},
    }
    if m.form is not None:
        out["form"] = f.cc(m.form)
    extensions = [
        f.ext(EXT_PRODUCT_KIND, "Code", m.kind),
        f.ext(EXT_PRESCRIPTION_GROUP, "CodeableConcept", f.cc(m.prescription_group)),
    ]
    if m.brand_name is not None:
        extensions.append(f.ext(EXT_BRAND_NAME, "String", m.brand_name))
    for p in m.packages:
        parts = [f.ext("name", "String", p.name), f.ext("size", "String", p.size)]
        extensions.append(
            f.complex_ext(EXT_PACKAGE, [*parts, f.ext("unit", "CodeableConcept", f.cc(p.unit))])
        )
    out["extension"] = extensions
    return out


def _code_of(codings: list[Json], system: str) -> str | None:
    return next((c.get("code") for c in codings if c.get("system") == system), None)


def _kind_of(codings: list[Json]) -> str:
    """The product kind of a Medication (or a statement's code) written without our extension: the kind
    whose FEST id it carries; a package when it carries none (a varenummer names a package)."""
    systems = {c.get("system") for c in codings}
    return next((kind for kind, system in FEST_ID_SYSTEMS.items() if system in systems), ProductKind.PACKAGE)


def medicine_from(med: Json) -> Medicine:
    code = med.get("code") or {}
    codings = [c for c in code.get("coding", []) if isinstance(c, dict)]
    kind = f.ext_value(med, EXT_PRODUCT_KIND, "Code") or _kind_of(codings)
    if kind == ProductKind.COMPOUND:
        compound = compound_from(med, medicine_from)
        return Medicine(kind, compound.name, Coded(), form=compound.form, compound=compound)
    atc_coding = next((c for c in codings if c.get("system") == ATC_SYSTEM), None)
    atc = None
    if atc_coding is not None:
        atc = f.kept_coded(atc_coding) or Coded(
            code=atc_coding.get("code"), system=ATC_OID, display=atc_coding.get("display")
        )
    packages = []
    for e in f.exts(med, EXT_PACKAGE):
        packages.append(
            Package(
                name=f.ext_value({"extension": e.get("extension", [])}, "name", "String") or "",
                size=f.ext_value({"extension": e.get("extension", [])}, "size", "String") or "",
                unit=f.coded(f.ext_value({"extension": e.get("extension", [])}, "unit", "CodeableConcept")),
            )
        )
    return Medicine(
        kind=kind,
        name_form_strength=code.get("text") or "",
        prescription_group=f.coded(f.ext_value(med, EXT_PRESCRIPTION_GROUP, "CodeableConcept")),
        atc=atc,
        form=f.opt_coded(med.get("form")),
        fest_id=_code_of(codings, FEST_ID_SYSTEMS.get(kind, "")),
        item_number=_code_of(codings, VARENR_SYSTEM),
        brand_name=f.ext_value(med, EXT_BRAND_NAME, "String"),
        packages=tuple(packages),
    )


# --- Dosage -------------------------------------------------------------------------------------------------


def _dose(d: Dose, dosage: Dosage, sequence: int) -> Json:
    repeat: Json = {}
    if dosage.start is not None or dosage.end is not None:
        repeat["boundsPeriod"] = {
            k: v.isoformat() for k, v in (("start", dosage.start), ("end", dosage.end)) if v is not None
        }
    interval_unit = _PERIOD_UNIT.get((d.interval.unit or "") if d.interval else "")
    if d.interval is not None and d.interval.value is not None and interval_unit is not None:
        repeat.update(frequency=1, period=float(d.interval.value), periodUnit=interval_unit)
    if d.clock_time is not None:
        repeat["timeOfDay"] = [d.clock_time.isoformat()]
    if d.time_of_day is not None and (when := _WHEN.get(d.time_of_day.code or "")) is not None:
        repeat["when"] = [when]
    out: Json = {"sequence": sequence, "doseAndRate": [{"doseQuantity": f.quantity(d.amount)}]}
    if repeat:
        out["timing"] = {"repeat": repeat}
    extensions = [f.ext(EXT_EXACT, "Boolean", d.exact)]
    if d.interval is not None:
        extensions.append(f.ext(EXT_INTERVAL, "Quantity", f.quantity(d.interval)))
    if (time_of_day := _coding_ext(EXT_TIME_OF_DAY, d.time_of_day)) is not None:
        extensions.append(time_of_day)
    if d.as_needed is not None:  # DoseEtterBehov: taken when needed, within its limits
        limits = d.as_needed
        out["asNeededBoolean"] = True
        out["maxDosePerPeriod"] = {"numerator": f.quantity(limits.max_per_day), "denominator": PER_DAY}
        parts = [f.ext(name, "Quantity", f.quantity(q)) for name, q in _limits(limits)]
        extensions = [e for e in extensions if e["url"] != EXT_EXACT]  # no GisEksakt in DoseEtterBehov
        extensions.append(f.complex_ext(EXT_AS_NEEDED, parts))
    out["extension"] = extensions
    return out


def _limits(limits: AsNeeded) -> tuple[tuple[str, Quantity], ...]:
    return (
        ("maxPerDay", limits.max_per_day),
        ("maxPerPeriod", limits.max_per_period),
        ("period", limits.period),
        ("minInterval", limits.min_interval),
    )


def _as_needed_from(d: Json) -> AsNeeded | None:
    found = f.exts(d, EXT_AS_NEEDED)
    if not found:
        return None
    parts = {"extension": found[0].get("extension", [])}
    values = {name: f.from_quantity(f.ext_value(parts, name, "Quantity")) for name in _LIMIT_NAMES}
    return AsNeeded(values["maxPerDay"], values["maxPerPeriod"], values["period"], values["minInterval"])


def dosage_instructions(p: Prescribing) -> list[Json]:
    """Dosering[i]/DoseFastTidspunkt[j] → one Dosage each (sequence i + 1); the free text and the coded
    short dose go on the first (or on a Dosage of their own when there is no structured dosage)."""
    out = [_dose(d, dosage, i + 1) for i, dosage in enumerate(p.dosages) for d in dosage.doses]
    if not out:
        out = [{"sequence": 1}]
    first = out[0]
    if p.dosage_text is not None:
        first["text"] = p.dosage_text
    if p.use_area is not None:
        first["patientInstruction"] = p.use_area
    if p.short_dose is not None:
        first["additionalInstruction"] = [f.cc(p.short_dose)]
    if p.use is not None:  # Bruk 3 "ved behov"; an as-needed dose says so itself
        first["asNeededBoolean"] = bool(first.get("asNeededBoolean")) or p.use.code == USE_AS_NEEDED
    return out


def _from_dose(d: Json) -> tuple[Dose, Any]:
    repeat = (d.get("timing") or {}).get("repeat") or {}
    dose_and_rate = d.get("doseAndRate") or [{}]
    interval = f.ext_value(d, EXT_INTERVAL, "Quantity")
    clock = (repeat.get("timeOfDay") or [None])[0]
    return (
        Dose(
            amount=f.from_quantity(dose_and_rate[0].get("doseQuantity")),
            interval=None if interval is None else f.from_quantity(interval),
            clock_time=None if clock is None else time.fromisoformat(clock),
            time_of_day=_coded_ext(d, EXT_TIME_OF_DAY),
            exact=bool(f.ext_value(d, EXT_EXACT, "Boolean")),
            as_needed=_as_needed_from(d),
        ),
        repeat.get("boundsPeriod") or {},
    )


def prescribing_from(
    instructions: list[Json], med: Json, use: Coded | None, no_combination: bool | None
) -> Prescribing:
    first = instructions[0] if instructions else {}
    groups: dict[int, tuple[list[Dose], Any]] = {}
    for d in instructions:
        if "doseAndRate" not in d:
            continue
        dose, bounds = _from_dose(d)
        groups.setdefault(int(d.get("sequence", 1)), ([], bounds))[0].append(dose)
    dosages = tuple(
        Dosage(
            doses=tuple(doses),
            start=f.from_fhir_date(bounds.get("start")),
            end=f.from_fhir_date(bounds.get("end")),
        )
        for _, (doses, bounds) in sorted(groups.items())
    )
    short = first.get("additionalInstruction") or [None]
    return Prescribing(
        medicine=medicine_from(med),
        use_area=first.get("patientInstruction"),
        dosage_text=first.get("text"),
        no_combination=no_combination,
        use=use,
        short_dose=f.opt_coded(short[0]),
        dosages=dosages,
    )


# --- ReseptDokLegemiddel extras on the owning resource ------------------------------------------------------


def prescribed_extensions(pm: PrescribedMedicine) -> list[Json]:
    out = [f.ext(EXT_ARTICLE_GROUP, "CodeableConcept", f.cc(pm.article_group))]
    for url, value in (
        (EXT_USE, pm.prescribing.use),
        (EXT_REIMBURSEMENT_BASIS, pm.reimbursement_basis),
        (EXT_REIMBURSEMENT_CODE, pm.reimbursement_code),
    ):
        if (extension := _coding_ext(url, value)) is not None:
            out.append(extension)
    if pm.prescribing.no_combination is not None:
        out.append(f.ext(EXT_NO_COMBINATION, "Boolean", pm.prescribing.no_combination))
    return out


@dataclass(frozen=True)
class PrescribedExtras:
    """What `prescribed_extensions` wrote, read back."""

    article_group: Coded
    use: Coded | None
    no_combination: bool | None
    reimbursement_basis: Coded | None
    reimbursement_code: Coded | None


def prescribed_extras(resource: Json) -> PrescribedExtras:
    return PrescribedExtras(
        article_group=f.coded(f.ext_value(resource, EXT_ARTICLE_GROUP, "CodeableConcept")),
        use=_coded_ext(resource, EXT_USE),
        no_combination=f.ext_value(resource, EXT_NO_COMBINATION, "Boolean"),
        reimbursement_basis=_coded_ext(resource, EXT_REIMBURSEMENT_BASIS),
        reimbursement_code=_coded_ext(resource, EXT_REIMBURSEMENT_CODE),
    )


def quantity_decimal(value: Any) -> Decimal | None:
    """FHIR decimals arrive as float or str (fhir.resources keeps Decimal): back to the XML's Decimal."""
    if value is None:
        return None
    return Decimal(str(value))
