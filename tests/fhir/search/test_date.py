"""Date search: every prefix against dates, dateTimes with time zones and Periods; precision (both
databases). Search values without a time zone are read as UTC, like stored values without one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.fhir.search.helpers import encounter, observation, patient, put_all, search_ids


@pytest.fixture
async def births(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        patient("p1970", birthDate="1970-05-05"),
        patient("p1972", birthDate="1972-09-13"),
        patient("p1972-month", birthDate="1972-09"),
        patient("p1975", birthDate="1975-01-01"),
        patient("nobirth"),
    )
    return client


async def test_date_equality_and_precision(births: httpx.AsyncClient) -> None:
    assert await search_ids(births, "Patient", {"birthdate": "1972-09-13"}) == {"p1972"}
    assert await search_ids(births, "Patient", {"birthdate": "eq1972-09-13"}) == {"p1972"}
    # A coarser search value covers everything inside its range.
    assert await search_ids(births, "Patient", {"birthdate": "1972"}) == {"p1972", "p1972-month"}
    assert await search_ids(births, "Patient", {"birthdate": "1972-09"}) == {"p1972", "p1972-month"}
    # A stored month is not "equal" to one day inside it.
    assert await search_ids(births, "Patient", {"birthdate": "1972-09-01"}) == set()
    assert await search_ids(births, "Patient", {"birthdate": "1971"}) == set()


async def test_date_prefixes_on_dates(births: httpx.AsyncClient) -> None:
    expected = {
        "ne1972-09-13": {"p1970", "p1972-month", "p1975"},
        "gt1972-09-13": {"p1972-month", "p1975"},  # the month reaches past the 13th
        "lt1972-09-13": {"p1970", "p1972-month"},
        "ge1972-09-13": {"p1972", "p1972-month", "p1975"},
        "le1972-09-13": {"p1970", "p1972", "p1972-month"},
        "sa1972-09-13": {"p1975"},
        "eb1972-09-13": {"p1970"},
        "gt1972": {"p1975"},
        "ge1972": {"p1972", "p1972-month", "p1975"},
        "lt1972": {"p1970"},
        "le1972": {"p1970", "p1972", "p1972-month"},
        "sa1970": {"p1972", "p1972-month", "p1975"},
        "eb1975": {"p1970", "p1972", "p1972-month"},
        "ne1972": {"p1970", "p1975"},
    }
    found = {value: await search_ids(births, "Patient", {"birthdate": value}) for value in expected}
    assert found == expected


async def test_ap_is_within_ten_percent_of_the_distance_to_now(client: httpx.AsyncClient) -> None:
    today = datetime.now(UTC).date()

    def ago(days: int) -> str:
        return (today - timedelta(days=days)).isoformat()

    await put_all(
        client,
        patient("exact", birthDate=ago(1000)),
        patient("close-before", birthDate=ago(1060)),  # 60 days off: inside the 100-day margin
        patient("close-after", birthDate=ago(940)),
        patient("far", birthDate=ago(1200)),
        patient("recent", birthDate=ago(700)),
    )
    assert await search_ids(client, "Patient", {"birthdate": f"ap{ago(1000)}"}) == {
        "exact",
        "close-before",
        "close-after",
    }


@pytest.fixture
async def measured(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        # 2021-06-01T23:30-02:00 is 2021-06-02T01:30Z: the next day in UTC.
        observation("late-west", effectiveDateTime="2021-06-01T23:30:00-02:00"),
        # 2021-06-02T00:30+02:00 is 2021-06-01T22:30Z: the previous day in UTC.
        observation("early-east", effectiveDateTime="2021-06-02T00:30:00+02:00"),
        observation("utc-noon", effectiveDateTime="2021-06-02T12:00:00Z"),
        observation("millis", effectiveInstant="2021-06-02T12:00:00.250Z"),
        observation("period", effectivePeriod={"start": "2021-06-01", "end": "2021-06-03"}),
        observation("open-period", effectivePeriod={"start": "2021-06-02T06:00:00Z"}),
        observation("undated"),
    )
    return client


async def test_datetimes_compare_in_utc(measured: httpx.AsyncClient) -> None:
    assert await search_ids(measured, "Observation", {"date": "2021-06-02"}) == {
        "late-west",
        "utc-noon",
        "millis",
    }
    assert await search_ids(measured, "Observation", {"date": "2021-06-01"}) == {"early-east"}
    assert await search_ids(measured, "Observation", {"date": "2021-06-02T01:30:00Z"}) == {"late-west"}
    assert await search_ids(measured, "Observation", {"date": "2021-06-01T23:30:00-02:00"}) == {"late-west"}
    assert await search_ids(measured, "Observation", {"date": "2021-06-02T03:30:00+02:00"}) == {"late-west"}
    # Minute precision covers the whole minute; second precision the whole second.
    assert await search_ids(measured, "Observation", {"date": "2021-06-02T12:00Z"}) == {"utc-noon", "millis"}
    assert await search_ids(measured, "Observation", {"date": "2021-06-02T12:00:00.250Z"}) == {"millis"}


async def test_datetime_prefixes(measured: httpx.AsyncClient) -> None:
    expected = {
        "gt2021-06-02T01:30:00Z": {"utc-noon", "millis", "period", "open-period"},
        "ge2021-06-02T01:30:00Z": {"late-west", "utc-noon", "millis", "period", "open-period"},
        "lt2021-06-02T01:30:00Z": {"early-east", "period"},
        "le2021-06-02T01:30:00Z": {"early-east", "late-west", "period"},
        "sa2021-06-02T01:30:00Z": {"utc-noon", "millis", "open-period"},
        "eb2021-06-02T01:30:00Z": {"early-east"},
        "ne2021-06-02": {"early-east", "period", "open-period"},
        "gt2021-06-03": {"open-period"},
        "sa2021-06-01": {"late-west", "utc-noon", "millis", "open-period"},
        "sa2021-06-03": set(),  # the open period starts before the end of the 3rd
        # The period starts exactly at the start of the 1st: nothing of it lies below that day.
        "lt2021-06-01": set(),
        "le2021-06-01": {"early-east"},
    }
    found = {value: await search_ids(measured, "Observation", {"date": value}) for value in expected}
    assert found == expected


async def test_periods(measured: httpx.AsyncClient) -> None:
    # A period is "equal" only to a search range that contains it.
    assert await search_ids(measured, "Observation", {"date": "2021-06"}) == {
        "late-west",
        "early-east",
        "utc-noon",
        "millis",
        "period",
    }
    assert "period" not in await search_ids(measured, "Observation", {"date": "2021-06-02"})
    # An open end reaches forever.
    assert await search_ids(measured, "Observation", {"date": "gt2099-01-01"}) == {"open-period"}
    assert await search_ids(measured, "Observation", {"date": "ge2021-06-02T06:00:00Z"}) >= {"open-period"}
    assert await search_ids(measured, "Observation", {"date": "eb2021-06-02T06:00:00Z"}) == {
        "early-east",
        "late-west",
    }


async def test_encounter_period_and_two_bounds(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        encounter("jan", "Patient/p", period={"start": "2021-01-01T08:00:00+01:00", "end": "2021-01-31"}),
        encounter("feb", "Patient/p", period={"start": "2021-02-10", "end": "2021-02-12"}),
        encounter("spring", "Patient/p", period={"start": "2021-03-01", "end": "2021-05-31"}),
    )
    # Two date parameters AND: a range of dates.
    params = [("date", "ge2021-02-01"), ("date", "le2021-03-31")]
    assert await search_ids(client, "Encounter", params) == {"feb", "spring"}
    assert await search_ids(client, "Encounter", {"date": "2021-01"}) == {"jan"}
    assert await search_ids(client, "Encounter", {"date": "2021"}) == {"jan", "feb", "spring"}
    assert await search_ids(client, "Encounter", {"date": "sa2021-02-12"}) == {"spring"}
    assert await search_ids(client, "Encounter", {"date": "eb2021-02-10"}) == {"jan"}


async def test_date_missing(births: httpx.AsyncClient) -> None:
    assert await search_ids(births, "Patient", {"birthdate:missing": "true"}) == {"nobirth"}
    assert await search_ids(births, "Patient", {"birthdate:missing": "false"}) == {
        "p1970",
        "p1972",
        "p1972-month",
        "p1975",
    }


async def test_dates_at_the_ends_of_the_calendar(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        patient("last-day", birthDate="9999-12-31"),
        patient("first-day", birthDate="0001-01-01"),
        observation("early-offset", effectiveDateTime="0001-01-01T00:30:00+01:00"),
    )
    assert await search_ids(client, "Patient", {"birthdate": "9999-12-31"}) == {"last-day"}
    assert await search_ids(client, "Patient", {"birthdate": "9999"}) == {"last-day"}
    assert await search_ids(client, "Patient", {"birthdate": "ge9000"}) == {"last-day"}
    assert await search_ids(client, "Patient", {"birthdate": "0001"}) == {"first-day"}
    assert await search_ids(client, "Patient", {"birthdate": "lt0002"}) == {"first-day"}
    assert await search_ids(client, "Observation", {"date": "le0001-01-01"}) == {"early-offset"}
    assert await search_ids(client, "Patient", {"_lastUpdated": "lt9999-12-31"}) == {"last-day", "first-day"}
    assert await search_ids(client, "Patient", {"_lastUpdated": "gt0001"}) == {"last-day", "first-day"}
    # Bounds beyond what a datetime holds (an ap margin, a time zone) on _lastUpdated: no 500.
    assert await search_ids(client, "Patient", {"_lastUpdated": "ap0001-01-01"}) == set()
    assert await search_ids(client, "Patient", {"_lastUpdated": "ap9999-12-31"}) == set()
    assert await search_ids(client, "Patient", {"_lastUpdated": "le0001-01-01T00:30:00+01:00"}) == set()
    assert await search_ids(client, "Patient", {"_lastUpdated": "ge0001-01-01T00:30:00+01:00"}) == {
        "last-day",
        "first-day",
    }
