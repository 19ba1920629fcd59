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

from .. import catalog
from ..engine import Engine
from ..errors import ClawDeskError
from ..settings import Settings
from ..store import Store
from .service import served_adapter

log = logging.getLogger("clawdesk.chat")


class ServedWatcher:
    """Keeps ``engine`` on the version the store says is served.

    ``model``: the model asked for (``-m``), whose file is the base to return to when a merged
    version is rolled back; None means the settings' current model."""

    def __init__(self, store: Store, settings: Settings, engine: Engine, model: str | None = None) -> None:
        self.store, self.settings, self.engine, self.model = store, settings, engine, model
        self._served = store.get_state("served_adapter")  # the engine was opened with this one
        self.error = ""  # the last swap that failed, for /health and the log

    def check(self) -> bool:
        """Request a swap if the served version moved since the last check; True if it did."""
        value = self.store.get_state("served_adapter")
        if value == self._served:
            return False
        self._served = value
        adapter, version, merged = served_adapter(self.store)
        model_path = merged
        if model_path is None and self.engine.model_path != self._base_path():
            model_path = self._base_path()  # back from a merged model to base + adapter
        try:
            self.engine.request_swap(adapter, version, model_path=model_path)
            self.error = ""
        except ClawDeskError as e:  # a broken version must not stop serving: keep the old weights
            self.error = f"version {version} not loaded: {e}"
            log.warning("hot reload: %s", self.error)
        return True

    def _base_path(self) -> str | None:
        try:
            entry = catalog.resolve(self.store, self.model) if self.model else catalog.current_model(
                self.store, self.settings)
            return entry.path
        except ClawDeskError:
            return None
