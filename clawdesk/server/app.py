"""The routes of ``clawdesk serve`` (see the package docstring for the design).

Handlers stay on the event loop and never touch the engine: a chat request becomes a ``Job``
for the worker thread, and its events come back through an ``asyncio.Queue``. Everything else
(models, feedback, health) reads or writes the store through the app's own connection, in a
thread, one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import catalog
from ..chat import ChatService
from ..engine import Engine
from ..errors import ClawDeskError
from ..settings import Settings
from ..store import Store, open_store
from . import protocol
from .auth import check_bearer
from .errors import ApiError, bad_request
from .feedback import record_feedback
from .limits import BodyLimit
from .sessions import session_of
from .worker import Event, Failed, Finished, Job, Piece, Started, TurnWorker

T = TypeVar("T")
ALIASES = ("", "clawdesk", "default")  # model names that always mean "whatever is served"


@dataclass
class ServeState:
    """What the routes share: one engine (behind the worker), the token, a store connection."""

    db_path: Path
    engine: Engine
    settings: Settings
    token: str
    model: str | None = None  # the -m the server was started with
    worker: TurnWorker = field(init=False)
    store: Store = field(init=False)
    model_name: str = field(init=False)
    _store_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.worker = TurnWorker(self.db_path, self.engine, self.settings, self.model)
        self.store = open_store(self.db_path, self.settings.db_busy_timeout_ms)
        self.model_name = ChatService(self.store, self.engine, self.settings).model_name

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store call off the event loop, one at a time (one connection, one transaction)."""
        def locked() -> T:
            with self._store_lock:
                return fn(*args)
        return await run_in_threadpool(locked)

    def authorize(self, request: Request) -> None:
        check_bearer(request.headers.get("authorization"), self.token)

    def serves(self, name: str) -> bool:
        return name in ALIASES or name == self.model_name

    def refuse_model(self, name: str) -> None:
        """The 4xx for a model name this server does not serve (registered elsewhere or unknown)."""
        registered = {m.name for m in catalog.all_models(self.store)}
        if name in registered:
            raise ApiError(400, f"The model {name!r} is registered, but this server serves {self.model_name!r}; "
                                f"restart it with `clawdesk serve -m {name}`.", "model_not_served", "model")
        raise ApiError(404, f"The model {name!r} does not exist here; GET /v1/models lists what this server "
                            f"has ({self.model_name!r} is served).", "model_not_found", "model")

    def fingerprint(self) -> str:
        version = self.engine.adapter_version
        return f"clawdesk-{self.model_name}-{'v%d' % version if version is not None else 'base'}"


# --- routes --------------------------------------------------------------------------------------
async def chat_completions(request: Request) -> Response:
    state: ServeState = request.app.state.serve
    state.authorize(request)
    chat_request = protocol.parse_chat_request(await request.body())
    if not state.serves(chat_request.model):
        await state.db(state.refuse_model, chat_request.model)
    session = session_of(dict(request.headers), chat_request)
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Event] = asyncio.Queue()

    def emit(event: Event) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: the server is stopping
            loop.call_soon_threadsafe(events.put_nowait, event)

    job = Job(chat_request, session, "chatcmpl-" + secrets.token_hex(12), emit)
    state.worker.submit(job)
    first = await _next_event(events, request, job)
    if isinstance(first, Failed):
        if first.error is None:
            return Response(status_code=499)  # the client left while queued; nobody reads this
        return first.error.response()
    assert isinstance(first, Started)
    headers = _turn_headers(state, job, first)
    model = state.model_name
    if chat_request.stream:
        return StreamingResponse(_stream(state, job, events, model, chat_request.include_usage),
                                 media_type="text/event-stream", headers=headers)
    while True:
        event = await _next_event(events, request, job)
        if isinstance(event, Failed):
            return (event.error or ApiError(499, "The client left.", "client_closed")).response()
        if isinstance(event, Finished):
            gen = event.turn.generation
            headers["X-ClawDesk-Message-Id"] = str(event.turn.assistant.id)
            if gen.truncated_tokens:
                headers["X-ClawDesk-Truncated-Tokens"] = str(gen.truncated_tokens)
            body = protocol.completion(job.completion_id, model, gen.text, protocol.finish_reason(gen.finish_reason),
                                       len(gen.prompt_token_ids), len(gen.response_token_ids), state.fingerprint())
            return JSONResponse(body, headers=headers)


async def _next_event(events: asyncio.Queue[Event], request: Request, job: Job) -> Event:
    """The job's next event; meanwhile notice a client that hung up and cancel its job (a
    queued job is then skipped, a running one stops at its next token)."""
    while True:
        try:
            return await asyncio.wait_for(events.get(), timeout=0.25)
        except asyncio.TimeoutError:
            if not job.cancel.is_set() and await request.is_disconnected():
                job.cancel.set()


async def _stream(state: ServeState, job: Job, events: asyncio.Queue[Event], model: str,
                  include_usage: bool) -> AsyncIterator[str]:
    """SSE chunks in OpenAI's format, ending with ``[DONE]``. If the client disconnects,
    Starlette cancels this generator at its ``await``; ``finally`` then stops the generation."""
    cid, fp = job.completion_id, state.fingerprint()
    piece = protocol.PieceChunks(cid, model, fp)
    try:
        yield protocol.chunk(cid, model, fp, {"role": "assistant", "content": ""})
        while True:
            event = await events.get()
            if isinstance(event, Piece):
                yield piece(event.text)
            elif isinstance(event, Finished):
                gen = event.turn.generation
                yield protocol.chunk(cid, model, fp, finish=protocol.finish_reason(gen.finish_reason))
                if include_usage:
                    yield protocol.chunk(cid, model, fp, usage=(len(gen.prompt_token_ids),
                                                                len(gen.response_token_ids)))
                yield protocol.DONE
                return
            elif isinstance(event, Failed):
                error = event.error or ApiError(499, "The client left.", "client_closed")
                yield f"data: {json.dumps(error.body())}\n\n"
                yield protocol.DONE
                return
    finally:
        job.cancel.set()  # after Finished this changes nothing; before it, it stops the turn


def _turn_headers(state: ServeState, job: Job, started: Started) -> dict[str, str]:
    """What a client may want to know about how its request was logged (all optional)."""
    placement = started.placement
    headers = {"X-Session-Id": job.session.key, "X-Turn-Type": job.session.turn_type,
               "X-ClawDesk-Conversation-Id": str(placement.conversation_id),
               "X-ClawDesk-Completion-Id": job.completion_id}
    warnings = list(started.warnings)
    if started.truncated:
        warnings.append("the conversation is longer than the context window; the oldest turns were left out")
        headers["X-ClawDesk-Truncated"] = "1"
    if warnings:
        headers["X-ClawDesk-Warning"] = "; ".join(warnings)
    return headers


async def models(request: Request) -> Response:
    state: ServeState = request.app.state.serve
    state.authorize(request)
    entries = await state.db(catalog.all_models, state.store)
    served = await state.db(state.store.served_version)
    data = []
    for entry in entries:
        row: dict[str, Any] = {"id": entry.name, "object": "model", "created": 0, "owned_by": "clawdesk",
                               "served": entry.name == state.model_name}
        if row["served"]:
            row["adapter_version"] = state.engine.adapter_version  # the weights answering now
            row["promoted_version"] = served  # what the store says; loaded before the next request
        data.append(row)
    if not any(row["served"] for row in data):  # an unregistered GGUF path given with -m
        data.insert(0, {"id": state.model_name, "object": "model", "created": 0, "owned_by": "clawdesk",
                        "served": True, "adapter_version": state.engine.adapter_version,
                        "promoted_version": served})
    return JSONResponse({"object": "list", "data": data})


async def feedback(request: Request) -> Response:
    state: ServeState = request.app.state.serve
    state.authorize(request)
    try:
        body = json.loads(await request.body())
    except ValueError as e:
        raise bad_request(f"The request body is not valid JSON ({e}).", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    chat = ChatService(state.store, state.engine, state.settings)
    return JSONResponse(await state.db(record_feedback, chat, body))


async def health(request: Request) -> Response:
    """Unauthenticated on purpose (a service manager's probe has no token): says nothing private."""
    state: ServeState = request.app.state.serve
    watcher = state.worker.watcher
    return JSONResponse({"status": "ok", "model": state.model_name, "adapter_version": state.engine.adapter_version,
                         "queued": state.worker.queued, "turns_served": state.worker.turns,
                         "reload_error": watcher.error if watcher else ""})


# --- the app -------------------------------------------------------------------------------------
async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    return ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}. The server has "
                                     f"POST /v1/chat/completions, GET /v1/models, POST /v1/feedback and GET /health.",
                    codes.get(exc.status_code, "http_error")).response()


async def _store_error(request: Request, exc: Exception) -> Response:
    return ApiError(500, str(exc), "clawdesk_error", kind="server_error").response()


def create_app(state: ServeState) -> BodyLimit:
    """The ASGI app. The worker thread starts and stops with the app's lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.worker.start()
        try:
            yield
        finally:
            await run_in_threadpool(state.worker.stop)
            state.store.close()

    app = Starlette(
        routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"]),
                Route("/v1/models", models, methods=["GET"]),
                Route("/v1/feedback", feedback, methods=["POST"]),
                Route("/health", health, methods=["GET"])],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, ClawDeskError: _store_error},
        lifespan=lifespan)
    app.state.serve = state
    return BodyLimit(app)
