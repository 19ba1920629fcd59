"""ClawDesk's SQLite store: every turn, every piece of feedback, every judged sample.

Design (after simonw/llm's log store):
- One SQLite file in the user data dir, WAL mode so the chat and the nightly daemon can read and
  write at once; a busy timeout so a writer waits for the other instead of failing.
- The file is created 0600 before SQLite touches it (SQLite gives its -wal/-shm files the same
  mode): it holds private conversations.
- Messages form a tree by ``parent_id``; deleting a conversation deletes its messages, feedback
  and samples for real (no soft delete: "delete" must mean delete).
- Rows come out as the dataclasses in ``clawdesk.records``; nothing above this package writes SQL.
- A year of history must not slow the app down: the sidebar pages through an index and searches
  through FTS5, and the judge pass reads a queue of changed turns that triggers keep, not every
  turn ever logged (see ``samples``).

Layout: one module per table family, each a mixin over ``base.StoreBase`` (the connection,
transactions, error translation, the ``state`` table); ``Store`` is their union. A new family is
a new module with its mixin, added to ``Store``'s bases (before ``StoreBase``).

- ``conversations`` — conversations, messages, paging and search
- ``feedback`` — explicit feedback rows
- ``memory`` — the preference memory: wishes, their sources, the note each reply's prompt got
- ``samples`` — judged samples and the queue of turns whose signals changed
- ``sessions`` — `clawdesk serve`'s client sessions and served turns (completion ids)
- ``versions`` — training runs, adapter versions, registered models, the pipeline log
- ``maintenance`` — counts, backup, export/import (``transfer``), forgetting, scrubbing
- ``migrations`` — the schema, as named migrations; ``transfer`` and ``repair`` — whole-file moves
"""

from __future__ import annotations

from pathlib import Path

from .base import StoreBase
from .conversations import ConversationsMixin
from .feedback import FeedbackMixin
from .maintenance import MaintenanceMixin
from .memory import MemoryMixin
from .samples import SamplesMixin
from .sessions import SessionsMixin
from .versions import VersionsMixin

__all__ = ["Store", "open_store"]


class Store(ConversationsMixin, FeedbackMixin, MemoryMixin, SamplesMixin, SessionsMixin, VersionsMixin, MaintenanceMixin,
            StoreBase):
    """The whole store: every table family over one connection (see the module docstring)."""


def open_store(path: Path | str, busy_timeout_ms: int = 10000) -> Store:
    """Open (creating and migrating as needed) the store at ``path``."""
    return Store(Path(path), busy_timeout_ms)
