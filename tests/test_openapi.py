"""The committed openapi/openapi.json must match what the app generates (run `make openapi` to refresh)."""

from __future__ import annotations

from app.openapi import OPENAPI_PATH, render


def test_openapi_document_has_not_drifted() -> None:
    assert OPENAPI_PATH.exists(), "openapi/openapi.json is missing: run `make openapi`"
    assert OPENAPI_PATH.read_bytes() == render(), (
        "openapi/openapi.json is stale: run `make openapi` and commit it"
    )


def test_openapi_never_advertises_fastapi_validation_errors() -> None:
    text = render().decode()
    assert "HTTPValidationError" not in text
    assert '"422"' not in text
    assert "OperationOutcome" in text
