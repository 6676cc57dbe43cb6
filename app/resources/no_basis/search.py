"""The pack's search parameters, as data: municipality (kommunenummer) and the no-basis middlename.

`municipality` reads the no-basis-municipalitycode extension, which sits on the primitive Address.district.
FHIR JSON keeps a primitive's extensions in a sibling `_district` object, and the engine's FHIRPath subset
walks JSON keys, so the indexed expression names `_district` directly (the standard FHIRPath form,
`address.district.extension('...').value`, does not compile in the subset; the package docstring says
what the engine would need). The extension's valueCoding is indexed as a token, so both
`municipality=0301` and `municipality=urn:oid:2.16.578.1.12.4.1.1.3402|0301` match.
"""

from __future__ import annotations

from app.fhir.registry import SearchParam

MUNICIPALITY_EXTENSION = "http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode"
MIDDLENAME_EXTENSION = "http://hl7.no/fhir/StructureDefinition/no-basis-middlename"
MUNICIPALITY_URL = "http://helsebro.no/fhir/SearchParameter/no-basis-municipality"
MIDDLENAME_URL = "http://hl7.no/fhir/SearchParameter/no-basis-middlename"  # published by HL7 Norway

MUNICIPALITY_BASES = ("Patient", "Person", "RelatedPerson", "Practitioner", "Organization", "Location")
MIDDLENAME_BASES = ("Patient", "Practitioner", "Person")


def _union(bases: tuple[str, ...], path: str) -> str:
    return " | ".join(f"{base}.{path}" for base in bases)


def pack_search_parameters() -> list[tuple[tuple[str, ...], SearchParam]]:
    """(base resource types, parameter) pairs for Registry.add_search_param."""
    municipality = SearchParam(
        code="municipality",
        type="token",
        expression=_union(
            MUNICIPALITY_BASES, f"address._district.extension.where(url='{MUNICIPALITY_EXTENSION}').value"
        ),
        url=MUNICIPALITY_URL,
        documentation="Kommunenummer of an address (no-basis-municipalitycode on Address.district), "
        "e.g. urn:oid:2.16.578.1.12.4.1.1.3402|0301",
    )
    middlename = SearchParam(
        code="middlename",
        type="string",
        expression=_union(MIDDLENAME_BASES, f"name.extension.where(url='{MIDDLENAME_EXTENSION}').value"),
        url=MIDDLENAME_URL,
        documentation="Norwegian middle name (mellomnavn, no-basis-middlename on HumanName)",
    )
    return [(MUNICIPALITY_BASES, municipality), (MIDDLENAME_BASES, middlename)]
