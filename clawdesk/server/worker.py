"""One engine, many clients: every chat request becomes a job on one worker thread.

llama.cpp is not re-entrant, and a conversation's messages must be placed and logged in request
order, so jobs run one at a time, first come first served, on a single thread that owns its own
store connection (SQLite connections must not be shared between threads mid-transaction). A
client whose request waits sees latency, never an error. Before each job the worker asks the
store whether another process promoted or rolled back a version (``chat.ServedWatcher``): the
swap lands between two requests, never inside one.

A job talks back through ``emit`` (called on the worker thread; the route hands in a function
that forwards to its event loop): ``Started`` once the request is placed, a ``Piece`` per
decoded text piece, then ``Finished`` with the logged turn, or ``Failed``. Setting the job's
``cancel`` event stops the generation at its next token; the partial reply is logged with
finish reason 'cancelled' and a 'stop' feedback row, as Esc does in the TUI.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..chat import ChatService, Turn
from ..chat.reload import ServedWatcher
from ..engine import Engine
from ..errors import ClawDeskError
from ..settings import Settings
from ..store import open_store
from .errors import ApiError
from .protocol import ChatRequest
from .sessions import Placement, SessionRef, place

log = logging.getLogger("clawdesk.server")


@dataclass
class Started:
    placement: Placement
    truncated: bool  # the history is longer than the context: the oldest turns will be left out
    warnings: list[str] = field(default_factory=list)


@dataclass
class Piece:
    text: str


@dataclass
class Finished:
    turn: Turn


@dataclass
class Failed:
    error: ApiError | None  # None: the client left before its turn came; nothing was logged


Event = Started | Piece | Finished | Failed


@dataclass
class Job:
    request: ChatRequest
    session: SessionRef
    completion_id: str
    emit: Callable[[Event], None]
    cancel: threading.Event = field(default_factory=threading.Event)


class TurnWorker:
    """The single thread that runs chat turns on ``engine``, in arrival order."""

    def __init__(self, db_path: Path, engine: Engine, settings: Settings, model: str | None = None) -> None:
        self.db_path, self.engine, self.settings, self.model = db_path, engine, settings, model
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._main, name="clawdesk-serve-worker", daemon=True)
        self._ready = threading.Event()
        self.running: Job | None = None
        self.watcher: ServedWatcher | None = None
        self.turns = 0

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(30)

    def stop(self) -> None:
        """Finish the job in progress (its client is told), drop the rest, end the thread."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.emit(Failed(ApiError(503, "The server is shutting down.", "server_shutting_down",
                                         kind="server_error")))
        self._jobs.put(None)
        self._thread.join(60)

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    @property
    def queued(self) -> int:
        """Requests waiting, plus the one being answered."""
        return self._jobs.qsize() + (1 if self.running else 0)

    # --- the thread ------------------------------------------------------------------------------
    def _main(self) -> None:
        store = open_store(self.db_path, self.settings.db_busy_timeout_ms)
        try:
            chat = ChatService(store, self.engine, self.settings)
            self.watcher = ServedWatcher(store, self.settings, self.engine, self.model)
            self._ready.set()
            while (job := self._jobs.get()) is not None:
                self.running = job
                try:
                    self._run(chat, job)
                except ApiError as e:
                    job.emit(Failed(e))
                except ClawDeskError as e:
                    log.warning("turn failed: %s", e)
                    job.emit(Failed(ApiError(500, str(e), "clawdesk_error", kind="server_error")))
                except Exception as e:  # a bug: keep serving the other clients, say what happened
                    log.exception("turn failed")
                    job.emit(Failed(ApiError(500, f"Internal error: {e!r}", "internal_error", kind="server_error")))
                finally:
                    self.running = None
        finally:
            store.close()

    def _run(self, chat: ChatService, job: Job) -> None:
        assert self.watcher is not None
        self.watcher.check()  # between two requests: the only place a promoted version lands
        if job.cancel.is_set():
            job.emit(Failed(None))
            return
        request = job.request
        truncated = self._check_context(request)
        warnings = []
        sampling = dict(request.sampling)
        if request.tools:
            if self.engine.supports_tools:
                sampling["tools"] = request.tools
            else:
                warnings.append("tools were stored with the turn but not shown to the model: its chat "
                                "template cannot render tools")
        placement = place(chat, job.session, request)
        job.emit(Started(placement, truncated, warnings))
        # a JSON reply is sent whole at the end: only a stream needs its pieces one by one
        on_text = (lambda text: job.emit(Piece(text))) if request.stream else None
        turn = chat.reply(placement.leaf.id, on_text=on_text, cancel=job.cancel, **sampling)
        chat.store.record_served_turn(job.completion_id, turn.assistant.id, job.session.key, job.session.turn_type,
                                      request.tools, request.tool_choice)
        if job.session.done:
            chat.store.end_session(job.session.key)
        self.turns += 1
        job.emit(Finished(turn))

    def _check_context(self, request: ChatRequest) -> bool:
        """Refuse (400) a request whose newest message cannot fit even alone; True when older
        turns will have to be left out (the engine drops them, oldest first, and the reply says
        so — the TUI's note)."""
        n_ctx = self.engine.n_ctx
        reserve = min(request.sampling.get("max_tokens", self.settings.max_tokens), n_ctx // 2)
        budget = max(64, n_ctx - reserve)
        if _token_bound(request) <= budget:
            return False  # cannot overflow: skip rendering the prompt twice more (most requests)
        system = [{"role": "system", "content": request.system}] if request.system else []
        role, text = request.turns[-1]
        tools = request.tools if self.engine.supports_tools else None
        needed = len(self.engine.render(system + [{"role": role, "content": text}], tools))
        if needed > budget:
            raise ApiError(400, f"The last message (with the system prompt) is {needed} tokens, but the context "
                                f"window of {n_ctx} tokens leaves {budget} for the prompt after reserving "
                                f"{reserve} for the reply. Shorten the message or lower max_tokens.",
                           "context_length_exceeded", "messages")
        if len(request.turns) == 1:
            return False
        history = [{"role": r, "content": t} for r, t in request.turns]
        return len(self.engine.render(system + history, tools)) > budget


def _token_bound(request: ChatRequest) -> int:
    """An upper bound on the prompt's length in tokens without tokenizing: a byte-level BPE token
    covers at least one byte, and a chat template adds a few special tokens and a role name per
    message (32 is generous) plus a default system prompt when none is given (256 is generous)."""
    text = sum(len(t.encode("utf-8")) for _, t in request.turns) + len(request.system.encode("utf-8"))
    tools = len(json.dumps(request.tools).encode("utf-8")) if request.tools else 0  # a template may render them
    return text + tools + 32 * (len(request.turns) + 1) + 256
