"""Whole-store operations: counts, backup, export/import, forgetting, re-queueing, scrubbing.

Forgetting is the one place where "delete" has to reach further than a row: the text also
lingers in free pages, old full-text index segments and the write-ahead log (``scrub``), and in
adapters trained on it (``flag_trained_on``). Export and import are ``store.transfer``'s — one
implementation for both file shapes; the methods here keep the ``Store`` API.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import StoreError, StoreLocked
from . import transfer
from .base import StoreBase, _l

TABLES_COUNTED = ("conversations", "messages", "feedback", "samples", "training_runs", "adapters")


class MaintenanceMixin(StoreBase):
    def counts(self) -> dict[str, int]:
        out = {}
        with self._guard():
            for table in TABLES_COUNTED:
                out[table] = self.db[table].count
            out["samples_ready"] = self.db.execute("select count(*) from samples where status='ready'").fetchone()[0]
        return out

    def backup(self, dest: Path) -> None:
        """A consistent copy via ``VACUUM INTO`` (safe while the chat is writing)."""
        dest = Path(dest)
        if dest.exists():
            raise StoreError(f"{dest} already exists; choose a new file name.")
        with self._guard():
            self.db.execute("vacuum into ?", [str(dest)])
        os.chmod(dest, 0o600)

    def export_conversations(self) -> list[dict[str, Any]]:
        """Every conversation with its messages and feedback, as plain JSON-able dicts."""
        return transfer.export_conversations(self)

    def import_conversations(self, data: list[dict[str, Any]]) -> int:
        """Load an ``export_conversations`` dump; ids are renumbered, the tree is kept."""
        return transfer.import_conversations(self, data)

    # --- forgetting -----------------------------------------------------------------------------
    def forget_conversations(self, cids: list[int]) -> dict[str, Any]:
        """Delete conversations with every row that holds their text, in one transaction.

        Returns counts per table and the deleted message ids (to flag adapters trained on them)."""
        for cid in cids:  # an unknown id is an error before anything is deleted
            if not self.execute("select 1 from conversations where id = ?", [cid]):
                raise StoreError(f"No conversation {cid}; `clawdesk logs list` shows the ids.")
        out: dict[str, Any] = {"conversations": 0, "messages": 0, "feedback": 0, "samples": 0, "message_ids": []}
        with self.transaction():
            for cid in cids:
                ids = [r[0] for r in self.db.execute(
                    "select id from messages where conversation_id = ?", [cid]).fetchall()]
                sub = "select id from messages where conversation_id = ?"
                out["samples"] += self.db.execute(
                    f"delete from samples where message_id in ({sub}) or conversation_id = ?", [cid, cid]).rowcount
                out["feedback"] += self.db.execute(f"delete from feedback where message_id in ({sub})", [cid]).rowcount
                self.db.execute("update messages set parent_id = null where conversation_id = ?", [cid])
                out["messages"] += self.db.execute("delete from messages where conversation_id = ?", [cid]).rowcount
                out["conversations"] += self.db.execute("delete from conversations where id = ?", [cid]).rowcount
                out["message_ids"] += ids
        return out

    def flag_trained_on(self, message_ids: list[int]) -> list[int]:
        """Mark every adapter version whose training data included one of ``message_ids`` — and
        its descendants, which started from its weights — as trained on forgotten data.
        Returns the versions newly flagged."""
        gone = set(message_ids)
        flagged: list[int] = []
        with self.transaction():
            rows = self.db.execute(
                "select version, parent_version, trained_on, trained_on_forgotten from adapters order by version"
            ).fetchall()
            tainted = {v for v, _, _, f in rows if f}
            for version, parent, trained_on, already in rows:  # parents have smaller version numbers
                if already:
                    continue
                if gone & set(_l(trained_on, [])) or parent in tainted:
                    tainted.add(version)
                    flagged.append(version)
                    self.db.execute("update adapters set trained_on_forgotten = 1 where version = ?", [version])
        return flagged

    def requeue_samples(self, run_ids: list[int]) -> int:
        """Put the samples these runs trained on back in the queue ('used' → 'ready')."""
        if not run_ids:
            return 0
        marks = ", ".join("?" for _ in run_ids)
        with self.transaction():
            return self.db.execute(f"update samples set status = 'ready', run_id = null where status = 'used'"
                                   f" and run_id in ({marks})", list(run_ids)).rowcount

    def scrub(self) -> None:
        """Make deleted text unrecoverable from the database files.

        Deleted rows linger in three places: free pages (zeroed by ``secure_delete``), old FTS5
        index segments (the full-text indexes record a delete as a new segment until segments are
        merged: 'optimize' merges them) and the write-ahead log (checkpointed and truncated). VACUUM
        then rewrites the file from live rows only; in WAL mode it writes through the log, so the
        log is checkpointed and truncated once more at the end."""
        with self._guard():
            self.db.execute("PRAGMA secure_delete = ON")
            with self.db.conn:
                for index in ("messages_fts", "conversations_fts"):
                    self.db.execute(f"insert into {index}({index}) values ('optimize')")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.execute("VACUUM")
            busy = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy and busy[0]:
            raise StoreLocked(f"Another process is reading {self.path}, so the deleted text may stay in its "
                              f"write-ahead log until that process exits; close the chat and run `clawdesk forget --compact`.")

    def integrity_check(self) -> str:
        with self._guard():
            return self.db.execute("pragma integrity_check").fetchone()[0]
