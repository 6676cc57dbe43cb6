"""Receiving e-resept messages through the KITH intake (`POST /$kith-message`): which messages are read,
and what each changes in the store. Pure functions; `store.py` reads the stored state through the engine.

- M1 Resept: the prescription (MedicationRequest with its parties), a conditional update on the ReseptId.
- M10 Utleveringsrapport: the dispense (MedicationDispense), pointing at its stored prescription.
- M5 Tilbakekalling: the stored prescription cancelled or stopped (with If-Match).
- M7 Slettet resept i RF: the prescription the recall withdrew, marked deleted (with If-Match).
- M912 Nedlasting av PLL: Reseptformidleren's copy of the patient's medicines in use, kept as a snapshot
  List of MedicationStatements (one per prescription, updated by the next download), and the drug
  reactions of the lists it carries (M25 ki:Allergi) as AllergyIntolerances (updated by the sender's next
  list), which the core journal's rules take as critical information with the sender as source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from app.adapters.eresept import messages as m
from app.adapters.eresept.model import Deletion, Dispense, MedicationsInUse, Prescription, Recall
from app.adapters.eresept.pll import TYPE_M912, parse_m912
from app.adapters.kith import _xml as x
from app.adapters.kith import msghead
from app.adapters.kith._fhir_common import NS, search_identifier
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded
from app.resources.no_basis.identifiers import FNR_SYSTEM

Json = dict[str, Any]
PLL_MESSAGE_SYSTEM = f"{NS}/eresept-pll-msg-id"  # the M912 a snapshot List was received as
PLL_STATEMENT_SYSTEM = f"{NS}/eresept-pll-statement"  # "<fødselsnummer>/<ReseptId>"
EreseptMessage = Prescription | Recall | Deletion | Dispense | MedicationsInUse

# MsgHead Type (Volven 8279) -> the message type and its reader.
_READERS: dict[str, tuple[Coded, Callable[[etree._Element], EreseptMessage]]] = {
    "ERM1": (m.TYPE_M1, m.parse_m1),
    "ERM5": (m.TYPE_M5, m.parse_m5),
    "ERM7": (m.TYPE_M7, m.parse_m7),
    "ERM10": (m.TYPE_M10, m.parse_m10),
    "ERM912": (TYPE_M912, parse_m912),
}
SUPPORTED = tuple(_READERS)


def message_type_code(root: etree._Element) -> str | None:
    """MsgHead/MsgInfo/Type/@V, read without parsing the rest (None for anything but a MsgHead)."""
    if root.tag != x.q(msghead.NS, "MsgHead"):
        return None
    type_el = root.find(f"{{{msghead.NS}}}MsgInfo/{{{msghead.NS}}}Type")
    return None if type_el is None else type_el.get("V")


def is_eresept(root: etree._Element) -> bool:
    """An e-resept message (type ERM…), supported here or not: it is not read as a referral."""
    code = message_type_code(root)
    return code is not None and code.startswith("ERM")


def read(root: etree._Element) -> tuple[Coded, EreseptMessage]:
    """The message type and the message; T10 for an e-resept message this intake does not take."""
    code = message_type_code(root) or ""
    if code not in _READERS:
        raise KithError(
            AppRecError.UNSUPPORTED_FORMAT,
            f"e-resept message type {code or '(none)'} is not received here (supported: {', '.join(SUPPORTED)})",
        )
    msg_type, reader = _READERS[code]
    return msg_type, reader(root)


def recalled_message_id(deletion: Deletion) -> str:
    """The message an M7 answers (the M5 that recalled the prescription): its ConversationRef."""
    ref = deletion.envelope.conversation_ref
    if ref is None:
        raise KithError(AppRecError.NOT_VALID, "an M7 must name the recall it answers (ConversationRef)")
    return ref.parent_id


def link_dispense(bundle: Json, request_id: str) -> None:
    """Point the dispense of an M10 Bundle at its stored prescription by a literal reference too (the
    ReseptId stays as its identifier), so `MedicationDispense?prescription=` finds it."""
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "MedicationDispense":
            for authorizing in entry["resource"]["authorizingPrescription"]:
                authorizing["reference"] = f"MedicationRequest/{request_id}"


def pll_transaction(bundle: Json, fnr: str, msg_id: str, allergies: list[Json]) -> Json:
    """An M912's collection Bundle (`fhir_pll`) as the transaction that stores it: the patient found by
    fødselsnummer (or created), the List as a snapshot of Reseptformidleren's PLL identified by the
    message, each MedicationStatement updated by its patient and ReseptId, and `allergies` (AllergyIntolerance
    entries of the lists it carries) updated by their registration identifier."""
    entries = []
    for entry in bundle["entry"]:
        resource = entry["resource"]
        res_type = resource["resourceType"]
        if res_type == "Patient":
            fnr_key = {"system": FNR_SYSTEM, "value": fnr}
            request = {"method": "POST", "url": "Patient", "ifNoneExist": search_identifier(fnr_key)}
        elif res_type == "List":
            resource = {
                **resource,
                "mode": "snapshot",
                "title": "Legemidler i bruk fra Reseptformidleren (PLL)",
                "identifier": [{"system": PLL_MESSAGE_SYSTEM, "value": msg_id}],
            }
            request = {"method": "POST", "url": "List"}
        else:
            rx_id = resource["basedOn"][0]["identifier"]["value"]
            key = {"system": PLL_STATEMENT_SYSTEM, "value": f"{fnr}/{rx_id}"}
            resource = {**resource, "identifier": [key]}
            request = {"method": "PUT", "url": f"MedicationStatement?{search_identifier(key)}"}
        entries.append({"fullUrl": entry["fullUrl"], "resource": resource, "request": request})
    for entry in allergies:
        key = entry["resource"]["identifier"][0]
        request = {"method": "PUT", "url": f"AllergyIntolerance?{search_identifier(key)}"}
        entries.append({**entry, "request": request})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
