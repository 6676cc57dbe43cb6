"""Medication list (pasientens legemiddelliste): the one current List per patient, reconciliation
(legemiddelsamstemming) and, later, multidose ownership. See README.md."""
