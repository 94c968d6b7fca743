"""Unsafe requests as units of work: answered only once committed, re-run when PostgreSQL
aborts them as a deadlock victim or a serialization failure.

FastAPI closes dependencies with ``yield`` (``write_session`` among them, which commits) after
the response has been sent. A client could then read its answer before the change was
committed, and see the old record (a needless 409 on its next edit, from another connection),
or be told "200" about a change whose commit failed. This middleware holds the response of a
``POST``/``PUT``/``PATCH``/``DELETE`` back until the application has returned, that is until
every dependency is closed and the transaction committed; a failure after the handler is then
a 500, never a success.

When the request fails because PostgreSQL chose it as the victim of a deadlock or could not
serialize it (:func:`core.db.retryable_cause`), its transaction was rolled back as a whole and
nothing was sent yet, so the request is run again from its buffered body, at most
``core.db.WRITE_ATTEMPTS`` times with jittered backoff; then the answer is 503 with
``Retry-After``. A request that fails on a unique key a concurrent request took first (two
creates of one e-mail, SKU, name at once) runs again once: the route then sees the other record
and answers as for any duplicate; should the key still be taken, the answer is 409 naming its
fields, never a 500. Hooks run after commit and e-mails and webhooks leave from outbox rows written
in the transaction, so a re-run duplicates none of them. Written as plain ASGI, like
:mod:`core.web.security`; safe requests pass straight through.
"""

from __future__ import annotations

import anyio
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import db
from core.web.security import SAFE_METHODS

#: Seconds a client is asked to wait after a 503 for contention.
RETRY_AFTER_SECONDS = 1


class TransactionMiddleware:
    """Sends an unsafe request's response after its transaction committed; re-runs the
    request when the database aborted it as a deadlock victim or serialization failure."""

    def __init__(self, app: ASGIApp, attempts: int = db.WRITE_ATTEMPTS) -> None:
        self.app = app
        self.attempts = attempts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request (again, when the database says so); then send its response."""
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client went away before sending the whole request
            return
        what = f"{scope['method']} {scope['path']}"
        attempt, key_taken = 1, False
        while True:
            held: list[Message] = []
            # each run gets its own scope and state: nothing of a failed run carries over
            fresh = {**scope, "state": dict(scope.get("state") or {})}
            try:
                await self.app(fresh, _replay(body, receive), _hold(held))
            except Exception as exc:
                taken = db.unique_violation(exc)
                if taken is not None:
                    if key_taken:
                        await _taken(taken)(scope, receive, send)
                        return
                    # a concurrent request created the same key first: run again, and the
                    # route's own check sees it (and answers as it does for any duplicate)
                    key_taken = True
                    continue
                reason = db.retryable_cause(exc)
                if reason is None:
                    raise
                if attempt >= self.attempts:
                    message = db.note_give_up(reason, self.attempts, what)
                    busy = JSONResponse(
                        {"detail": message},
                        status_code=503,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                    )
                    await busy(scope, receive, send)
                    return
                db.note_retry(reason, attempt, self.attempts, what)
                await anyio.sleep(db.retry_delay(attempt))
                attempt += 1
                continue
            for message in held:
                await send(message)
            return


def _taken(columns: tuple[str, ...]) -> JSONResponse:
    """409 for a unique key that is taken, naming its fields."""
    fields = [column.rpartition(".")[2] for column in columns]
    return JSONResponse(
        {
            "detail": f"a record with this {', '.join(fields)} exists already",
            "fields": fields,
        },
        status_code=409,
    )


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body (kept to run the request again); ``None`` on a disconnect."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then waits for the client to disconnect."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _hold(held: list[Message]) -> Send:
    async def hold(message: Message) -> None:
        held.append(message)

    return hold
