"""Realistic no-basis test resources: synthetic people (Tenor-style fødselsnummer), invented organisations."""

from __future__ import annotations

from typing import Any

from app.resources.no_basis.identifiers import (
    FNR_SYSTEM,
    ID_TYPE_SYSTEM,
    MUNICIPALITY_SYSTEM,
    ORGNR_SYSTEM,
    synthetic_fnr,
)

NO_BASIS = "http://hl7.no/fhir/StructureDefinition"
MUNICIPALITY_EXT = f"{NO_BASIS}/no-basis-municipalitycode"
URBAN_DISTRICT_EXT = f"{NO_BASIS}/no-basis-urban-district"
PROPERTY_EXT = f"{NO_BASIS}/no-basis-propertyinformation"
OFFICIAL_EXT = f"{NO_BASIS}/no-basis-address-official"
MIDDLENAME_EXT = f"{NO_BASIS}/no-basis-middlename"
BYDEL_SYSTEM = "urn:oid:2.16.578.1.12.4.1.1.3403"

KARI_FNR = synthetic_fnr(13, 9, 1972, 100)
OLA_FNR = synthetic_fnr(2, 2, 1948, 200)
ORGNR = "311900412"  # synthetic, valid mod-11
HNR_TYPE = {"coding": [{"system": ID_TYPE_SYSTEM, "code": "HNR", "display": "H-nummer"}]}


def municipality(code: str, name: str) -> dict[str, Any]:
    return {
        "url": MUNICIPALITY_EXT,
        "valueCoding": {"system": MUNICIPALITY_SYSTEM, "code": code, "display": name},
    }


def address(
    street: str, postal_code: str, city: str, kommune: str, extra: list[Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "use": "home",
        "line": [street],
        "postalCode": postal_code,
        "city": city,
        "district": city,
        "_district": {"extension": [municipality(kommune, city)]},
        "country": "NO",
    }
    if extra:
        body["extension"] = extra
    return body


def kari() -> dict[str, Any]:
    """Kari Sørli Nordmann of Grünerløkka, Oslo, with every no-basis extension this pack accepts."""
    return {
        "resourceType": "Patient",
        "meta": {"profile": [f"{NO_BASIS}/no-basis-Patient"]},
        "identifier": [{"use": "official", "system": FNR_SYSTEM, "value": KARI_FNR}],
        "name": [
            {
                "use": "official",
                "family": "Nordmann",
                "given": ["Kari"],
                "extension": [{"url": MIDDLENAME_EXT, "valueString": "Sørli"}],
            }
        ],
        "gender": "female",
        "birthDate": "1972-09-13",
        "address": [
            address(
                "Thorvald Meyers gate 12",
                "0555",
                "Oslo",
                "0301",
                [
                    {"url": OFFICIAL_EXT, "valueBoolean": True},
                    {
                        "url": URBAN_DISTRICT_EXT,
                        "valueCoding": {"system": BYDEL_SYSTEM, "code": "030102", "display": "Grünerløkka"},
                    },
                    {
                        "url": PROPERTY_EXT,
                        "extension": [
                            {"url": "cadastralUnitNumber", "valueInteger": 228},
                            {"url": "propertyUnitNumber", "valueInteger": 117},
                            {"url": "condominiumUnitNumber", "valueInteger": 4},
                            {
                                "url": "municipality",
                                "valueCoding": {"system": MUNICIPALITY_SYSTEM, "code": "0301"},
                            },
                        ],
                    },
                ],
            )
        ],
    }


def ola() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": FNR_SYSTEM, "value": OLA_FNR}],
        "name": [{"family": "Åsheim", "given": ["Ola"]}],
        "address": [address("Bryggen 5", "5003", "Bergen", "4601")],
    }


def organization(orgnr: str = ORGNR, kommune: str = "0301", city: str = "Oslo") -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "identifier": [{"system": ORGNR_SYSTEM, "value": orgnr}],
        "name": "Legesenteret på Løkka",
        "address": [address("Markveien 35", "0554", city, kommune)],
    }
