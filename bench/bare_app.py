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
from sqlalchemy import insert, select
from starlette.responses import Response

from app.config import Settings
from app.store.engine import Database
from app.store.tables import resource, resource_version

FHIR_JSON = "application/fhir+json"


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
        query = select(resource.c.content).where(resource.c.res_type == res_type, resource.c.res_id == res_id)
        async with database.read_engine.connect() as conn:
            content = (await conn.execute(query)).scalar_one_or_none()
        if content is None:
            return Response(status_code=404)
        return Response(content, media_type=FHIR_JSON)

    @app.post("/bare/{res_type}")
    async def create(res_type: str, request: Request) -> Response:
        # The two rows Repository.insert() writes, with the body stored as-is (no parse, no index rows).
        content = await request.body()
        res_id, at = str(uuid.uuid4()), datetime.now(UTC)
        async with database.write_engine.begin() as conn:
            pk = (
                await conn.execute(
                    insert(resource)
                    .values(
                        res_type=res_type,
                        res_id=res_id,
                        version=1,
                        last_updated=at,
                        deleted=False,
                        content=content,
                    )
                    .returning(resource.c.pk)
                )
            ).scalar_one()
            await conn.execute(
                insert(resource_version).values(
                    res_pk=pk,
                    res_type=res_type,
                    res_id=res_id,
                    version=1,
                    last_updated=at,
                    method="POST",
                    content=content,
                )
            )
        # Location lets a client learn the id, as it does from Helsebro's create.
        return Response(
            content, status_code=201, media_type=FHIR_JSON, headers={"Location": f"/bare/{res_type}/{res_id}"}
        )

    return app
