"""The one exception of the KITH adapter, carrying an AppRec error code (Volven 8221).

Messages are written in English for the logs; the AppRec sent back carries them in Norwegian (`norwegian`).
Messages are written for logs and receipts, so they name elements and line numbers but never copy element
text or attribute values: a message could otherwise leak a fødselsnummer or a diagnosis into a log line or
into the receipt sent back over the network.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any


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


CANCELLED_REFERRAL = (
    "the referral with this document id is cancelled: send a new referral with a new document id"
)


class KithError(Exception):
    """A received message cannot be accepted. `code` goes into the AppRec Error, `message` is safe to log."""

    def __init__(self, code: AppRecError, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:  # raised in a worker process too (intake.read_with_schemas)
        return (type(self), (self.code, self.message))

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.code]


# English messages (as the parsers raise them) -> the Norwegian text of the AppRec's Error/@OT.
_NORWEGIAN: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(f"^{pattern}$"), text)
    for pattern, text in (
        (r"mandatory element <([^>]+)> is missing", r"obligatorisk element <\1> mangler"),
        (r"mandatory element <([^>]+)> is empty", r"obligatorisk element <\1> er tomt"),
        (
            r"mandatory element <GenDate> or <IssueDate> is missing",
            "obligatorisk element <GenDate> eller <IssueDate> mangler",
        ),
        (r"invalid date/time in <([^>]+)>", r"ugyldig dato/tid i <\1>"),
        (r"invalid boolean in <([^>]+)>", r"ugyldig sannhetsverdi i <\1>"),
        (r"invalid number in <([^>]+)>", r"ugyldig tall i <\1>"),
        (r"invalid integer in <([^>]+)>", r"ugyldig heltall i <\1>"),
        (r"message exceeds the size limit of (\d+) bytes", r"meldingen er større enn grensen på \1 byte"),
        (r"DTD/DOCTYPE declarations are not allowed", "DTD/DOCTYPE-deklarasjoner er ikke tillatt"),
        (r"message is empty", "meldingen er tom"),
        (r"message must be given as bytes", "meldingen må gis som bytes"),
        (r"unreadable XML \(encoding\)", "uleselig XML (tegnsett)"),
        (r"message has no root element", "meldingen har ikke noe rotelement"),
        (r"message does not validate against its XSD \((.*)\)", r"meldingen validerer ikke mot XSD (\1)"),
        (r"patient identifier is missing", "pasientens identifikator mangler"),
        (r"patient identifier has an unknown type", "pasientens identifikator har ukjent type"),
        (r"patient identifier is empty", "pasientens identifikator er tom"),
        (r"patient name is missing", "pasientens navn mangler"),
        (
            r"patient (fødselsnummer|D-nummer|H-nummer|felles hjelpenummer) is invalid \(check digit\)",
            r"pasientens \1 er ugyldig (kontrollsiffer)",
        ),
        (
            r"patient (fødselsnummer|D-nummer|H-nummer|felles hjelpenummer) is invalid \(not 11 digits\)",
            r"pasientens \1 er ugyldig (ikke 11 siffer)",
        ),
        (
            r"patient (fødselsnummer|D-nummer|H-nummer|felles hjelpenummer) is invalid \(date or marks\)",
            r"pasientens \1 er ugyldig (dato eller merking)",
        ),
        (
            r"patient identifier is missing or of an unknown type",
            "pasientens identifikator mangler eller har ukjent type",
        ),
        (r"the MsgHead names no patient", "hodemeldingen angir ingen pasient"),
        (r"MsgHead has no Patient", "hodemeldingen angir ingen pasient"),
        (r"the message names no patient", "meldingen angir ingen pasient"),
        (
            r"business document is not a Dialogmelding 1.0 or 1.1",
            "fagmeldingen er ikke en Dialogmelding 1.0 eller 1.1",
        ),
        (
            r"a Dialogmelding holds no <Foresporsel> and no <Notat>",
            "dialogmeldingen har verken <Foresporsel> eller <Notat>",
        ),
        (
            r"a Dialogmelding 1.0 role names a health professional",
            "en rolle i Dialogmelding 1.0 må angi helsepersonell",
        ),
        (
            r"business document is not a Henvisning 2.0 \(namespace or name\)",
            "fagmeldingen er ikke en Henvisning 2.0 (navnerom eller navn)",
        ),
        (
            r"not a Henvisning 1.0/1.1 message \(namespace or name\)",
            "ikke en Henvisning 1.0/1.1 (navnerom eller navn)",
        ),
        (
            r"not a supported Henvisning message \(root element or namespace\)",
            "ikke en støttet melding (rotelement eller navnerom)",
        ),
        (
            r"root element is not a MsgHead v1.2 \(namespace or name\)",
            "rotelementet er ikke en MsgHead v1.2 (navnerom eller navn)",
        ),
        (r"MsgHead type is not a Henvisning 2.0 type", "meldingstypen er ikke en Henvisning 2.0-type"),
        (r"MsgHead carries no business document", "hodemeldingen har ingen fagmelding"),
        (r"the MsgHead does not carry a <([^>]+)> \((.*)\)", r"hodemeldingen har ingen <\1> (\2)"),
        (r"unknown ServType \(expected N, M or C\)", "ukjent ServType (forventet N, M eller C)"),
        (r"the message could not be stored \((.*)\)", r"meldingen kunne ikke lagres (\1)"),
        (
            r"e-resept message type (\S+) is not received here \(supported: (.*)\)",
            r"e-resept-meldingstype \1 tas ikke imot her (støttet: \2)",
        ),
        (
            r"the recall names a prescription not held here \(ReseptId\)",
            "tilbakekallingen gjelder en resept som ikke finnes her (ReseptId)",
        ),
        (
            r"the M7 answers no recall of a prescription held here",
            "M7 svarer ikke på en tilbakekalling av en resept som finnes her",
        ),
        (
            r"an M7 must name the recall it answers \(ConversationRef\)",
            "en M7 må angi tilbakekallingen den svarer på (ConversationRef)",
        ),
        (r"(.+) has neither Inst nor HCProf", r"\1 har verken Inst eller HCProf"),
        (
            r"not an Epikrise 1.0/1.1/1.2 \(namespace or name\)",
            "ikke en Epikrise 1.0/1.1/1.2 (navnerom eller navn)",
        ),
        (
            r"the cancellation names an epikrise not received here",
            "kanselleringen gjelder en epikrise som ikke er mottatt her",
        ),
        (
            r"the referral with this document id is cancelled: send a new referral with a new document id",
            "henvisningen med denne dokument-id-en er kansellert: send en ny henvisning med ny dokument-id",
        ),
    )
)
_ELEMENT = re.compile(r"<[A-Za-z][\w.:-]*>")


def norwegian(error: KithError) -> str:
    """The error's message in Norwegian for the receipt: a known message translated, any other as the code's
    Norwegian description with the elements the message names (no values, as in the message itself)."""
    for pattern, text in _NORWEGIAN:
        if pattern.match(error.message):
            return pattern.sub(text, error.message)
    elements = list(dict.fromkeys(_ELEMENT.findall(error.message)))
    return f"{error.description} ({', '.join(elements)})" if elements else error.description
