"""Pure helpers tested directly."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest

from app.adapters.kith import _xml as x
from app.adapters.kith._henv_common import check_patient
from app.adapters.kith.errors import DESCRIPTIONS, AppRecError, KithError
from app.adapters.kith.henvisning_v1 import join_name, split_name
from app.adapters.kith.model import (
    Coded,
    HealthProfessional,
    HenvisningVersion,
    HumanName,
    Ident,
    MessageKind,
    Organisation,
    Patient,
    ProfessionalRole,
    Referral,
    RelatedProfessional,
)
from app.adapters.kith.xmlsafe import parse_xml
from app.resources.no_basis.identifiers import synthetic_fnr


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Danser, Line", HumanName(family="Danser", given="Line")),
        ("Ærø,Jørgen  ", HumanName(family="Ærø", given="Jørgen")),
        ("Rita Lin", HumanName(text="Rita Lin")),
        (None, HumanName()),
    ],
)
def test_split_name(raw: str | None, name: HumanName) -> None:
    assert split_name(raw) == name


def test_join_name() -> None:
    assert join_name(HumanName(family="Øvrebø", given="Åse", middle="Marit")) == "Øvrebø, Åse Marit"
    assert join_name(HumanName(text="Rita Lin")) == "Rita Lin"
    assert join_name(HumanName()) is None


def test_coded_reads_all_attributes() -> None:
    el = parse_xml(b'<X V=" L88 " S="2.16.578.1.12.4.1.1.7170" DN="Reumatoid artritt" OT="fritekst"/>')
    assert x.coded(el) == Coded("L88", "2.16.578.1.12.4.1.1.7170", "Reumatoid artritt", "fritekst")
    assert x.coded(None) is None


def test_dates() -> None:
    assert x.to_datetime("2018-03-30T09:15:00", "GenDate") == datetime(2018, 3, 30, 9, 15)
    assert x.to_date("2018-03-30T09:15:00", "D") == date(2018, 3, 30)
    assert x.to_date(" ", "D") is None
    with pytest.raises(KithError):
        x.to_date("30.03.2018", "D")


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("0", False), (None, None)])
def test_bool(raw: str | None, value: bool | None) -> None:
    assert x.to_bool(raw, "B") is value


def test_bool_rejects_other_values() -> None:
    with pytest.raises(KithError) as info:
        x.to_bool("ja", "B")
    assert info.value.code is AppRecError.NOT_VALID


A_NAME = HumanName(family="A")


def _patient(*idents: Ident, name: HumanName = A_NAME) -> Patient:
    return Patient(idents=idents, name=name)


FNR = Ident(synthetic_fnr(1, 1, 1990, 123), Coded("FNR"))


def test_check_patient() -> None:
    assert check_patient(_patient(FNR)).idents == (FNR,)
    with pytest.raises(KithError) as info:
        check_patient(_patient())
    assert info.value.code is AppRecError.PATIENT_FNR_MISSING
    with pytest.raises(KithError) as info:
        check_patient(_patient(Ident("1", Coded("HPR"))))  # a health-personnel id is no patient id
    assert info.value.code is AppRecError.PATIENT_INFO_INSUFFICIENT
    with pytest.raises(KithError) as info:
        check_patient(_patient(FNR, name=HumanName()))
    assert info.value.code is AppRecError.PATIENT_NAME_MISSING
    with pytest.raises(KithError) as info:  # a wrong check digit: E31, without the number
        check_patient(_patient(Ident("01010112345", Coded("FNR"))))
    assert info.value.code is AppRecError.PATIENT_FNR_WRONG
    assert "01010112345" not in str(info.value)


def test_every_error_code_has_a_description() -> None:
    assert set(DESCRIPTIONS) == set(AppRecError)


def test_referrer_merges_her_and_hpr() -> None:
    her = Ident("123", Coded("HER"))
    hpr = Ident("9900123", Coded("HPR"))
    ref = Referral(
        version=HenvisningVersion.V2_0,
        kind=MessageKind.NEW,
        msg_id="m",
        message_type=Coded("HENVISNING_NYTILSTAND"),
        generated=datetime(2024, 1, 1),
        document_id="d",
        issued=datetime(2024, 1, 1),
        patient=_patient(FNR),
        sender=Organisation(
            name="Legesenter",
            professional=HealthProfessional(name=HumanName(family="LEGE "), idents=(her,)),
        ),
        receiver=Organisation(name="HF"),
        professionals=(
            RelatedProfessional(
                role=ProfessionalRole.REPORT_RESPONSIBLE,
                professional=HealthProfessional(name=HumanName(family="Lege"), idents=(hpr,)),
                relation=Coded("HHE"),
            ),
        ),
    )
    referrer = ref.referrer
    assert referrer is not None
    assert referrer.idents == (hpr, her)
    assert referrer.name.family == "Lege"
    # a sender person who cannot be shown to be the same (no name) is not merged with the signer
    nameless = dataclasses.replace(
        ref, sender=Organisation(name="Legesenter", professional=HealthProfessional(idents=(her,)))
    )
    assert nameless.referrer is not None
    assert nameless.referrer.idents == (hpr,)
