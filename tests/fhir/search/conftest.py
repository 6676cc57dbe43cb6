"""The search tests build small worlds of resources that refer to patients and organisations they never
create (an Observation of Patient/p1 tests a code search just as well): referential integrity, which
would refuse them, has tests of its own (tests/fhir/test_integrity.py) and is off here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI


@pytest.fixture
async def app(app: FastAPI) -> AsyncIterator[FastAPI]:
    service = app.state.fhir
    service.referential_integrity = False
    yield app
    service.referential_integrity = True
