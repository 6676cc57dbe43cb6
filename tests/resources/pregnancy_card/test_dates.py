"""The pregnancy's dates: Naegele with cycle adjustment, ultrasound dating and which wins, weeks+days, leap
years and Oslo's day at an instant (DST changes, late-evening UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from app.resources.pregnancy_card.dates import (
    MAX_GA_DAYS,
    DatingMethod,
    GestationalAge,
    date_at,
    due_date_from_ultrasound,
    due_date_in_force,
    gestational_age,
    gestational_age_at,
    naegele_due_date,
)


def test_naegele_is_lmp_plus_280_days() -> None:
    assert naegele_due_date(date(2026, 6, 3)) == date(2027, 3, 10)


@pytest.mark.parametrize(("cycle", "shift"), [(28, 0), (21, -7), (35, 7), (45, 17), (30, 2)])
def test_naegele_moves_the_due_date_by_the_cycle_difference(cycle: int, shift: int) -> None:
    assert naegele_due_date(date(2026, 6, 3), cycle) == date(2027, 3, 10) + timedelta(days=shift)


@pytest.mark.parametrize("cycle", [0, 20, 46, 90, -28])
def test_naegele_refuses_a_cycle_outside_21_to_45_days(cycle: int) -> None:
    with pytest.raises(ValueError, match="cycle length"):
        naegele_due_date(date(2026, 6, 3), cycle)


def test_an_lmp_in_february_of_a_leap_year_counts_the_29th() -> None:
    # 2028 is a leap year: the same LMP a year earlier gives a due date one calendar day later
    assert naegele_due_date(date(2028, 2, 20)) == date(2028, 11, 26)
    assert naegele_due_date(date(2027, 2, 20)) == date(2027, 11, 27)
    assert naegele_due_date(date(2028, 2, 29)) == date(2028, 12, 5)


def test_a_due_date_across_29_february() -> None:
    assert naegele_due_date(date(2027, 5, 25)) == date(2028, 2, 29)
    assert naegele_due_date(date(2027, 5, 26)) == date(2028, 3, 1)
    # the gestational age counts the 29th as a day of the pregnancy
    assert str(gestational_age(date(2028, 3, 1), date(2028, 2, 28))) == "39+5"
    assert str(gestational_age(date(2028, 3, 1), date(2028, 2, 29))) == "39+6"
    assert str(gestational_age(date(2028, 3, 1), date(2028, 3, 1))) == "40+0"


def test_ultrasound_dating_counts_back_from_the_measured_age() -> None:
    # 12+3 measured on 2026-08-29: 280 - 87 = 193 days to go
    assert due_date_from_ultrasound(date(2026, 8, 29), 87) == date(2027, 3, 10)
    assert gestational_age(date(2027, 3, 10), date(2026, 8, 29)) == GestationalAge.of(12, 3)


@pytest.mark.parametrize("days", [-1, MAX_GA_DAYS + 1])
def test_ultrasound_dating_refuses_an_impossible_age(days: int) -> None:
    with pytest.raises(ValueError, match="gestational age"):
        due_date_from_ultrasound(date(2026, 8, 29), days)


def test_the_ultrasound_due_date_wins_once_there_is_one() -> None:
    by_lmp, by_us = date(2027, 3, 10), date(2027, 3, 16)
    assert due_date_in_force(by_lmp, None) == (by_lmp, DatingMethod.LMP)
    assert due_date_in_force(by_lmp, by_us) == (by_us, DatingMethod.ULTRASOUND)
    assert due_date_in_force(None, by_us) == (by_us, DatingMethod.ULTRASOUND)
    with pytest.raises(ValueError, match="no due date"):
        due_date_in_force(None, None)


@pytest.mark.parametrize(
    ("on", "shown"),
    [
        (date(2026, 6, 3), "0+0"),  # the LMP-equivalent day
        (date(2026, 6, 9), "0+6"),
        (date(2026, 6, 10), "1+0"),
        (date(2026, 11, 17), "23+6"),
        (date(2026, 11, 18), "24+0"),
        (date(2027, 3, 10), "40+0"),  # the due date
        (date(2027, 3, 17), "41+0"),
        (date(2027, 4, 14), "45+0"),  # the last day shown
    ],
)
def test_weeks_and_days_at_the_boundaries(on: date, shown: str) -> None:
    age = gestational_age(date(2027, 3, 10), on)
    assert str(age) == shown
    assert GestationalAge.parse(shown) == age
    assert date_at(date(2027, 3, 10), age) == on


@pytest.mark.parametrize("on", [date(2026, 6, 2), date(2027, 4, 15), date(2030, 1, 1)])
def test_a_day_outside_0_to_45_weeks_is_refused_not_clamped(on: date) -> None:
    with pytest.raises(ValueError, match="outside the pregnancy"):
        gestational_age(date(2027, 3, 10), on)


@pytest.mark.parametrize("text", ["12", "12+7", "+3", "12-3", "a+b", "46+0"])
def test_weeks_and_days_notation_is_strict(text: str) -> None:
    with pytest.raises(ValueError, match=r"gestational age|outside"):
        GestationalAge.parse(text)


def test_weeks_and_days_properties() -> None:
    age = GestationalAge.of(12, 3)
    assert (age.days, age.weeks, age.day, str(age)) == (87, 12, 3, "12+3")
    assert GestationalAge.of(12, 3) < GestationalAge.of(12, 4)
    with pytest.raises(ValueError, match=r"0\.\.6"):
        GestationalAge.of(12, 7)


DUE = date(2027, 10, 1)  # LMP 2026-12-25; 2027-03-28 and 2027-10-31 are the last Sundays of March and October


@pytest.mark.parametrize(
    ("instant", "oslo_day"),
    [
        # summer time: 23:30 UTC is 01:30 the next day in Oslo
        (datetime(2027, 6, 15, 23, 30, tzinfo=UTC), date(2027, 6, 16)),
        (datetime(2027, 6, 15, 21, 59, tzinfo=UTC), date(2027, 6, 15)),
        (datetime(2027, 6, 15, 22, 0, tzinfo=UTC), date(2027, 6, 16)),
        # winter time: 23:30 UTC is 00:30 the next day, 22:59 UTC still the same day
        (datetime(2027, 1, 15, 23, 30, tzinfo=UTC), date(2027, 1, 16)),
        (datetime(2027, 1, 15, 22, 59, tzinfo=UTC), date(2027, 1, 15)),
        # the night clocks go forward (02:00 CET -> 03:00 CEST on 2027-03-28)
        (datetime(2027, 3, 28, 0, 30, tzinfo=UTC), date(2027, 3, 28)),
        (datetime(2027, 3, 28, 1, 30, tzinfo=UTC), date(2027, 3, 28)),
        (datetime(2027, 3, 28, 21, 59, tzinfo=UTC), date(2027, 3, 28)),
        (datetime(2027, 3, 28, 22, 0, tzinfo=UTC), date(2027, 3, 29)),
        (datetime(2027, 3, 27, 23, 0, tzinfo=UTC), date(2027, 3, 28)),
        # the night clocks go back (03:00 CEST -> 02:00 CET on 2027-10-31)
        (datetime(2027, 10, 30, 22, 30, tzinfo=UTC), date(2027, 10, 31)),
        (datetime(2027, 10, 31, 0, 30, tzinfo=UTC), date(2027, 10, 31)),
        (datetime(2027, 10, 31, 1, 30, tzinfo=UTC), date(2027, 10, 31)),
        (datetime(2027, 10, 31, 22, 30, tzinfo=UTC), date(2027, 10, 31)),
        (datetime(2027, 10, 31, 23, 0, tzinfo=UTC), date(2027, 11, 1)),
        # an instant given with another offset lands on the same Oslo day
        (datetime(2027, 6, 15, 19, 30, tzinfo=timezone(timedelta(hours=-4))), date(2027, 6, 16)),
    ],
)
def test_an_instant_counts_on_its_day_in_oslo(instant: datetime, oslo_day: date) -> None:
    assert gestational_age_at(DUE, instant) == gestational_age(DUE, oslo_day)


def test_the_day_before_and_after_a_dst_change_are_one_day_apart() -> None:
    before = gestational_age_at(DUE, datetime(2027, 3, 27, 12, tzinfo=UTC))
    after = gestational_age_at(DUE, datetime(2027, 3, 28, 12, tzinfo=UTC))
    assert after.days - before.days == 1


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        gestational_age_at(DUE, datetime(2027, 6, 15, 12, 0))
