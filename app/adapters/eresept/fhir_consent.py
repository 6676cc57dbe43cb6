"""M241 Samtykkeregistrering ↔ a FHIR `Consent` (modest: the consent itself; the M242 answer is not mapped).

| XML (`Samtykke`) | model `Consent` | FHIR `Consent` |
| --- | --- | --- |
| `TypeSamtykke` | `kind` | `category[0]` |
| `SamtykkeTil` | `valid_until` | `provision.period.end` |
| `Samtykkeverdi` (1 ja, 2 nei) | `value` | `provision.type` permit / deny, the code in extension `SD/eresept-samtykkeverdi` |
| `SamtykkeGittAv` | `given_by` | extension `SD/eresept-samtykke-gitt-av` |
| `MH/Patient` | `envelope.patient` | `patient` (a logical reference by fødselsnummer / D-nummer) |
"""

from __future__ import annotations

from typing import Any

from app.adapters.eresept.model import Consent, Envelope
from app.adapters.kith import _fhir_common as f
from app.adapters.kith.errors import AppRecError, KithError

Json = dict[str, Any]
EXT_GIVEN_BY = f"{f.SD}/eresept-samtykke-gitt-av"
EXT_VALUE = f"{f.SD}/eresept-samtykkeverdi"
SCOPE = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
}
POLICY_RULE = {"text": "e-resept: samtykke til abonnement (M24.1)"}
WITHDRAWN = "2"  # Samtykkeverdi 2 "Nei": the consent is withdrawn (the avmelding sample)


def consent_resource(consent: Consent) -> Json:
    patient = consent.envelope.patient
    if patient is None or not patient.idents:
        raise KithError(AppRecError.OTHER, "an M241 names the patient in its MsgHead")
    provision: Json = {
        "type": "deny" if consent.value is not None and consent.value.code == WITHDRAWN else "permit",
        "period": {"end": consent.valid_until.isoformat()},
    }
    extensions = [f.ext(EXT_GIVEN_BY, "CodeableConcept", f.cc(consent.given_by))]
    if consent.value is not None:
        extensions.append(f.ext(EXT_VALUE, "CodeableConcept", f.cc(consent.value)))
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": SCOPE,
        "category": [f.cc(consent.kind)],
        "patient": {"identifier": f.identifier(patient.idents[0])},
        "policyRule": POLICY_RULE,
        "provision": provision,
        "extension": extensions,
    }


def consent_from_resource(resource: Json, envelope: Envelope) -> Consent:
    """The Consent back as an M241 in `envelope` (the MsgHead names the patient and the parties)."""
    valid_until = f.from_fhir_date(((resource.get("provision") or {}).get("period") or {}).get("end"))
    if valid_until is None:
        raise KithError(AppRecError.OTHER, "the Consent has no provision.period.end (SamtykkeTil)")
    return Consent(
        envelope=envelope,
        given_by=f.coded(f.ext_value(resource, EXT_GIVEN_BY, "CodeableConcept")),
        valid_until=valid_until,
        kind=f.coded((resource.get("category") or [None])[0]),
        value=f.opt_coded(f.ext_value(resource, EXT_VALUE, "CodeableConcept")),
    )
