"""The store's connection plumbing, shared by every table family (see the package docstring).

``StoreBase`` opens the SQLite file (private, WAL, busy timeout, secure delete), runs the
migrations, turns ``sqlite3`` errors into ``StoreError``s a person can act on, and gives the
families their three write primitives: ``transaction`` (all or nothing), ``_insert`` and
``_update`` (plain SQL, so they stay inside the caller's transaction). The small key/value
``state`` table lives here too: every family reads it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from ..errors import StoreError, StoreLocked
from .migrations import migrate


def _create_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    os.chmod(path, 0o600)


def _j(value: Any) -> str | None:
    """A JSON cell (None stays NULL)."""
    return None if value is None else json.dumps(value)


def _l(value: str | None, default: Any) -> Any:
    """A JSON cell read back (NULL or empty gives ``default``)."""
    if value in (None, ""):
        return default
    return json.loads(value)


class StoreBase:
    """The connection, error translation, transactions and the ``state`` table."""

    def __init__(self, path: Path, busy_timeout_ms: int = 10000) -> None:
        self.path = path
        try:
            _create_private(path)
            conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            # Deleted rows are overwritten with zeros, not just unlinked: "delete" must mean delete
            # even for someone reading the file's free pages (``forget`` also vacuums).
            conn.execute("PRAGMA secure_delete = ON")
            self.db = sqlite_utils.Database(conn)
            with self._guard():
                migrate(self.db)
        except sqlite3.DatabaseError as e:
            raise self._translate(e) from None
        except OSError as e:
            raise StoreError(f"Cannot open the database at {path}: {e.strerror}. Check the path and free disk space.") from None

    def _translate(self, e: sqlite3.Error) -> StoreError:
        text = str(e)
        if "locked" in text or "busy" in text:
            return StoreLocked(f"The database at {self.path} is locked by another process; try again in a moment.")
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return StoreError(f"The database at {self.path} is damaged ({text}); run `clawdesk doctor --repair` (it keeps the original).")
        if "full" in text:
            return StoreError(f"The disk holding {self.path} is full; free some space — nothing was lost.")
        return StoreError(f"Database error in {self.path}: {text}.")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            raise self._translate(e) from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing writes in plain SQL (``self.db.execute``).

        The connection runs in autocommit mode (sqlite-utils sets ``isolation_level = None``), so
        there is no implicit BEGIN: this issues ``BEGIN IMMEDIATE`` itself — which also takes the
        write lock up front, so a concurrent writer waits on the busy timeout instead of failing
        on a read-to-write upgrade. Caveat: sqlite-utils' ``insert``/``update`` commit on their
        own, ending the transaction early; multi-row writes that must be atomic use plain SQL."""
        with self._guard():
            conn = self.db.conn
            if conn.in_transaction:  # nested: the outermost block commits
                yield
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            if conn.in_transaction:
                conn.commit()

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        """Plain-SQL insert that stays inside the caller's transaction (sqlite-utils' own
        ``insert`` commits by itself, which would split a multi-statement write)."""
        cols = ", ".join(f'"{k}"' for k in row)
        marks = ", ".join("?" for _ in row)
        cur = self.db.conn.execute(f'insert into "{table}" ({cols}) values ({marks})', list(row.values()))
        return int(cur.lastrowid)

    def _update(self, table: str, pk: str, key: Any, changes: dict[str, Any]) -> None:
        sets = ", ".join(f'"{k}" = ?' for k in changes)
        self.db.conn.execute(f'update "{table}" set {sets} where "{pk}" = ?', [*changes.values(), key])

    def _rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        """Every row of a read as a dict (column name → value), errors translated."""
        with self._guard():
            return list(self.db.query(sql, params))

    def _one(self, sql: str, params: Any, missing: str) -> dict[str, Any]:
        """The row a lookup by key finds; ``missing`` is the error a person reads when there is none."""
        rows = self._rows(sql, params)
        if not rows:
            raise StoreError(missing)
        return rows[0]

    def close(self) -> None:
        self.db.conn.close()

    def execute(self, sql: str, params: Any = ()) -> list[tuple]:
        """Raw SQL for maintenance and tests (pragmas, checkpoints); the app's own queries are
        methods of the families, so that nothing above this package writes SQL."""
        with self._guard():
            return self.db.execute(sql, params).fetchall()

    # --- state ----------------------------------------------------------------------------------
    def get_state(self, key: str, default: str | None = None) -> str | None:
        with self._guard():
            rows = self.db.execute("select value from state where key = ?", [key]).fetchall()
        return rows[0][0] if rows else default

    def set_state(self, key: str, value: str | None) -> None:
        with self.transaction():
            if value is None:
                self.db.execute("delete from state where key = ?", [key])
            else:
                self.db.execute("insert or replace into state (key, value) values (?, ?)", [key, value])
