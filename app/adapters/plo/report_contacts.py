"""The people and units a report names, in its CareTeam, and back (pure).

Each CareTeam participant says which part of the report it is (`ext:plo-contact-part`: `responsible`,
`contact`, `unit`, `related`), so the report can be written again from them: the responsible professional
(the first AnsvarForRapport: AnsvarligRapport the Practitioner, TypeRelasjon and Merknad on its
participant, GodkjentDato `Composition.attester.time`), the contact persons (KontaktpersonHelsepersonell:
Kontaktperson the Practitioner, Merknad `ext:kith-note` on its participant) and the next of kin
(ParorendeForesatt: the RelatedPersons). Contact units (TilknyttetEnhet) are a view: an organisation number
with a wrong check digit is left off the Organization, so they are written from their part's fields.
"""

from __future__ import annotations

from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import from_fhir as ff
from app.adapters.kith.model import Coded, HealthProfessional, RelatedPerson
from app.adapters.plo.model import ContactPerson

Json = dict[str, Any]
EXT_PART = f"{f.SD}/plo-contact-part"
EXT_RELATION = f"{f.SD}/plo-responsible-relation"  # AnsvarForRapport/TypeRelasjon


def participant(
    member: Json,
    role: Coded | None,
    text: str,
    part: str,
    note: str | None = None,
    relation: Coded | None = None,
) -> Json:
    extensions = [f.ext(EXT_PART, "Code", part)]
    if relation is not None:
        extensions.append(f.ext(EXT_RELATION, "CodeableConcept", f.cc(relation)))
    if note is not None:
        extensions.append(f.ext(f.EXT_NOTE, "String", note))
    return {"extension": extensions, "member": member, "role": [f.cc(role) if role else {"text": text}]}


def _members(team: Json | None, part: str, resolve: ff.Resolve) -> list[tuple[Json, Json]]:
    out = []
    for p in (team or {}).get("participant", []):
        ref = f.ref_of(p.get("member"))
        member = resolve(ref) if ref else None
        if f.ext_value(p, EXT_PART, "Code") == part and member is not None:
            out.append((p, member))
    return out


def responsible_from(
    team: Json | None, resolve: ff.Resolve
) -> tuple[HealthProfessional | None, Coded | None, str | None]:
    """The responsible professional, TypeRelasjon and Merknad."""
    found = _members(team, "responsible", resolve)
    if not found:
        return None, None, None
    p, practitioner = found[0]
    relation = f.opt_coded(f.ext_value(p, EXT_RELATION, "CodeableConcept"))
    return ff._professional(practitioner), relation, f.ext_value(p, f.EXT_NOTE, "String")


def contacts_from(team: Json | None, resolve: ff.Resolve) -> tuple[ContactPerson, ...]:
    return tuple(
        ContactPerson(ff._professional(m), f.ext_value(p, f.EXT_NOTE, "String"))
        for p, m in _members(team, "contact", resolve)
    )


def related_from(team: Json | None, resolve: ff.Resolve) -> tuple[RelatedPerson, ...]:
    return tuple(ff._related_person(m) for _, m in _members(team, "related", resolve))
