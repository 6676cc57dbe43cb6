"""Medication list (pasientens legemiddelliste): the one current List per patient, reconciliation
(legemiddelsamstemming) and multidose ownership. See README.md."""
