"""The pack's code systems and the CodeSystem resources the server publishes."""

from __future__ import annotations

from enum import StrEnum

import pytest
from fhir.resources.R4B.codesystem import CodeSystem

from app.resources.referrals.codes import (
    CONCEPTS,
    DECISION_SYSTEM,
    OUTPUT_SYSTEM,
    PRIORITY_SYSTEM,
    REFERRAL_STATUS_SYSTEM,
    REJECTION_REASON_SYSTEM,
    BusinessStatus,
    Decision,
    Output,
    Priority,
    RejectionReason,
    code_systems,
    codeable,
    coding,
    has_code,
)


@pytest.mark.parametrize(
    ("system", "enum"),
    [
        (REFERRAL_STATUS_SYSTEM, BusinessStatus),
        (DECISION_SYSTEM, Decision),
        (PRIORITY_SYSTEM, Priority),
        (REJECTION_REASON_SYSTEM, RejectionReason),
        (OUTPUT_SYSTEM, Output),
    ],
)
def test_every_enum_member_is_in_its_code_system(system: str, enum: type[StrEnum]) -> None:
    codes = [c.code for c in CONCEPTS[system]]
    assert sorted(codes) == sorted(m.value for m in enum)
    assert len(set(codes)) == len(codes)
    assert all(code.isascii() and code == code.lower() for code in codes)


def test_code_system_resources_are_valid_r4() -> None:
    published = code_systems()
    assert {cs["url"] for cs in published} == set(CONCEPTS)
    for resource in published:
        CodeSystem.model_validate(resource)  # R4B models serve R4 content
        assert resource["count"] == len(resource["concept"])
        assert all(c["designation"][0]["language"] == "en" for c in resource["concept"])


def test_codings_carry_the_norwegian_display() -> None:
    assert coding(REFERRAL_STATUS_SYSTEM, BusinessStatus.RETT) == {
        "system": REFERRAL_STATUS_SYSTEM,
        "code": "rett-til-nodvendig-helsehjelp",
        "display": "Rett til nødvendig helsehjelp",
    }
    assert codeable(REFERRAL_STATUS_SYSTEM, BusinessStatus.VIDERESENDT, "x")["text"] == "x"
    assert has_code(REFERRAL_STATUS_SYSTEM, "time-tildelt")
    assert not has_code(REFERRAL_STATUS_SYSTEM, "nonsense")
    with pytest.raises(KeyError):
        coding(REFERRAL_STATUS_SYSTEM, "nonsense")
