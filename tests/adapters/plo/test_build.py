"""Pasientlogistikk 1.6 written from the model (pure): every official logistics sample read and written
again validates against the official XSDs and reads back as the same message; the municipality's answer is
written as 2.0; what a message cannot hold is refused with the part named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.plo.build import UnbuildableError, build_plo
from app.adapters.plo.model import Kind, Logistics
from app.adapters.plo.parse import parse_plo
from tests.adapters.plo.conftest import LOGISTICS, assert_xsd_valid, legacy_files, sample

UTSKREVET = "Pasientlogistikk_Melding_om_utskrevet_pasient_v1-6_Ny.xml"


@pytest.mark.parametrize("path", legacy_files(LOGISTICS))
def test_every_logistics_sample_is_written_again_as_valid_1_6(path: Path) -> None:
    msg = parse_plo(parse_xml(path.read_bytes()))
    written = assert_xsd_valid(build_plo(msg))
    assert parse_plo(written) == msg  # every field, the contact unit and the responsible nurse included


def test_what_1_6_cannot_hold_is_refused() -> None:
    msg = parse_plo(parse_xml(sample(UTSKREVET)))
    with pytest.raises(UnbuildableError, match="UtTil"):
        build_plo(replace(msg, discharged_to=()))
    with pytest.raises(UnbuildableError, match="TidsfestetHendelse"):
        build_plo(replace(msg, events=()))
    with pytest.raises(UnbuildableError, match="exactly one"):
        build_plo(replace(msg, events=msg.events * 2))


def test_the_answer_is_written_as_2_0() -> None:
    """The municipality's answer has no 1.6 form: written as 2.0, valid, read back as the same events."""
    msg = parse_plo(parse_xml(sample(UTSKREVET)))
    event = replace(msg.events[0], code=None, description="Kommunen kan ta imot pasienten", remark=None)
    answer = replace(msg, logistics=Logistics.ANSWER, events=(event,), discharged_to=())
    written = assert_xsd_valid(build_plo(answer))
    back = parse_plo(written)
    assert back.logistics is Logistics.ANSWER
    assert back.version.value == "2.0"
    assert [(e.description, e.time.isoformat()) for e in back.events] == [
        ("Kommunen kan ta imot pasienten", "2018-02-01T00:00:00")
    ]
    cancel = parse_plo(assert_xsd_valid(build_plo(replace(answer, kind=Kind.CANCEL))))
    assert cancel.kind is Kind.CANCEL  # 2.0 holds the kind in FellesAdministrativeOpplysninger
