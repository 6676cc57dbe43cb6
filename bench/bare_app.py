"""The stack's physical limit: FastAPI + uvicorn + the server's own storage code, and nothing else.

No FHIR logic, validation, middleware, index rows or extra headers: what Helsebro does on top of this is
its overhead, and `bench.crud` reports Helsebro's throughput as a ratio of this app's.

    uvicorn --factory bench.bare_app:create_bare_app
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from sqlalchemy import bindparam, insert, select
from starlette.responses import Response

from app.config import Settings
from app.store.engine import Database
from app.store.tables import resource, resource_version

FHIR_JSON = "application/fhir+json"

# Built once, like the repository's statements: a request only binds values.
_CONTENT_BY_ID = select(resource.c.content).where(
    resource.c.res_type == bindparam("res_type"), resource.c.res_id == bindparam("res_id")
)
_INSERT_RESOURCE = insert(resource).returning(resource.c.pk)
_INSERT_VERSION = insert(resource_version)


def create_bare_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # Same engines, pool sizes and SQLite pragmas as the server: only the layers above differ.
    database = Database(settings.database_url, settings.db_pool_size, settings.db_max_overflow)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await database.dispose()

    app = FastAPI(
        title="Helsebro bare storage benchmark",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.get("/bare/{res_type}/{res_id}")
    async def read(res_type: str, res_id: str) -> Response:
        # The query Repository.current() runs, minus the columns only FHIR headers need.
        async with database.read_engine.connect() as conn:
            result = await conn.execute(_CONTENT_BY_ID, {"res_type": res_type, "res_id": res_id})
            content = result.scalar_one_or_none()
        if content is None:
            return Response(status_code=404)
        return Response(content, media_type=FHIR_JSON)

    @app.post("/bare/{res_type}")
    async def create(res_type: str, request: Request) -> Response:
        # The two rows Repository.insert() writes, with the body stored as-is (no parse, no index rows),
        # in the unit of work Repository.writer() opens (write_slot queues SQLite writers in-process).
        content = await request.body()
        res_id, at = str(uuid.uuid4()), datetime.now(UTC)
        row = {"res_type": res_type, "res_id": res_id, "version": 1, "last_updated": at}
        async with database.write_slot(), database.write_engine.begin() as conn:
            pk = (
                await conn.execute(_INSERT_RESOURCE, {**row, "deleted": False, "content": content})
            ).scalar_one()
            await conn.execute(_INSERT_VERSION, {**row, "res_pk": pk, "method": "POST", "content": content})
        # Location lets a client learn the id, as it does from Helsebro's create.
        return Response(
            content, status_code=201, media_type=FHIR_JSON, headers={"Location": f"/bare/{res_type}/{res_id}"}
        )

    return app
