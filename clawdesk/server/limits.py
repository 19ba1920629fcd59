"""A request body size limit, enforced before the body is read.

Without it a client could make the server buffer any amount of memory. A declared
``Content-Length`` over the limit is refused at once; a chunked body is counted as it arrives
and refused as soon as it passes the limit (the rest is never read).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError

MAX_BODY_BYTES = 10_000_000  # 10 MB: a chat request is text; the largest context is ~1 MB of it


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        # Read the (bounded) body here, then replay it to the app: simpler than failing mid-parse.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for http.disconnect, as the server sends

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = ApiError(413, f"The request body is larger than {self.limit // 1_000_000} MB; "
                              f"send a shorter conversation.", "request_too_large")
        await error.response()(scope, receive, send)
