"""The Norwegian holiday calendar, working-day arithmetic and the waiting-time figures."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.resources.referrals.waiting_times import (
    add_working_days,
    assessment_deadline,
    easter_sunday,
    is_working_day,
    public_holidays,
    waiting_times,
    waiting_times_by_organisation,
    working_days_between,
)


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2027, date(2027, 3, 28)),
        (2024, date(2024, 3, 31)),
        (2019, date(2019, 4, 21)),
        (2008, date(2008, 3, 23)),
        (2038, date(2038, 4, 25)),  # the latest possible date
        (2285, date(2285, 3, 22)),  # the earliest possible date
        (1954, date(1954, 4, 18)),
        (2000, date(2000, 4, 23)),
    ],
)
def test_easter_sunday(year: int, expected: date) -> None:
    assert easter_sunday(year) == expected
    assert expected.weekday() == 6


def test_holidays_2025() -> None:
    assert sorted(public_holidays(2025)) == [
        date(2025, 1, 1),
        date(2025, 4, 17),  # skjærtorsdag
        date(2025, 4, 18),  # langfredag
        date(2025, 4, 20),
        date(2025, 4, 21),
        date(2025, 5, 1),
        date(2025, 5, 17),
        date(2025, 5, 29),  # Kristi himmelfartsdag
        date(2025, 6, 8),
        date(2025, 6, 9),  # 2. pinsedag
        date(2025, 12, 25),
        date(2025, 12, 26),
    ]


def test_holidays_2026_move_with_easter() -> None:
    holidays = public_holidays(2026)
    for expected in (
        date(2026, 4, 2),
        date(2026, 4, 3),
        date(2026, 4, 6),
        date(2026, 5, 14),
        date(2026, 5, 25),
    ):
        assert expected in holidays
    assert len(holidays) == 12


def test_holidays_2027_known_dates() -> None:
    # Pins the `holidays` package's Norway calendar to the legal public holidays (issue 13).
    calendar = public_holidays(2027)
    assert sorted(calendar) == [
        date(2027, 1, 1),
        date(2027, 3, 25),  # skjærtorsdag
        date(2027, 3, 26),  # langfredag
        date(2027, 3, 28),  # 1. påskedag
        date(2027, 3, 29),  # 2. påskedag
        date(2027, 5, 1),
        date(2027, 5, 6),  # Kristi himmelfartsdag
        date(2027, 5, 16),  # 1. pinsedag
        date(2027, 5, 17),  # 2. pinsedag and Grunnlovsdag on one day
        date(2027, 12, 25),
        date(2027, 12, 26),
    ]  # no other Sundays, no 24 or 31 December
    assert "Andre påskedag" in calendar[date(2027, 3, 29)]
    assert "Kristi himmelfartsdag" in calendar[date(2027, 5, 6)]
    assert {"Andre pinsedag", "Grunnlovsdag"} <= set(calendar[date(2027, 5, 17)].split("; "))
    for day in (date(2027, 1, 1), date(2027, 3, 29), date(2027, 5, 6), date(2027, 5, 17)):
        assert not is_working_day(day)
    assert add_working_days(date(2027, 3, 24), 1) == date(2027, 3, 30)  # over Easter 2027
    assert add_working_days(date(2027, 12, 23), 1) == date(2027, 12, 24)  # julaften is a working day
    assert add_working_days(date(2027, 12, 24), 1) == date(2027, 12, 27)  # 25/26 December fall on a weekend


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2027, 5, 17), False),  # 17. mai on a Monday
        (date(2025, 5, 16), True),
        (date(2025, 12, 24), True),  # julaften is not a public holiday
        (date(2025, 12, 31), True),
        (date(2025, 3, 8), False),  # Saturday
        (date(2025, 3, 9), False),  # Sunday
        (date(2025, 4, 17), False),
        (date(2026, 4, 6), False),
    ],
)
def test_is_working_day(day: date, working: bool) -> None:
    assert is_working_day(day) is working


def test_add_working_days() -> None:
    assert add_working_days(date(2025, 3, 3), 10) == date(2025, 3, 17)
    assert add_working_days(date(2025, 3, 7), 1) == date(2025, 3, 10)  # Friday -> Monday
    assert add_working_days(date(2025, 3, 8), 1) == date(2025, 3, 10)  # received on a Saturday
    assert add_working_days(date(2025, 4, 16), 1) == date(2025, 4, 22)  # over Easter
    assert add_working_days(date(2025, 12, 23), 3) == date(2025, 12, 30)  # 24, (25-28), 29, 30
    assert add_working_days(date(2025, 3, 3), 0) == date(2025, 3, 3)
    assert add_working_days(date(2025, 3, 17), -10) == date(2025, 3, 3)


def test_assessment_deadline_across_17_may_and_ascension() -> None:
    # 2025: 17 May is a Saturday; Ascension Thursday 29 May
    assert assessment_deadline(date(2025, 5, 20)) == date(2025, 6, 4)


def test_working_days_between_is_the_inverse_of_add_working_days() -> None:
    start = date(2025, 1, 1)
    for offset in range(0, 400, 7):
        base = start + timedelta(days=offset)
        for n in (0, 1, 5, 10, 23):
            assert working_days_between(base, add_working_days(base, n)) == n
    assert working_days_between(date(2025, 3, 17), date(2025, 3, 3)) == -10
    assert working_days_between(date(2025, 3, 3), date(2025, 3, 3)) == 0


def test_waiting_times_known_answer() -> None:
    figures = waiting_times(
        [
            (date(2025, 3, 3), date(2025, 3, 5)),  # 2 days, 2 working days, in time
            (date(2025, 3, 3), date(2025, 3, 17)),  # 14 days, 10 working days: on the deadline
            (date(2025, 3, 3), date(2025, 3, 18)),  # 15 days, 11 working days: late
            (date(2025, 3, 10), None),  # deadline 24 March: overdue on 31 March
            (date(2025, 3, 24), None),  # deadline 7 April: pending
        ],
        today=date(2025, 3, 31),
    )
    assert figures.received == 5
    assert figures.assessed == 3
    assert figures.pending == 2
    assert figures.overdue == 1
    assert figures.assessed_late == 1
    assert figures.median_days == 14.0
    assert figures.median_working_days == 10.0
    assert figures.share_in_time == pytest.approx(2 / 3)
    assert figures.to_dict()["overdue"] == 1


def test_even_count_median_and_empty_input() -> None:
    figures = waiting_times(
        [(date(2025, 3, 3), date(2025, 3, 4)), (date(2025, 3, 3), date(2025, 3, 6))], date(2025, 4, 1)
    )
    assert figures.median_days == 2.0
    empty = waiting_times([], date(2025, 4, 1))
    assert (empty.received, empty.median_days, empty.share_in_time) == (0, None, None)


def test_overdue_only_after_the_deadline_day() -> None:
    assert waiting_times([(date(2025, 3, 3), None)], today=date(2025, 3, 17)).overdue == 0
    assert waiting_times([(date(2025, 3, 3), None)], today=date(2025, 3, 18)).overdue == 1


def test_assessed_before_received_is_a_data_error() -> None:
    with pytest.raises(ValueError, match="before received"):
        waiting_times([(date(2025, 3, 3), date(2025, 3, 2))], date(2025, 4, 1))


def test_by_organisation() -> None:
    figures = waiting_times_by_organisation(
        [
            ("Organization/a", date(2025, 3, 3), date(2025, 3, 4)),
            ("Organization/b", date(2025, 3, 3), None),
            ("Organization/a", date(2025, 3, 3), date(2025, 3, 20)),
        ],
        today=date(2025, 3, 31),
    )
    assert list(figures) == ["Organization/a", "Organization/b"]
    assert figures["Organization/a"].assessed == 2
    assert figures["Organization/a"].share_in_time == 0.5
    assert figures["Organization/b"].overdue == 1
