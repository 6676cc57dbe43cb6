"""Epikrise (discharge summary) 1.0, 1.1 and 1.2: pure parse, build and FHIR mapping (see README.md)."""
