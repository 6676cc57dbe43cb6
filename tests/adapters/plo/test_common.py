"""The envelope of a PLO message kept on a resource (pure): the same for a stay, a notice and a report's
Composition, as the MsgHead said it; a resource that keeps no message is refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from app.adapters.kith import from_fhir as ff
from app.adapters.kith.errors import KithError
from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.plo._common import envelope_from
from app.adapters.plo.logistics_fhir import logistics_bundle
from app.adapters.plo.model import Kind
from app.adapters.plo.parse import parse_plo
from app.adapters.plo.report_fhir import report_bundle
from tests.adapters.plo.conftest import sample


def _resource(bundle: dict[str, Any], res_type: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == res_type)


@pytest.mark.parametrize(
    ("name", "res_type", "subject"),
    [
        ("Pasientlogistikk_Utskrivningsklar_pasient_v1-6_Ny.xml", "Task", "for"),
        ("Pasientlogistikk_Innlagt_pasient_v1-6_Kansellering.xml", "Encounter", "subject"),
        ("Innleggelsesrapport_v1-6_Endring.xml", "Composition", "subject"),
    ],
)
def test_the_envelope_is_what_the_msghead_said(name: str, res_type: str, subject: str) -> None:
    msg = parse_plo(parse_xml(sample(name)))
    bundle, _ = report_bundle(msg) if msg.family.is_report else logistics_bundle(msg, None, None)
    source = _resource(bundle, res_type)
    envelope = envelope_from(source, source.get(subject), ff.bundle_resolver(bundle))
    same = ("version", "family", "kind", "msg_id", "msg_type", "gen_date", "issue_date", "conversation")
    assert {k: getattr(envelope, k) for k in same} == {k: getattr(msg, k) for k in same}
    assert (envelope.sender.name, envelope.receiver.name) == (msg.sender.name, msg.receiver.name)
    assert envelope.patient is not None
    assert msg.patient is not None
    assert envelope.patient.idents == msg.patient.idents
    assert (envelope.logistics, envelope.document, envelope.events) == (None, None, ())  # the caller's
    if msg.kind is not Kind.NEW:
        assert envelope.conversation is not None


def test_a_resource_without_a_kept_message_is_refused_by_name() -> None:
    with pytest.raises(KithError, match="the Encounter keeps no PLO message"):
        envelope_from({"resourceType": "Encounter"}, None, lambda _ref: None)
