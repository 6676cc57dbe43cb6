"""HTTP routes of the KITH adapter: legacy referral and e-resept messages in (with an AppRec back), and
referrals out.

- `POST /$kith-message`: a Henvisning 1.0/1.1 (own header) or 2.0 (MsgHead), a Dialogmelding 1.0 or 1.1
  (MsgHead; see dialog_store.py), an Epikrise 1.0/1.1/1.2 (own header; see epikrise_store.py), a PLO message (MsgHead; see app/adapters/plo), or an e-resept M1, M5, M7, M10 or M912 (MsgHead; see
  app/adapters/eresept/intake.py), as `application/xml`. The
  answer is always an AppRec (`application/xml`): 200 with status 1 (OK) when the message is stored, or
  status 2 (avvist) with a Volven 8221 error code and HTTP 400/413/422 (the message) or 409/412/5xx
  (storage).
  A refused message stores nothing. A repeated MsgId gets the first answer again and changes nothing.
  A body not declared as XML (any other Content-Type, or none) is not read as a message: 415 with an
  OperationOutcome, as the FHIR API answers a wrong media type.
  An AppRec for a message sent from here (a status Dialogmelding, see status_messages.py) is recorded on
  that message's Communication (completed, or not-done when refused) and answered with 204.
- `GET /ServiceRequest/{id}/$kith-henvisning?version=2.0|1.1`: the stored referral as a new Henvisning
  message (fresh MsgId and GenDate) for a receiver that is not on FHIR.

Everything goes through the engine's service layer with the caller's context, so the access policy and
the audit apply as for any FHIR request; a caller who may not write gets the engine's 403 OperationOutcome
rather than a receipt, since the message itself was not at fault.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum

from fastapi import Request, Response

from app.adapters.epikrise.model import Epikrise
from app.adapters.eresept import store as eresept_store
from app.adapters.eresept.intake import EreseptMessage
from app.adapters.kith import dialog_store, epikrise_store, intake
from app.adapters.kith._fhir_referral import cancelled_service_request
from app.adapters.kith.apprec import (
    AppRec,
    AppRecVersion,
    ReceivedMessage,
    build_apprec,
    receipt_for,
    rejection_for,
)
from app.adapters.kith.dialogmelding import Dialogmelding
from app.adapters.kith.errors import CANCELLED_REFERRAL, AppRecError, KithError
from app.adapters.kith.henvisning import serialize_henvisning_tree
from app.adapters.kith.intake import Anchor, Json
from app.adapters.kith.model import (
    OID_ORG_ID_TYPE,
    Coded,
    HenvisningVersion,
    Ident,
    MessageKind,
    Organisation,
    Referral,
)
from app.adapters.kith.stored import find_one, stored_referral
from app.adapters.kith.to_fhir import referral_identifier, referral_to_bundle
from app.adapters.kith.xmlsafe import to_bytes
from app.adapters.kith.xsd import XsdValidator, get_validator
from app.adapters.plo import store as plo_store
from app.adapters.plo.model import PloMessage
from app.config import Settings
from app.fhir.api import context as request_context
from app.fhir.api import fhir_engine
from app.fhir.context import RequestContext
from app.fhir.engine import Engine
from app.fhir.operations import Operation, Parameter
from app.fhir.outcome import Category, FhirError

log = logging.getLogger(__name__)
OPERATION_TAGS: list[str | Enum] = ["KITH messages"]
XML = "application/xml"
_XML_MEDIA_TYPES = frozenset({"application/xml", "text/xml"})


def _declares_xml(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in _XML_MEDIA_TYPES or media.endswith("+xml")


@dataclass(frozen=True)
class KithConfig:
    validator: XsdValidator | None
    max_bytes: int
    apprec_version: AppRecVersion
    own: Organisation  # answers messages that cannot be read at all

    @property
    def xsd_dir(self) -> str | None:
        """The validator's schemas, for a worker process to compile its own (intake.read_with_schemas)."""
        directory = None if self.validator is None else self.validator.xsd_dir
        return None if directory is None else str(directory)

    @classmethod
    def from_settings(cls, settings: Settings) -> KithConfig:
        her = settings.kith_receiver_her_id
        idents = (Ident(her, Coded("HER", OID_ORG_ID_TYPE, "HER-id")),) if her else ()
        return cls(
            validator=get_validator(settings.kith_xsd_dir) if settings.kith_xsd_dir else None,
            max_bytes=settings.kith_max_message_bytes,
            apprec_version=AppRecVersion(settings.kith_apprec_version),
            own=Organisation(name=settings.kith_receiver_name, idents=idents),
        )


def _config(request: Request) -> KithConfig:
    return request.app.state.kith  # type: ignore[no-any-return]


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=XML)


# --- reading through the engine -----------------------------------------------------------------------------


async def _stored_receipt(engine: Engine, ctx: RequestContext, key: str) -> bytes | None:
    record = await find_one(engine, ctx, "Communication", intake.message_identifier(key))
    return intake.stored_apprec(record) if record is not None else None


async def _record_receipt(engine: Engine, ctx: RequestContext, apprec: AppRec, xml: bytes) -> None:
    """Mark the sent message the AppRec answers as delivered (or refused), with If-Match."""
    sent = {"system": intake.SENT_MSG_ID_SYSTEM, "value": apprec.original_id}
    record = await find_one(engine, ctx, "Communication", sent)
    if record is None:
        raise FhirError(Category.NOT_FOUND, "the AppRec answers no message sent from here (OriginalMsgId)")
    entry = intake.update_entry(intake.delivered(record, apprec, xml))  # the record, its id and version kept
    await engine.transaction(ctx, {"resourceType": "Bundle", "type": "transaction", "entry": [entry]})


# --- POST /$kith-message ------------------------------------------------------------------------------------


_OWN_PARTS = ("RelatedPerson", "DocumentReference")  # the referral's own parts, PUT by part id


async def _against_stored(engine: Engine, ctx: RequestContext, ref: Referral, bundle: Json) -> None:
    """A cancelled referral stays cancelled: a later message with its document id (new, change, or the
    cancellation again) is refused, so the ServiceRequest and the Task never disagree. A cancellation keeps
    the stored clinical content (`cancelled_service_request`) and leaves the referral's own parts
    (RelatedPerson, DocumentReference) as they are. The stored ServiceRequest's version goes in the entry's
    ifMatch, so a cancellation stored in the meantime fails the transaction instead of being overwritten."""
    identifier = referral_identifier(ref)
    sr = await find_one(engine, ctx, "ServiceRequest", identifier)
    task = await find_one(engine, ctx, "Task", identifier)
    if (sr is not None and sr.get("status") == "revoked") or (
        task is not None and task.get("status") == "cancelled"
    ):
        raise KithError(AppRecError.OTHER, CANCELLED_REFERRAL)
    if sr is None:
        return
    if ref.kind is MessageKind.CANCEL:
        bundle["entry"] = [
            e
            for e in bundle["entry"]
            if not (e["request"]["method"] == "PUT" and e["resource"]["resourceType"] in _OWN_PARTS)
        ]
    for entry in bundle["entry"]:
        if entry["request"]["url"].startswith("ServiceRequest?"):
            if ref.kind is MessageKind.CANCEL:
                entry["resource"] = cancelled_service_request(sr, entry["resource"])
            if (version := sr.get("meta", {}).get("versionId")) is not None:
                entry["request"]["ifMatch"] = f'W/"{version}"'


async def _changes(
    engine: Engine,
    ctx: RequestContext,
    message: Referral | EreseptMessage | Dialogmelding | Epikrise | PloMessage,
) -> tuple[Json, Anchor]:
    """The transaction a message makes and what its record is about."""
    if isinstance(message, Referral):
        bundle = referral_to_bundle(message)
        await _against_stored(engine, ctx, message, bundle)
        return bundle, intake.referral_anchor(bundle)
    if isinstance(message, Dialogmelding):
        return await dialog_store.changes(engine, ctx, message)
    if isinstance(message, Epikrise):
        return await epikrise_store.changes(engine, ctx, message)
    if isinstance(message, PloMessage):
        return await plo_store.changes(engine, ctx, message)
    return await eresept_store.changes(engine, ctx, message)


@dataclass(frozen=True)
class Reply:
    """What the intake answers a message: an HTTP status and the AppRec (None for a receipt taken in)."""

    status: int
    apprec: bytes | None
    refusal: str | None = None  # why the message was refused (the AppRec's error), for the caller's log


def _rejection(config: KithConfig, error: KithError, received: ReceivedMessage | None, status: int) -> Reply:
    received = received or intake.unknown_message(config.own, datetime.now().replace(microsecond=0))
    if received.receiver.name is None and not received.receiver.idents:  # no receiver in the header: us
        received = replace(received, receiver=config.own)
    log.info("KITH message refused: %s %s (HTTP %d)", error.code.value, error.message, status)
    apprec = to_bytes(build_apprec(rejection_for(received, error, version=config.apprec_version)))
    return Reply(status, apprec, f"{error.code.value}: {error.message}")


def _storage_error(error: FhirError) -> tuple[KithError, int]:
    """What the store refuses (a change to an unknown referral, a Task rule, a binding) is the message's fault
    (422); a conflict with a concurrent write (409) or a fault (5xx) is worth sending again."""
    status = error.status if error.status in (409, 412) or error.status >= 500 else 422
    return KithError(AppRecError.OTHER, f"the message could not be stored ({error.category.value})"), status


async def receive(engine: Engine, ctx: RequestContext, config: KithConfig, body: bytes) -> Reply:
    """The intake of one KITH message, for the HTTP route and the import command alike: an AppRec for
    every message, idempotent by MsgId, what the message changes and its receipt stored in one transaction."""
    try:
        accepted = await engine.cpu_bound(
            ctx, intake.read_with_schemas, body, config.max_bytes, config.xsd_dir
        )
    except intake.Rejected as refused:
        return _rejection(config, refused.error, refused.received, refused.status)
    if isinstance(accepted, intake.ReceiptIn):
        await _record_receipt(engine, ctx, accepted.apprec, body)
        return Reply(204, None)
    again = await _stored_receipt(engine, ctx, accepted.key)
    if again is not None:
        return Reply(200, again)
    receipt_status, errors = intake.receipt_status(accepted)
    apprec = to_bytes(
        build_apprec(receipt_for(accepted.received, receipt_status, errors, version=config.apprec_version))
    )
    try:
        bundle, anchor = await _changes(engine, ctx, accepted.message)
        bundle["entry"].append(intake.record_entry(anchor, accepted, apprec, datetime.now(UTC)))
        result = await engine.transaction(ctx, bundle)
    except KithError as error:  # a recall of a prescription not held here, an M7 answering no recall
        return _rejection(config, error, accepted.received, 422)
    except FhirError as error:
        if error.category in (Category.FORBIDDEN, Category.UNAUTHORIZED):
            raise
        kith_error, status = _storage_error(error)
        return _rejection(config, kith_error, accepted.received, status)
    if result.entries[-1].status != 201:
        # the same MsgId was stored by a concurrent request in the meantime: its answer stands
        apprec = await _stored_receipt(engine, ctx, accepted.key) or apprec
    log.info("KITH message accepted: %s", accepted.received.msg_type.code)
    return Reply(200, apprec)


async def receive_message(request: Request) -> Response:
    if not _declares_xml(request.headers.get("content-type")):
        raise FhirError(
            Category.UNSUPPORTED_MEDIA,
            "$kith-message takes a KITH XML message (Content-Type application/xml or text/xml)",
            "not-supported",
        )
    body = await request.body()
    reply = await receive(fhir_engine(request), request_context(request), _config(request), body)
    if reply.apprec is None:
        return Response(status_code=204)
    return _xml(reply.apprec, reply.status)


# --- GET /ServiceRequest/{id}/$kith-henvisning --------------------------------------------------------------


async def kith_henvisning(res_id: str, request: Request, version: str = "2.0") -> Response:
    if version not in (HenvisningVersion.V2_0, HenvisningVersion.V1_1):
        raise FhirError(Category.INVALID, "version must be 2.0 or 1.1")
    engine, ctx = fhir_engine(request), request_context(request)
    service_request = await engine.read_resource(ctx, f"ServiceRequest/{res_id}")
    assert service_request is not None
    referral = await stored_referral(engine, ctx, service_request)
    referral = replace(referral, msg_id=str(uuid.uuid4()), generated=datetime.now().replace(microsecond=0))
    root = serialize_henvisning_tree(referral, HenvisningVersion(version))
    validator = _config(request).validator
    if validator is not None:
        result = validator.validate(root)
        if not result.valid and not result.skipped:
            # our own output must be valid: a failure here is a defect, not the caller's fault
            log.error("Henvisning %s does not validate: %s", version, "; ".join(result.errors))
            raise FhirError(Category.FAULT, "the Henvisning produced does not validate against its XSD")
    return _xml(to_bytes(root))


_TAGS = tuple(str(t) for t in OPERATION_TAGS)
OPERATIONS = (
    Operation(
        "kith-message",
        "system",
        "POST",
        receive_message,
        "Receive a KITH Henvisning (1.0/1.1 or 2.0 in MsgHead), a Dialogmelding 1.0/1.1, an Epikrise "
        "1.0/1.1/1.2, a PLO message (1.5/1.6/2.0) or an e-resept M1, M5, M7, M10 or M912, "
        "answered with an AppRec; or the AppRec for a message sent from here (204)",
        description="The body is the KITH XML message (Content-Type application/xml or text/xml).",
        parameters=(Parameter("return", "out", "Binary", 0, "1", "The AppRec (XML)"),),
        affects_state=True,
        tags=_TAGS,
        route_options={
            "response_class": Response,
            "responses": {200: {"content": {XML: {}}, "description": "AppRec (status 1 OK)"}},
        },
    ),
    Operation(
        "kith-henvisning",
        "instance",
        "GET",
        kith_henvisning,
        "The referral as a KITH Henvisning message (version 2.0 in MsgHead, or 1.1)",
        types=("ServiceRequest",),
        parameters=(
            Parameter("version", "in", "string", documentation="2.0 (the default) or 1.1"),
            Parameter("return", "out", "Binary", 1, "1", "The Henvisning (XML)"),
        ),
        tags=_TAGS,
        route_options={
            "response_class": Response,
            "responses": {200: {"content": {XML: {}}, "description": "Henvisning XML"}},
        },
    ),
)
