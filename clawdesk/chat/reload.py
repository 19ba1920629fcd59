"""Hot reload without a UI: notice a promotion or rollback and ask the engine for the swap.

Promotions and rollbacks happen in other processes (``clawdesk train``, the daemon, ``clawdesk
adapters rollback``); all a running chat can see of them is the store's ``served_adapter`` key.
The TUI polls it on a timer (``tui/hot_reload.py``); ``clawdesk serve`` calls ``check()`` before
each request it runs, which is exactly "between turns". Either way the engine does the rest: a
swap requested while a reply is being generated is applied right after it, so that reply
finishes on the weights it started with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .. import catalog
from ..engine import Engine
from ..errors import ClawDeskError
from ..settings import Settings
from ..store import Store
from .service import served_adapter

log = logging.getLogger("clawdesk.chat")


@dataclass(frozen=True)
class SwapRequest:
    """What the engine should load: an adapter (or none), its version, and a new base file when
    the served version is a merged model or the way back from one."""

    adapter: str | None
    version: int | None
    model_path: str | None


class ServedWatcher:
    """Keeps ``engine`` on the version the store says is served.

    ``model``: the model asked for (``-m``), whose file is the base to return to when a merged
    version is rolled back; None means the settings' current model. ``engine`` may be attached
    later (the TUI loads its model after it starts); until then nothing counts as seen."""

    def __init__(self, store: Store, settings: Settings, engine: Engine | None, model: str | None = None) -> None:
        self.store, self.settings, self.engine, self.model = store, settings, engine, model
        self._served = store.get_state("served_adapter")  # the engine was (or will be) opened with this one
        self.error = ""  # the last swap that failed, for /health and the log

    def moved(self) -> SwapRequest | None:
        """The swap to request if the served version moved since the last look, else None."""
        value = self.store.get_state("served_adapter")
        if value == self._served or self.engine is None:
            return None
        self._served = value
        adapter, version, merged = served_adapter(self.store)
        model_path = merged
        if model_path is None and self.engine.model_path != self._base_path():
            model_path = self._base_path()  # back from a merged model to base + adapter
        return SwapRequest(adapter, version, model_path)

    def apply(self, request: SwapRequest) -> None:
        """Hand the swap to the engine (applied between turns); raises ClawDeskError for a
        version that cannot be loaded, and the old weights stay."""
        assert self.engine is not None
        self.engine.request_swap(request.adapter, request.version, model_path=request.model_path)

    def check(self) -> bool:
        """Request a swap if the served version moved; True if it did. A broken version is
        logged and kept in ``error``: it must not stop serving."""
        request = self.moved()
        if request is None:
            return False
        try:
            self.apply(request)
            self.error = ""
        except ClawDeskError as e:
            self.error = f"version {request.version} not loaded: {e}"
            log.warning("hot reload: %s", self.error)
        return True

    def _base_path(self) -> str | None:
        try:
            entry = catalog.resolve(self.store, self.model) if self.model else catalog.current_model(
                self.store, self.settings)
            return entry.path
        except ClawDeskError:
            return None
