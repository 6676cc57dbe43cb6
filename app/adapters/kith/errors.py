"""The one exception of the KITH adapter, carrying an AppRec error code (Volven 8221).

Messages are written for logs and receipts, so they name elements and line numbers but never copy element
text or attribute values: a message could otherwise leak a fødselsnummer or a diagnosis into a log line or
into the receipt sent back over the network.
"""

from __future__ import annotations

from enum import StrEnum


class AppRecError(StrEnum):
    """Volven 8221 "Feil i applikasjonskvittering" (codes as used by NHN, NAV and KS in their clients)."""

    INVALID_MSG_ID = "E10"  # Ugyldig meldingsidentifikator
    PHYSICIAN_UNKNOWN = "E20"  # Lege finnes ikke
    RECEIVER_UNKNOWN = "E21"  # Mottaker finnes ikke
    PATIENT_FNR_MISSING = "E30"  # Pasientens fødselsnummer mangler
    PATIENT_FNR_WRONG = "E31"  # Pasientens fødselsnummer er feil
    PATIENT_NAME_MISSING = "E32"  # Pasientens navn mangler
    PATIENT_UNKNOWN = "E35"  # Pasienten finnes ikke i mottakersystemet
    PATIENT_INFO_INSUFFICIENT = "E36"  # Pasientopplysninger er utilstrekkelige
    SIGNATURE = "S01"  # Feil på signatur
    CERTIFICATE_INVALID = "S02"  # Ugyldig sertifikat
    CERTIFICATE_REVOKED = "S03"  # Tilbaketrukket sertifikat
    SIGNATURE_OTHER = "S99"  # Annen feil på signatur eller sertifikat
    NOT_XML = "T01"  # Ikke XML / ikke 'well formed' / uleselig
    NOT_VALID = "T02"  # XML validerer ikke
    UNSUPPORTED_FORMAT = "T10"  # Støtter ikke meldingsformatet
    FORMAT_OTHER = "T99"  # Annen feil på format
    OTHER = "X99"  # Annen feil


DESCRIPTIONS: dict[AppRecError, str] = {
    AppRecError.INVALID_MSG_ID: "Ugyldig meldingsidentifikator",
    AppRecError.PHYSICIAN_UNKNOWN: "Lege finnes ikke",
    AppRecError.RECEIVER_UNKNOWN: "Mottaker finnes ikke",
    AppRecError.PATIENT_FNR_MISSING: "Pasientens fødselsnummer mangler",
    AppRecError.PATIENT_FNR_WRONG: "Pasientens fødselsnummer er feil",
    AppRecError.PATIENT_NAME_MISSING: "Pasientens navn mangler",
    AppRecError.PATIENT_UNKNOWN: "Pasienten finnes ikke i mottakersystemet",
    AppRecError.PATIENT_INFO_INSUFFICIENT: "Pasientopplysninger er utilstrekkelige",
    AppRecError.SIGNATURE: "Feil på signatur",
    AppRecError.CERTIFICATE_INVALID: "Ugyldig sertifikat",
    AppRecError.CERTIFICATE_REVOKED: "Tilbaketrukket sertifikat",
    AppRecError.SIGNATURE_OTHER: "Annen feil på signatur eller sertifikat",
    AppRecError.NOT_XML: "Ikke XML / ikke 'well formed' / uleselig",
    AppRecError.NOT_VALID: "XML validerer ikke",
    AppRecError.UNSUPPORTED_FORMAT: "Støtter ikke meldingsformatet",
    AppRecError.FORMAT_OTHER: "Annen feil på format",
    AppRecError.OTHER: "Annen feil",
}


class KithError(Exception):
    """A received message cannot be accepted. `code` goes into the AppRec Error, `message` is safe to log."""

    def __init__(self, code: AppRecError, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.code]
