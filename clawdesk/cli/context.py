"""Lazily opened shared state for one CLI invocation (settings, store, engine)."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from .. import locations
from ..settings import Settings, load_settings
from ..store import Store, open_store


@dataclass
class AppContext:
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _store: Store | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(locations.db_path(), self.settings.db_busy_timeout_ms)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


pass_app = click.make_pass_decorator(AppContext)
