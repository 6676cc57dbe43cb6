"""Patient, prescriber (Practitioner + PractitionerRole) and organisations, both ways, for the e-resept
Bundles; the data types come from the KITH adapter's `_fhir_common` (identifier systems from no-basis)."""

from __future__ import annotations

import uuid
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith.model import Coded, HealthProfessional, Organisation, Patient
from app.resources.no_basis.identifiers import (
    DNR_SYSTEM,
    FNR_SYSTEM,
    HERID_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
)

Json = dict[str, Any]
_UNKNOWN_SEX = Coded(code="9", system=f.SEX_SYSTEM, display="Ikke spesifisert")
PATIENT_KEYS = (FNR_SYSTEM, DNR_SYSTEM)
PRACTITIONER_KEYS = (HPR_SYSTEM,)
ORGANISATION_KEYS = (HERID_SYSTEM, ORGNR_SYSTEM)


class BundleBuilder:
    """Entries of a transaction Bundle with stable urn:uuid fullUrls (derived from the message id), so the
    same message always gives the same Bundle."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.entries: list[Json] = []

    def full_url(self, part: str) -> str:
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'eresept:{self.key}#{part}')}"

    def add(self, part: str, resource: Json, request: Json) -> str:
        url = self.full_url(part)
        self.entries.append({"fullUrl": url, "resource": resource, "request": request})
        return url

    def add_keyed(self, part: str, resource: Json, keys: tuple[str, ...]) -> str:
        """Create unless a resource with the same national identifier exists (HPR, fødselsnummer, HER)."""
        key = f.first_identifier(resource.get("identifier", []), keys)
        if key is None:  # nothing to deduplicate on: a conditional update on this message's own part id
            resource.setdefault("identifier", []).append(f.part_identifier(self.key, part))
            key = f.part_identifier(self.key, part)
            return self.add(
                part,
                resource,
                {"method": "PUT", "url": f"{resource['resourceType']}?{f.search_identifier(key)}"},
            )
        request = {"method": "POST", "url": resource["resourceType"], "ifNoneExist": f.search_identifier(key)}
        return self.add(part, resource, request)

    def bundle(self) -> Json:
        return {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}


def patient_resource(p: Patient) -> Json:
    out: Json = {"resourceType": "Patient", "identifier": [f.identifier(i) for i in p.idents]}
    if (name := f.human_name(p.name)) is not None:
        out["name"] = [name]
    out.update(f.gender_fields(p.sex))
    if p.birth_date is not None:
        out["birthDate"] = p.birth_date.isoformat()
    if p.address is not None:
        out["address"] = [f.address(p.address)]
    if p.telecoms:
        out["telecom"] = [f.contact_point(t) for t in p.telecoms]
    return out


def patient_from(p: Json) -> Patient:
    sex = f.sex_of(p, _UNKNOWN_SEX)
    return Patient(
        idents=f.idents(p.get("identifier")),
        name=f.from_human_name((p.get("name") or [None])[0]),
        birth_date=f.from_fhir_date(p.get("birthDate")),
        sex=sex,
        address=f.from_address((p.get("address") or [None])[0]),
        telecoms=tuple(f.from_contact_point(t) for t in p.get("telecom", [])),
    )


def practitioner_resource(hp: HealthProfessional) -> Json:
    out: Json = {"resourceType": "Practitioner", "identifier": [f.identifier(i) for i in hp.idents]}
    if (name := f.human_name(hp.name)) is not None:
        out["name"] = [name]
    if hp.type is not None:
        out["qualification"] = [{"code": f.cc(hp.type)}]
    if hp.address is not None:
        out["address"] = [f.address(hp.address)]
    if hp.telecoms:
        out["telecom"] = [f.contact_point(t) for t in hp.telecoms]
    return out


def practitioner_from(p: Json | None) -> HealthProfessional:
    if p is None:
        return HealthProfessional()
    qualification = (p.get("qualification") or [{}])[0]
    return HealthProfessional(
        name=f.from_human_name((p.get("name") or [None])[0]),
        idents=f.idents(p.get("identifier")),
        type=f.opt_coded(qualification.get("code")),
        address=f.from_address((p.get("address") or [None])[0]),
        telecoms=tuple(f.from_contact_point(t) for t in p.get("telecom", [])),
    )


def organization_resource(org: Organisation) -> Json:
    out: Json = {"resourceType": "Organization", "identifier": [f.identifier(i) for i in org.idents]}
    if org.name is not None:
        out["name"] = org.name
    if org.address is not None:
        out["address"] = [f.address(org.address)]
    if org.telecoms:
        out["telecom"] = [f.contact_point(t) for t in org.telecoms]
    return out


def organisation_from(org: Json | None, professional: HealthProfessional | None = None) -> Organisation:
    if org is None:
        return Organisation(professional=professional)
    return Organisation(
        name=org.get("name"),
        idents=f.idents(org.get("identifier")),
        address=f.from_address((org.get("address") or [None])[0]),
        telecoms=tuple(f.from_contact_point(t) for t in org.get("telecom", [])),
        professional=professional,
    )


def add_sender(builder: BundleBuilder, sender: Organisation) -> tuple[str, str | None]:
    """The sending organisation and, when it names one, its health professional as a PractitionerRole
    (the prescriber with HPR). Returns (organisation url, role url or None)."""
    org = builder.add_keyed("sender", organization_resource(sender), ORGANISATION_KEYS)
    if sender.professional is None:
        return org, None
    practitioner = builder.add_keyed(
        "prescriber", practitioner_resource(sender.professional), PRACTITIONER_KEYS
    )
    role = {
        "resourceType": "PractitionerRole",
        "identifier": [f.part_identifier(builder.key, "prescriber-role")],
        "practitioner": f.reference(practitioner),
        "organization": f.reference(org, sender.name),
    }
    key = f.part_identifier(builder.key, "prescriber-role")
    url = builder.add(
        "prescriber-role", role, {"method": "PUT", "url": f"PractitionerRole?{f.search_identifier(key)}"}
    )
    return org, url


def sender_from(requester: str | None, org_ref: str | None, resolve: Any) -> Organisation:
    """The sender back: a PractitionerRole (prescriber in an organisation) or an Organization."""
    found = resolve(requester) if requester else None
    if found is not None and found.get("resourceType") == "PractitionerRole":
        practitioner = f.ref_of(found.get("practitioner"))
        organization = f.ref_of(found.get("organization"))
        professional = practitioner_from(resolve(practitioner) if practitioner else None)
        return organisation_from(resolve(organization) if organization else None, professional)
    if found is not None and found.get("resourceType") == "Practitioner":
        return organisation_from(resolve(org_ref) if org_ref else None, practitioner_from(found))
    return organisation_from(found if found is not None else (resolve(org_ref) if org_ref else None))


def resolver(bundle: Json) -> Any:
    """fullUrl → resource for the entries of a Bundle."""
    by_url = {e.get("fullUrl"): e.get("resource") for e in bundle.get("entry", []) if isinstance(e, dict)}
    return lambda url: by_url.get(url)
