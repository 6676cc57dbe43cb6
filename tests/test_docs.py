"""/docs is Swagger UI served by this server (app/docs.py): public, complete without a CDN.

Its behaviour in a browser (rendering offline, the Authorize button, a call made with the token) is
tested in tests/portal/test_browser.py, which has the real server and browser."""

from __future__ import annotations

from tests.conftest import app_client
from tests.databases import TestDatabase


async def test_the_page_and_its_files_are_served_without_a_token(
    session_databases: dict[str, TestDatabase],
) -> None:
    async with app_client(session_databases["sqlite"], auth_mode="jwt", auth_dev_issuer=True) as (http, _):
        page = await http.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower()
        for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
            assert f'"/docs/{name}"' in page.text
            asset = await http.get(f"/docs/{name}")
            assert asset.status_code == 200, name
            assert len(asset.content) > 1000
        assert (await http.get("/docs/oauth2-redirect")).status_code == 200
        assert (await http.get("/openapi.json")).status_code == 200
        # Only those files: anything else under /docs is an OperationOutcome (401 without a token).
        other = await http.get("/docs/../pyproject.toml")
        assert other.status_code in (401, 404)
        unknown = await http.get("/docs/secrets.txt")
        assert unknown.status_code == 401
        assert unknown.json()["resourceType"] == "OperationOutcome"


async def test_swagger_ui_is_version_5_which_reads_openapi_3_1(
    session_databases: dict[str, TestDatabase],
) -> None:
    async with app_client(session_databases["sqlite"]) as (http, _):
        bundle = (await http.get("/docs/swagger-ui-bundle.js")).text
        assert (await http.get("/openapi.json")).json()["openapi"].startswith("3.1")
        assert '"5.' in bundle  # swagger-ui 4 cannot render an OpenAPI 3.1 document
