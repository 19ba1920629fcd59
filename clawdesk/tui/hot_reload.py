"""Hot reload: notice a promotion or rollback made by another process and swap it in between turns.

Promotions and rollbacks (``clawdesk train``, the scheduler, ``clawdesk adapters rollback``) run
in other processes; all they change that the chat can see is the store's ``served_adapter`` key.
So the chat polls that key (every 2 s by default) and, when it moves, asks the engine for a swap.
The engine applies a swap only between turns — a reply in progress finishes on the weights it
started with — and reports back through ``Engine.on_swap`` from whichever thread applied it; we
turn that into an ``AdapterSwapped`` message, since ``post_message`` is the thread-safe way into
the UI. The same tick refreshes the status bar's "samples ready" and "last training" fields,
which other processes change too.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.app import App
from textual.message import Message as UIMessage

from ..chat.reload import ServedWatcher, SwapRequest
from ..engine import Engine
from ..errors import ClawDeskError
from ..settings import Settings
from ..store import Store
from .widgets.statusbar import StatusBar


class AdapterSwapped(UIMessage):
    """Posted from whichever thread the engine applied a swap in."""

    def __init__(self, version: int | None, model_path: str) -> None:
        super().__init__()
        self.version, self.model_path = version, model_path


class HotReload:
    """Watches the store for a new served version (``chat.reload.ServedWatcher``, shared with
    ``clawdesk serve``) and hands it to the engine from a worker thread.

    ``model``: the model the chat was asked for (``-m``, or the last F4 choice), whose file is
    the base to return to when a merged version is rolled back; None means the settings' model.
    """

    def __init__(self, app: App[None], store: Store, settings: Settings, poll_seconds: float,
                 model: str | None = None) -> None:
        self.app, self.store, self.settings = app, store, settings
        self.poll_seconds = poll_seconds
        self.watcher: ServedWatcher | None = None
        self._model = model
        self._previous_on_swap: Callable[[int | None], None] | None = None

    @property
    def engine(self) -> Engine | None:
        return self.watcher.engine if self.watcher else None

    @property
    def model(self) -> str | None:
        return self._model

    @model.setter
    def model(self, value: str | None) -> None:
        self._model = value
        if self.watcher:
            self.watcher.model = value

    def start(self) -> None:
        """Remember what is served now (the engine was or will be opened with it) and start polling."""
        self.watcher = ServedWatcher(self.store, self.settings, None, self._model)
        self.refresh_counts()
        self.app.set_interval(self.poll_seconds, self.tick)

    def attach(self, engine: Engine) -> None:
        """Route the engine's swap reports to the UI. A test's shared engine keeps its own
        callback, restored by ``detach``. Attaching the engine already attached changes nothing."""
        assert self.watcher is not None, "start() first"
        if engine is self.engine:
            return
        self.detach()
        self.watcher.engine = engine
        self._previous_on_swap = engine.on_swap
        engine.on_swap = lambda version: self.app.post_message(AdapterSwapped(version, engine.model_path))

    def detach(self) -> None:
        if self.engine is not None:
            self.engine.on_swap = self._previous_on_swap

    def tick(self) -> None:
        """One poll. Also called at once after a rollback from inside the chat."""
        if not self.app.is_running:
            # Textual removes the widgets on quit before it stops the app's timers; a tick in
            # that window found no StatusBar and failed the exit (seen in CI, 0.1 s poll).
            return
        request = self.watcher.moved() if self.watcher else None
        if request is not None:
            self.app.query_one(StatusBar).notice = "loading new adapter…"
            self.app.run_worker(lambda: self._swap(request), thread=True, group="swap")
        self.refresh_counts()

    def refresh_counts(self) -> None:
        status = self.app.query_one(StatusBar)
        status.samples_ready = self.store.count_samples("ready")  # an index read: counts() grows with history
        runs = self.store.runs(limit=1)
        if runs:
            status.last_run = f"last training #{runs[0].id}: {runs[0].status}"

    def _swap(self, request: SwapRequest) -> None:
        """In a worker thread: a turn in progress finishes on the old weights; the engine
        applies this after it."""
        assert self.watcher is not None
        try:
            self.watcher.apply(request)
        except ClawDeskError as e:
            self.app.call_from_thread(self.app.notify, str(e), title="Adapter not loaded", severity="error",
                                      timeout=15)
