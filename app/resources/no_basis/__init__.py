"""HL7 Norway no-basis (hl7.fhir.no.basis): Norwegian identities, as a domain pack.

- hook.py: a before_write hook that normalises the alternative NamingSystem URIs of Norwegian identifiers
  to their OIDs and checks the values (fødselsnummer, D-nummer, H-nummer, felles hjelpenummer, HPR,
  organisasjonsnummer, RESH, HER-id, DUF); failures are 422 OperationOutcomes without the value.
- search.py: search parameters `municipality` (kommunenummer) and `middlename`, as data.
- The no-basis extensions (municipalitycode, urban-district, propertyinformation, address-official,
  middlename) need nothing here: the generic model validation accepts them.

Engine note: the municipality expression walks the JSON key `_district`. To accept the standard FHIRPath
form `Patient.address.district.extension('url').value`, app/fhir/search/fhirpath.py would need (1) the
step `extension('url')` compiled as Child('extension') + FieldEquals('url', url), and (2) Child on a
primitive to continue into the `_name` sibling when the next step is `extension`.
"""

from app.resources.no_basis.pack import install
from app.resources.no_basis.search import pack_search_parameters

__all__ = ["install", "pack_search_parameters"]
