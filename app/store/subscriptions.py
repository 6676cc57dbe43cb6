"""Storage of subscriptions and their notification outbox. Everything SQL about subscriptions lives here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import Select, delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import subscription, subscription_outbox

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
# Not sent: the subscriber may not read the notified version (its scopes, a consent block, no access).
WITHHELD = "withheld"


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    pk: int  # the Subscription resource's pk
    res_id: str
    status: str
    criteria_type: str
    criteria: str
    endpoint: str
    payload: str | None
    headers: tuple[str, ...]
    # Who registered it (StoredPrincipals.registrant); None keeps what is stored.
    registrant: str | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """One claimed outbox row with what its delivery needs."""

    id: int
    attempts: int  # including the attempt this claim is for
    subscription_pk: int
    subscription_id: str
    endpoint: str
    payload: str | None
    headers: tuple[str, ...]
    res_type: str
    res_id: str
    version: int
    registrant: str | None  # delivery reads the version as this subscriber; it never gets content here


_SUBSCRIPTION_COLUMNS = (
    subscription.c.res_pk,
    subscription.c.res_id,
    subscription.c.status,
    subscription.c.criteria_type,
    subscription.c.criteria,
    subscription.c.endpoint,
    subscription.c.payload,
    subscription.c.headers,
)


def _row(values: Sequence[object]) -> SubscriptionRow:
    pk, res_id, status, criteria_type, criteria, endpoint, payload, headers = values
    return SubscriptionRow(
        int(pk),  # type: ignore[call-overload]
        str(res_id),
        str(status),
        str(criteria_type),
        str(criteria),
        str(endpoint),
        None if payload is None else str(payload),
        tuple(orjson.loads(str(headers))),
    )


def _heads(now: datetime) -> Select[tuple[int]]:
    """Ids of the oldest pending row of each active subscription, where that row is due."""
    o, s = subscription_outbox, subscription
    older = subscription_outbox.alias("older")
    oldest_pending = (
        select(func.min(older.c.id))
        .where(older.c.subscription_pk == o.c.subscription_pk, older.c.state == PENDING)
        .scalar_subquery()
    )
    return (
        select(o.c.id)
        .join(s, s.c.res_pk == o.c.subscription_pk)
        .where(o.c.state == PENDING, o.c.due <= now, s.c.status == "active", o.c.id == oldest_pending)
        .order_by(o.c.id)
    )


class SubscriptionStore:
    """Stateless: every method works inside the caller's connection (usually a write unit of work)."""

    def __init__(self, skip_locked: bool) -> None:
        # PostgreSQL: claims lock the rows they take and skip rows another process is claiming. SQLite has
        # one writer at a time, so a claim there is already exclusive.
        self.skip_locked = skip_locked

    # -- subscriptions -------------------------------------------------------------------------------
    async def save(self, conn: AsyncConnection, row: SubscriptionRow, at: datetime) -> None:
        values = {
            "res_id": row.res_id,
            "status": row.status,
            "criteria_type": row.criteria_type,
            "criteria": row.criteria,
            "endpoint": row.endpoint,
            "payload": row.payload,
            "headers": orjson.dumps(list(row.headers)).decode(),
            "updated": at,
        }
        if row.registrant is not None:
            values["principal"] = row.registrant
        result = await conn.execute(
            update(subscription).where(subscription.c.res_pk == row.pk).values(**values)
        )
        if result.rowcount == 0:
            await conn.execute(insert(subscription).values(res_pk=row.pk, **values))

    async def remove(self, conn: AsyncConnection, pk: int) -> None:
        """Forget a deleted Subscription; its undelivered notifications go with it."""
        await conn.execute(delete(subscription_outbox).where(subscription_outbox.c.subscription_pk == pk))
        await conn.execute(delete(subscription).where(subscription.c.res_pk == pk))

    async def active(self, conn: AsyncConnection) -> list[SubscriptionRow]:
        query = select(*_SUBSCRIPTION_COLUMNS).where(subscription.c.status == "active")
        return [_row(values) for values in (await conn.execute(query)).all()]

    # -- outbox --------------------------------------------------------------------------------------
    async def enqueue(
        self,
        conn: AsyncConnection,
        subscription_pks: Sequence[int],
        res_type: str,
        res_id: str,
        version: int,
        at: datetime,
    ) -> int:
        """One pending row per subscription that is active in the database right now (an in-memory list
        of subscriptions may be a little stale; the database has the final say)."""
        if not subscription_pks:
            return 0
        source = select(
            subscription.c.res_pk,
            literal(res_type),
            literal(res_id),
            literal(version),
            literal(PENDING),
            literal(at, subscription_outbox.c.created.type),
            literal(at, subscription_outbox.c.due.type),
            literal(0),
        ).where(subscription.c.res_pk.in_(subscription_pks), subscription.c.status == "active")
        columns = ("subscription_pk", "res_type", "res_id", "version", "state", "created", "due", "attempts")
        result = await conn.execute(insert(subscription_outbox).from_select(columns, source))
        return int(result.rowcount or 0)

    async def any_due(self, conn: AsyncConnection, now: datetime) -> bool:
        """Whether claim() would find something: a cheap read that spares idle polls a write transaction."""
        return (await conn.execute(_heads(now).limit(1))).first() is not None

    async def claim(
        self, conn: AsyncConnection, now: datetime, lease_until: datetime, token: str, limit: int
    ) -> list[Claimed]:
        """Lease the oldest pending row of up to `limit` active subscriptions whose row is due.

        Only a subscription's oldest pending row is ever eligible, and while it is leased (due in the
        future) nothing of that subscription is: notifications leave in write order, one at a time.
        """
        o, s = subscription_outbox, subscription
        heads = _heads(now).limit(limit)
        if self.skip_locked:
            heads = heads.with_for_update(of=o, skip_locked=True)
        ids = list((await conn.execute(heads)).scalars())
        if not ids:
            return []
        await conn.execute(
            update(o).where(o.c.id.in_(ids)).values(due=lease_until, claim=token, attempts=o.c.attempts + 1)
        )
        details = (
            select(
                o.c.id,
                o.c.attempts,
                s.c.res_pk,
                s.c.res_id,
                s.c.endpoint,
                s.c.payload,
                s.c.headers,
                o.c.res_type,
                o.c.res_id,
                o.c.version,
                s.c.principal,
            )
            .join(s, s.c.res_pk == o.c.subscription_pk)
            .where(o.c.id.in_(ids))
            .order_by(o.c.id)
        )
        return [
            Claimed(r[0], r[1], r[2], r[3], r[4], r[5], tuple(orjson.loads(r[6])), r[7], r[8], r[9], r[10])
            for r in (await conn.execute(details)).all()
        ]

    async def delivered(
        self, conn: AsyncConnection, row_id: int, token: str, status: int, at: datetime
    ) -> bool:
        return await self._finish(conn, row_id, token, state=DELIVERED, delivered=at, last_status=status)

    async def retry(
        self,
        conn: AsyncConnection,
        row_id: int,
        token: str,
        due: datetime,
        status: int | None,
        error: str,
    ) -> bool:
        return await self._finish(
            conn, row_id, token, due=due, claim=None, last_status=status, last_error=error[:200]
        )

    async def withheld(
        self, conn: AsyncConnection, row_id: int, token: str, status: int, at: datetime
    ) -> bool:
        """The subscriber may not read the version (`status`: the read's 403 or 404): nothing was sent."""
        return await self._finish(
            conn, row_id, token, state=WITHHELD, delivered=at, last_status=status, last_error="not readable"
        )

    async def failed(
        self, conn: AsyncConnection, row_id: int, token: str, status: int | None, error: str
    ) -> bool:
        return await self._finish(
            conn, row_id, token, state=FAILED, claim=None, last_status=status, last_error=error[:200]
        )

    async def _finish(self, conn: AsyncConnection, row_id: int, token: str, **values: object) -> bool:
        """Record an attempt's outcome, unless the lease was lost (then the other holder records it)."""
        o = subscription_outbox
        result = await conn.execute(
            update(o).where(o.c.id == row_id, o.c.claim == token, o.c.state == PENDING).values(**values)
        )
        return bool(result.rowcount)

    async def purge_delivered(self, conn: AsyncConnection, before: datetime) -> int:
        o = subscription_outbox
        done = o.c.state.in_((DELIVERED, WITHHELD))
        result = await conn.execute(delete(o).where(done, o.c.delivered < before))
        return int(result.rowcount or 0)

    async def rows(self, conn: AsyncConnection, subscription_pk: int) -> list[tuple[int, str, int, int]]:
        """(version, state, attempts, last_status or 0) of a subscription's rows in order: for tests and
        operators."""
        o = subscription_outbox
        query = (
            select(o.c.version, o.c.state, o.c.attempts, func.coalesce(o.c.last_status, 0))
            .where(o.c.subscription_pk == subscription_pk)
            .order_by(o.c.id)
        )
        return [(r[0], r[1], r[2], r[3]) for r in (await conn.execute(query)).all()]
