"""Pure ASGI middleware: a read whose client has gone away is cancelled, its database statement with it.

Servers keep running a handler after its client disconnects; a costly search would hold a connection and
a CPU for nothing. Here the request's task is cancelled when the server reports `http.disconnect` before
the response is complete; asyncpg then sends PostgreSQL a cancel request for the running statement.

Only reads are cancelled (GET, HEAD and POST .../_search): a write's unit of work has after-commit duties
(audit, subscription wake-ups) that must not be cut off halfway; DB_STATEMENT_TIMEOUT_MS bounds those.
A cancelled request is logged by the access log as 499 (nginx's "client closed request"); nothing
reaches the client, which is gone.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CLIENT_CLOSED = 499


def _cancellable(scope: Scope) -> bool:
    method = scope["method"]
    return method in ("GET", "HEAD") or (method == "POST" and scope["path"].endswith("/_search"))


class CancelOnDisconnect:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _cancellable(scope):
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        # The watcher reads the channel from the start only for requests without a body; otherwise it
        # waits until the app has read the whole body, so the body limit and flow control still apply.
        declares_body = any(k in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])
        queue: asyncio.Queue[Message] = asyncio.Queue()
        state = {"complete": False, "disconnected": False}
        watcher: asyncio.Task[None] | None = None

        async def watch() -> None:
            while True:
                message = await receive()
                queue.put_nowait(message)  # an unread empty body, then the disconnect, for the app
                if message["type"] == "http.disconnect":
                    if not state["complete"]:
                        state["disconnected"] = True
                        task.cancel()
                    return

        def start_watching() -> None:
            nonlocal watcher
            if watcher is None:
                watcher = asyncio.create_task(watch())

        async def app_receive() -> Message:
            if watcher is not None:
                return await queue.get()
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                start_watching()
            return message

        async def tracked_send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                state["complete"] = True
            await send(message)

        if not declares_body:
            start_watching()
        try:
            await self.app(scope, app_receive, tracked_send)
        except asyncio.CancelledError:
            if not state["disconnected"] or task.uncancel() > 0:
                raise  # a cancellation of our own caller (server shutdown) goes on
            # Told only to the access log (the client is gone; the server drops what is sent).
            with contextlib.suppress(Exception):
                await send({"type": "http.response.start", "status": CLIENT_CLOSED, "headers": []})
        finally:
            if watcher is not None:
                watcher.cancel()
