"""HTTP tests of the pack run against apps with the pack installed, one per backend.

These are apps of their own rather than the session apps of tests/conftest.py: installing the pack into
those would leave its hook in force for every test that runs later in the session, so results would
depend on test order. The `client` fixture of tests/conftest.py uses this `app`.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from app.main import create_app
from app.resources.no_basis import install
from tests.conftest import empty_tables, make_settings
from tests.databases import TestDatabase


@pytest.fixture
async def app(
    backend: str, session_databases: dict[str, TestDatabase], _app_registry: dict[str, FastAPI]
) -> FastAPI:
    key = f"{backend}+no_basis"  # the session fixture disposes every app in this registry
    if key not in _app_registry:
        application = create_app(make_settings(session_databases[backend].url))
        # Idempotent: a no-op once create_app installs the pack itself.
        install(application.state.fhir.registry, application.state.fhir.hooks)
        application.state.refresh_capability()
        _app_registry[key] = application
    await empty_tables(_app_registry[key], backend)
    return _app_registry[key]
