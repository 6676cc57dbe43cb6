"""Drug reactions of e-resept's critical information (`ki:Allergi`, ER-KritiskInformasjon-2013-04-25.xsd, in
M25 and M25.1–M25.4) to and from FHIR `AllergyIntolerance`. Pure functions.

A `ki:Allergi` is a reaction to a medicine that the prescriber's system registered as critical information
(kritisk informasjon); it reaches the core journal by the pack's rules (the AllergyIntolerance carries the
pack's category tag `overfolsomhet`: its source declares it critical), with the message's sender as source.
The mapping follows Kjernejournal's KjAllergyIntolerance (NHN utviklerportal: category `medication`, the
reacted-to medicine coded as ATC, FEST brand (MerkevareId) or FEST substance (VirkestoffId), a refuted
registration `refuted` and inactive) and no-basis-AllergyIntolerance (manifestation coded in Volven 7497).
"""

from __future__ import annotations

import uuid
from typing import Any

from lxml import etree

from app.adapters.eresept import _fhir_medicine as fm
from app.adapters.eresept.model_lib import Allergy, DrugReaction
from app.adapters.kith import _fhir_common as f
from app.adapters.kith import _xml as x
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded
from app.resources.core_journal.codes import CATEGORY_SYSTEM
from app.resources.medication_list.codes import ATC_SYSTEM, FEST_LEGEMIDDEL_SYSTEM, FEST_SUBSTANCE_SYSTEM

Json = dict[str, Any]
NS_KI = "http://www.kith.no/xmlstds/eresept/ki/2013-04-25"
ALLERGY_ID_SYSTEM = f"{f.NS}/eresept-ki-allergi"  # one registration per sender, patient and medicine
EXT_SOURCE = f"{f.SD}/eresept-ki-kilde"  # Kilde: where the information comes from
EXT_SUBSTANCE_NAME = f"{f.SD}/eresept-ki-virkestoff"  # Virkestoff (a name, one per substance)
EXT_EXCIPIENT = f"{f.SD}/eresept-ki-hjelpestoffreaksjon"  # on code: the reaction is to an excipient
EXT_PRODUCT_NAME = f"{f.SD}/eresept-ki-varenavn"
CRITICAL_TAG = {"system": CATEGORY_SYSTEM, "code": "overfolsomhet", "display": "Overfølsomhetsreaksjon"}
CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
VERIFICATION_STATUS = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
BRAND_SYSTEM = FEST_LEGEMIDDEL_SYSTEM
SUBSTANCE_SYSTEM = FEST_SUBSTANCE_SYSTEM  # VirkestoffId: a substance, not a LegemiddelVirkestoff product


# --- XML ------------------------------------------------------------------------------------------------------


def parse_allergy(el: etree._Element) -> Allergy:
    drug_el = x.require(el, NS_KI, "Legemiddelreaksjon")
    drug = DrugReaction(
        atc=x.coded(drug_el, NS_KI, "Atc"),
        substances=tuple(c.text or "" for c in x.children(drug_el, NS_KI, "Virkestoff")),
        substance_ids=tuple(c.text or "" for c in x.children(drug_el, NS_KI, "VirkestoffId")),
        brand_id=x.text(drug_el, NS_KI, "MerkevareId"),
        excipient=x.to_bool(x.text(drug_el, NS_KI, "Hjelpestoffreaksjon"), "Hjelpestoffreaksjon"),
        product_name=x.text(drug_el, NS_KI, "Varenavn"),
    )
    if drug == DrugReaction():
        raise KithError(AppRecError.NOT_VALID, "<Legemiddelreaksjon> names no medicine")
    updated = x.to_datetime(x.text(el, NS_KI, "Oppdatert"), "Oppdatert")
    reaction, source = x.coded(el, NS_KI, "Reaksjon"), x.coded(el, NS_KI, "Kilde")
    if updated is None or reaction is None or source is None:
        raise KithError(AppRecError.NOT_VALID, "<Allergi> lacks Reaksjon, Oppdatert or Kilde")
    return Allergy(
        reaction=reaction,
        updated=updated,
        source=source,
        drug=drug,
        comment=x.text(el, NS_KI, "Kommentar"),
        refuted=x.to_bool(x.text(el, NS_KI, "Avkreftet"), "Avkreftet") or None,  # false: as if absent
    )


def put_allergy(parent: etree._Element, allergy: Allergy) -> None:
    """Append a ki:Allergi to `parent` (in the order of the XSD's sequence)."""
    el = x.sub(parent, NS_KI, "Allergi")
    x.put_coded(el, NS_KI, "Reaksjon", allergy.reaction)
    x.opt_text(el, NS_KI, "Kommentar", allergy.comment)
    x.sub(el, NS_KI, "Oppdatert", x.iso(allergy.updated))
    x.put_coded(el, NS_KI, "Kilde", allergy.source)
    drug_el = x.sub(el, NS_KI, "Legemiddelreaksjon")
    drug = allergy.drug
    x.put_coded(drug_el, NS_KI, "Atc", drug.atc)
    for name in drug.substances:
        x.sub(drug_el, NS_KI, "Virkestoff", name)
    for substance_id in drug.substance_ids:
        x.sub(drug_el, NS_KI, "VirkestoffId", substance_id)
    x.opt_text(drug_el, NS_KI, "MerkevareId", drug.brand_id)
    x.put_bool(drug_el, NS_KI, "Hjelpestoffreaksjon", drug.excipient)
    x.opt_text(drug_el, NS_KI, "Varenavn", drug.product_name)
    x.put_bool(el, NS_KI, "Avkreftet", allergy.refuted)


# --- FHIR -----------------------------------------------------------------------------------------------------


def _codings(drug: DrugReaction) -> list[Json]:
    codings: list[Json] = []
    if drug.atc is not None:
        atc = {"system": ATC_SYSTEM, **{k: v for k, v in f.coding(drug.atc).items() if k != "system"}}
        codings.append(atc)
    if drug.brand_id is not None:
        codings.append({"system": BRAND_SYSTEM, "code": drug.brand_id})
    codings += [{"system": SUBSTANCE_SYSTEM, "code": i} for i in drug.substance_ids]
    return codings


def allergy_key(sender_key: str, patient_key: str, drug: DrugReaction) -> str:
    """The registration's identity: one per sender, patient and medicine, so the sender's next list
    updates its registration instead of adding another."""
    medicine = "|".join(f"{c['system']}#{c['code']}" for c in _codings(drug)) or "|".join(drug.substances)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"eresept-ki:{sender_key}:{patient_key}:{medicine}"))


def allergy_resource(allergy: Allergy, patient: Json | str, key: str, sender_key: str = "") -> Json:
    """ki:Allergi → AllergyIntolerance of `patient` (a Reference, or its reference string), identified by
    `key` (allergy_key); `meta.source` names the message's sender (`e-resept:<id type>:<id>`), which the
    core journal lists as the entry's source system."""
    drug = allergy.drug
    code: Json = {}
    if codings := _codings(drug):
        code["coding"] = codings
    text = drug.product_name or ", ".join(drug.substances)
    if text:
        code["text"] = text
    if drug.excipient is not None:
        code["extension"] = [f.ext(EXT_EXCIPIENT, "Boolean", drug.excipient)]
    extensions = [f.ext(EXT_SOURCE, "CodeableConcept", f.cc(allergy.source))]
    extensions += [f.ext(EXT_SUBSTANCE_NAME, "String", name) for name in drug.substances]
    if drug.product_name is not None:
        extensions.append(f.ext(EXT_PRODUCT_NAME, "String", drug.product_name))
    out: Json = {
        "resourceType": "AllergyIntolerance",
        "meta": {"source": f"e-resept:{sender_key}", "tag": [CRITICAL_TAG]}
        if sender_key
        else {"tag": [CRITICAL_TAG]},
        "extension": extensions,
        "identifier": [{"system": ALLERGY_ID_SYSTEM, "value": key}],
        "clinicalStatus": {
            "coding": [{"system": CLINICAL_STATUS, "code": "inactive" if allergy.refuted else "active"}]
        },
    }
    if allergy.refuted:
        out["verificationStatus"] = {"coding": [{"system": VERIFICATION_STATUS, "code": "refuted"}]}
    out.update(
        {
            "category": ["medication"],
            "code": code,
            "patient": {"reference": patient} if isinstance(patient, str) else patient,
            "recordedDate": f.fhir_datetime(allergy.updated),
            "reaction": [{"manifestation": [f.cc(allergy.reaction)]}],
        }
    )
    if allergy.comment is not None:
        out["note"] = [{"text": allergy.comment}]
    return out


def allergy_from(resource: Json) -> Allergy:
    """AllergyIntolerance (as allergy_resource writes it, or a FHIR client's drug reaction) → ki:Allergi."""
    code = resource.get("code") or {}
    codings = [c for c in code.get("coding", []) if isinstance(c, dict)]
    atc = next((c for c in codings if c.get("system") == ATC_SYSTEM), None)
    names = tuple(
        v for e in f.exts(resource, EXT_SUBSTANCE_NAME) if isinstance(v := e.get("valueString"), str)
    )
    drug = DrugReaction(
        atc=None
        if atc is None
        else Coded(code=atc.get("code"), system=fm.ATC_OID, display=atc.get("display")),
        substances=names,
        substance_ids=tuple(str(c.get("code")) for c in codings if c.get("system") == SUBSTANCE_SYSTEM),
        brand_id=next((str(c.get("code")) for c in codings if c.get("system") == BRAND_SYSTEM), None),
        excipient=f.ext_value(code, EXT_EXCIPIENT, "Boolean"),
        product_name=f.ext_value(resource, EXT_PRODUCT_NAME, "String"),
    )
    reactions = resource.get("reaction") or [{}]
    manifestations = reactions[0].get("manifestation") or [None]
    updated = f.from_fhir_datetime(resource.get("recordedDate"))
    if updated is None:
        raise KithError(AppRecError.NOT_VALID, "the AllergyIntolerance has no recordedDate")
    verification = {c.get("code") for c in (resource.get("verificationStatus") or {}).get("coding", [])}
    return Allergy(
        reaction=f.coded(manifestations[0]),
        updated=updated,
        source=f.coded(f.ext_value(resource, EXT_SOURCE, "CodeableConcept")),
        drug=drug,
        comment=(resource.get("note") or [{}])[0].get("text"),
        refuted=True if "refuted" in verification else None,
    )
