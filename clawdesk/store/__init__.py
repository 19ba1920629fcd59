"""ClawDesk's SQLite store: every turn, every piece of feedback, every judged sample.

Design (after simonw/llm's log store):
- One SQLite file in the user data dir, WAL mode so the chat and the nightly daemon can read and
  write at once; a busy timeout so a writer waits for the other instead of failing.
- The file is created 0600 before SQLite touches it (SQLite gives its -wal/-shm files the same
  mode): it holds private conversations.
- Messages form a tree by ``parent_id``; deleting a conversation deletes its messages, feedback
  and samples for real (no soft delete: "delete" must mean delete).
- Rows come out as the dataclasses in ``clawdesk.records``; nothing above this package writes SQL.
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
from ..records import AdapterVersion, Conversation, Feedback, Message, ModelEntry, Sample, TrainingRun
from .migrations import _now, migrate

__all__ = ["Store", "open_store"]


def _create_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    os.chmod(path, 0o600)


def _j(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _l(value: str | None, default: Any) -> Any:
    if value in (None, ""):
        return default
    return json.loads(value)


def open_store(path: Path | str, busy_timeout_ms: int = 10000) -> "Store":
    """Open (creating and migrating as needed) the store at ``path``."""
    return Store(Path(path), busy_timeout_ms)


class Store:
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

    # --- plumbing -------------------------------------------------------------------------------
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

    def close(self) -> None:
        self.db.conn.close()

    def execute(self, sql: str, params: Any = ()) -> list[tuple]:
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

    # --- conversations --------------------------------------------------------------------------
    def new_conversation(self, name: str = "New conversation", system_prompt: str = "", model: str = "") -> Conversation:
        now = _now()
        with self.transaction():
            cid = self.db["conversations"].insert(
                {"name": name, "system_prompt": system_prompt, "model": model, "exclude": 0,
                 "created_at": now, "updated_at": now}
            ).last_pk
        return self.get_conversation(cid)

    def get_conversation(self, cid: int) -> Conversation:
        with self._guard():
            rows = list(self.db.query("select * from conversations where id = ?", [cid]))
        if not rows:
            raise StoreError(f"No conversation {cid}; `clawdesk logs list` shows the ids.")
        r = rows[0]
        return Conversation(r["id"], r["name"], r["system_prompt"] or "", r["model"] or "", bool(r["exclude"]),
                            r["created_at"], r["updated_at"] or "")

    def list_conversations(self, limit: int | None = None, query: str | None = None) -> list[Conversation]:
        """Newest first; ``query`` is a full-text search over message text."""
        sql = "select * from conversations"
        params: list[Any] = []
        if query:
            sql += (" where id in (select m.conversation_id from messages m join messages_fts f"
                    " on f.rowid = m.id where messages_fts match ?) or name like ?")
            params += [_fts_query(query), f"%{query}%"]
        sql += " order by coalesce(updated_at, created_at) desc, id desc"
        if limit:
            sql += f" limit {int(limit)}"
        with self._guard():
            rows = list(self.db.query(sql, params))
        return [Conversation(r["id"], r["name"], r["system_prompt"] or "", r["model"] or "", bool(r["exclude"]),
                             r["created_at"], r["updated_at"] or "") for r in rows]

    def update_conversation(self, cid: int, **changes: Any) -> None:
        allowed = {"name", "system_prompt", "model", "exclude"}
        bad = set(changes) - allowed
        if bad:
            raise ValueError(f"cannot update {bad}")
        if "exclude" in changes:
            changes["exclude"] = int(bool(changes["exclude"]))
        with self.transaction():
            self.db["conversations"].update(cid, {**changes, "updated_at": _now()})
            if changes.get("exclude"):  # as for a message: no sample of it may be trained on from now
                self.db.execute("delete from samples where message_id in"
                                " (select id from messages where conversation_id = ?)", [cid])

    def delete_conversation(self, cid: int) -> None:
        """Delete the conversation with its messages, feedback and samples — really."""
        with self.transaction():
            ids = "select id from messages where conversation_id = ?"
            self.db.execute(f"delete from samples where message_id in ({ids})", [cid])
            self.db.execute(f"delete from feedback where message_id in ({ids})", [cid])
            # children before parents (the parent_id foreign key)
            self.db.execute("update messages set parent_id = null where conversation_id = ?", [cid])
            self.db.execute("delete from messages where conversation_id = ?", [cid])
            self.db.execute("delete from conversations where id = ?", [cid])

    def last_conversation_id(self) -> int | None:
        with self._guard():
            rows = self.db.execute(
                "select conversation_id from messages order by id desc limit 1").fetchall()
        return rows[0][0] if rows else None

    # --- messages -------------------------------------------------------------------------------
    def add_message(self, conversation_id: int, role: str, content: str, parent_id: int | None = None,
                    **fields: Any) -> Message:
        row = {
            "conversation_id": conversation_id,
            "parent_id": parent_id,
            "role": role,
            "content": content,
            "prompt_token_ids": _j(fields.pop("prompt_token_ids", None)),
            "response_token_ids": _j(fields.pop("response_token_ids", None)),
            "sampling": json.dumps(fields.pop("sampling", {}) or {}),
            "created_at": _now(),
            "exclude": 0,
        }
        row.update(fields)
        with self.transaction():
            mid = self._insert("messages", row)
            self._update("conversations", "id", conversation_id, {"updated_at": row["created_at"]})
        return self.get_message(mid)

    def get_message(self, mid: int) -> Message:
        with self._guard():
            rows = list(self.db.query("select * from messages where id = ?", [mid]))
        if not rows:
            raise StoreError(f"No message {mid}.")
        return _message(rows[0])

    def messages(self, conversation_id: int) -> list[Message]:
        """Every message of a conversation (all branches), oldest first."""
        with self._guard():
            rows = self.db.query("select * from messages where conversation_id = ? order by id", [conversation_id])
            return [_message(r) for r in rows]

    def path_to(self, mid: int) -> list[Message]:
        """The branch from the root down to ``mid`` — the context the model saw."""
        with self._guard():
            rows = list(self.db.query(
                """with recursive chain(id, depth) as (
                       select id, 0 from messages where id = ?
                       union all
                       select m.parent_id, chain.depth + 1 from messages m join chain on m.id = chain.id
                       where m.parent_id is not null)
                   select messages.* from chain join messages on messages.id = chain.id
                   order by chain.depth desc""", [mid]))
        return [_message(r) for r in rows]

    def children(self, mid: int | None, conversation_id: int | None = None) -> list[Message]:
        with self._guard():
            if mid is None:
                rows = self.db.query(
                    "select * from messages where parent_id is null and conversation_id = ? order by id",
                    [conversation_id])
            else:
                rows = self.db.query("select * from messages where parent_id = ? order by id", [mid])
            return [_message(r) for r in rows]

    def siblings(self, mid: int) -> list[Message]:
        """The message and its alternatives (same parent, same role), oldest first."""
        msg = self.get_message(mid)
        return [m for m in self.children(msg.parent_id, msg.conversation_id) if m.role == msg.role]

    def latest_leaf(self, conversation_id: int) -> Message | None:
        """The newest message of a conversation: where a continued conversation picks up."""
        with self._guard():
            rows = list(self.db.query(
                "select * from messages where conversation_id = ? order by id desc limit 1", [conversation_id]))
        return _message(rows[0]) if rows else None

    def set_message_exclude(self, mid: int, exclude: bool = True) -> None:
        with self.transaction():
            self.db["messages"].update(mid, {"exclude": int(exclude)})

    def update_message(self, mid: int, **changes: Any) -> None:
        for key in ("prompt_token_ids", "response_token_ids", "sampling"):
            if key in changes:
                changes[key] = _j(changes[key])
        with self.transaction():
            self.db["messages"].update(mid, changes)

    def search(self, query: str, limit: int = 50) -> list[Message]:
        with self._guard():
            rows = self.db.query(
                "select messages.* from messages join messages_fts on messages_fts.rowid = messages.id"
                " where messages_fts match ? order by messages_fts.rank limit ?", [_fts_query(query), limit])
            return [_message(r) for r in rows]

    # --- feedback -------------------------------------------------------------------------------
    def add_feedback(self, message_id: int, kind: str, reason: str = "", comment: str = "",
                     correction: str = "") -> Feedback:
        from ..records import FEEDBACK_KINDS

        if kind not in FEEDBACK_KINDS:
            raise ValueError(f"unknown feedback kind {kind!r}")
        row = {"message_id": message_id, "kind": kind, "reason": reason or "", "comment": comment or "",
               "correction": correction or "", "created_at": _now()}
        with self.transaction():
            fid = self._insert("feedback", row)
            if kind == "exclude":
                self._update("messages", "id", message_id, {"exclude": 1})
                # "don't learn" takes effect now, not at the next judge pass: `train --now` reads samples
                self.db.execute("delete from samples where message_id = ?", [message_id])
        return Feedback(fid, **row)

    def feedback_for(self, message_id: int) -> list[Feedback]:
        with self._guard():
            rows = self.db.query("select * from feedback where message_id = ? order by id", [message_id])
            return [Feedback(**r) for r in rows]

    def update_feedback(self, feedback_id: int, reason: str | None = None, comment: str | None = None) -> None:
        """Add the optional reason/comment to a row written a moment earlier (the TUI writes a
        thumbs-down at once and lets the person explain it afterwards)."""
        changes = {k: v for k, v in {"reason": reason, "comment": comment}.items() if v is not None}
        if changes:
            with self.transaction():
                self.db["feedback"].update(feedback_id, changes)

    def remove_feedback(self, feedback_id: int) -> None:
        with self.transaction():
            self.db.execute("delete from feedback where id = ?", [feedback_id])

    # --- samples --------------------------------------------------------------------------------
    def upsert_sample(self, sample: Sample) -> Sample:
        """Insert or replace the sample for (message, source): judging twice never duplicates."""
        row = {
            "message_id": sample.message_id, "conversation_id": sample.conversation_id,
            "source": sample.source, "prompt_token_ids": _j(sample.prompt_token_ids),
            "response_token_ids": _j(sample.response_token_ids),
            "prompt_messages": json.dumps(sample.prompt_messages), "next_state": sample.next_state,
            "reward": sample.reward, "votes": json.dumps(sample.votes), "failed_votes": sample.failed_votes,
            "hints": json.dumps(sample.hints), "status": sample.status, "drop_reason": sample.drop_reason,
            "created_at": sample.created_at or _now(), "judge_model": sample.judge_model,
        }
        with self.transaction():
            existing = self.db.execute("select id from samples where message_id = ? and source = ?",
                                       [sample.message_id, sample.source]).fetchall()
            if existing:
                self._update("samples", "id", existing[0][0], row)
                sid = existing[0][0]
            else:
                sid = self._insert("samples", row)
        return self.get_sample(sid)

    def get_sample(self, sid: int) -> Sample:
        with self._guard():
            rows = list(self.db.query("select * from samples where id = ?", [sid]))
        if not rows:
            raise StoreError(f"No sample {sid}; `clawdesk samples list` shows the ids.")
        return _sample(rows[0])

    def samples(self, status: str | None = None, limit: int | None = None) -> list[Sample]:
        sql, params = "select * from samples", []
        if status:
            sql += " where status = ?"
            params.append(status)
        sql += " order by id"
        if limit:
            sql += f" limit {int(limit)}"
        with self._guard():
            return [_sample(r) for r in self.db.query(sql, params)]

    def samples_for(self, message_id: int) -> list[Sample]:
        """Every sample of one message (at most one per source)."""
        with self._guard():
            rows = self.db.query("select * from samples where message_id = ? order by id", [message_id])
            return [_sample(r) for r in rows]

    def delete_samples(self, message_id: int, sources: list[str] | None = None) -> int:
        """Remove a message's samples (all, or those of ``sources``); returns how many."""
        sql, params = "delete from samples where message_id = ?", [message_id]
        if sources is not None:
            sql += f" and source in ({', '.join('?' for _ in sources)})"
            params += list(sources)
        with self.transaction():
            return self.db.execute(sql, params).rowcount

    def purge_excluded_samples(self) -> int:
        """Delete samples whose message or conversation the user excluded from learning."""
        with self.transaction():
            return self.db.execute(
                "delete from samples where message_id in (select m.id from messages m join conversations c"
                " on c.id = m.conversation_id where m.exclude = 1 or c.exclude = 1)").rowcount

    def assistant_messages(self, include_excluded: bool = False) -> list[Message]:
        """Assistant replies oldest first; by default without excluded messages/conversations."""
        sql = ("select m.* from messages m join conversations c on c.id = m.conversation_id"
               " where m.role = 'assistant'")
        if not include_excluded:
            sql += " and m.exclude = 0 and c.exclude = 0"
        with self._guard():
            return [_message(r) for r in self.db.query(sql + " order by m.id")]

    def set_sample_status(self, ids: list[int], status: str, run_id: int | None = None) -> None:
        with self.transaction():
            for sid in ids:  # all or none: a crash must not leave half a run's samples consumed
                self._update("samples", "id", sid, {"status": status, "run_id": run_id})

    # --- training runs --------------------------------------------------------------------------
    def start_run(self, method: str, settings: dict[str, Any], n_samples: int) -> TrainingRun:
        with self.transaction():
            rid = self.db["training_runs"].insert(
                {"status": "running", "method": method, "started_at": _now(), "settings": json.dumps(settings),
                 "n_samples": n_samples, "pid": os.getpid()}).last_pk
        return self.get_run(rid)

    def update_run(self, rid: int, **changes: Any) -> None:
        for key in ("settings", "metrics", "gate"):
            if key in changes:
                changes[key] = json.dumps(changes[key])
        if changes.get("status") in ("done", "failed", "refused", "promoted") and "finished_at" not in changes:
            changes["finished_at"] = _now()
        with self.transaction():
            self.db["training_runs"].update(rid, changes)

    def get_run(self, rid: int) -> TrainingRun:
        with self._guard():
            rows = list(self.db.query("select * from training_runs where id = ?", [rid]))
        if not rows:
            raise StoreError(f"No training run {rid}; `clawdesk runs list` shows the ids.")
        return _run(rows[0])

    def runs(self, limit: int | None = None) -> list[TrainingRun]:
        sql = "select * from training_runs order by id desc" + (f" limit {int(limit)}" if limit else "")
        with self._guard():
            return [_run(r) for r in self.db.query(sql)]

    # --- adapters -------------------------------------------------------------------------------
    def add_adapter(self, path: str, gguf_path: str = "", parent_version: int | None = None,
                    run_id: int | None = None, kind: str = "adapter", metrics: dict | None = None,
                    trained_on: list[int] | None = None) -> AdapterVersion:
        with self.transaction():
            version = self.db["adapters"].insert(
                {"path": path, "gguf_path": gguf_path, "parent_version": parent_version, "run_id": run_id,
                 "kind": kind, "metrics": json.dumps(metrics or {}), "trained_on": json.dumps(trained_on or []),
                 "created_at": _now()}).last_pk
        return self.get_adapter(version)

    def record_promotion(self, version: int, path: str, gguf_path: str, kind: str, parent_version: int | None,
                         run_id: int | None, metrics: dict | None, trained_on: list[int] | None) -> AdapterVersion:
        """Insert the new version and make it the served one in ONE transaction: readers see
        either the old served version or the new one, never a version without its row."""
        now = _now()
        with self.transaction():
            self._insert("adapters",
                         {"version": version, "path": path, "gguf_path": gguf_path, "parent_version": parent_version,
                          "run_id": run_id, "kind": kind, "metrics": json.dumps(metrics or {}),
                          "trained_on": json.dumps(trained_on or []), "created_at": now, "promoted_at": now})
            self.db.execute("insert or replace into state (key, value) values ('served_adapter', ?)", [str(version)])
        return self.get_adapter(version)

    def set_served(self, version: int | None) -> None:
        """Serve ``version`` (None = the base model); a running chat picks it up between turns."""
        now = _now()
        with self.transaction():
            current = self.db.execute("select value from state where key = 'served_adapter'").fetchone()
            current_v = int(current[0]) if current and current[0] else None
            if current_v is not None and current_v != version:
                self.db.execute("update adapters set rolled_back_at = ? where version = ?", [now, current_v])
            if version is None:
                self.db.execute("delete from state where key = 'served_adapter'")
            else:
                self.db.execute("update adapters set rolled_back_at = null where version = ?", [version])
                self.db.execute("insert or replace into state (key, value) values ('served_adapter', ?)", [str(version)])

    def delete_adapter_row(self, version: int) -> None:
        with self.transaction():
            self.db.execute("delete from adapters where version = ?", [version])

    def update_adapter(self, version: int, **changes: Any) -> None:
        if "metrics" in changes:
            changes["metrics"] = json.dumps(changes["metrics"])
        with self.transaction():
            self.db["adapters"].update(version, changes)

    def get_adapter(self, version: int) -> AdapterVersion:
        with self._guard():
            rows = list(self.db.query("select * from adapters where version = ?", [version]))
        if not rows:
            raise StoreError(f"No adapter version {version}; `clawdesk adapters list` shows them.")
        return _adapter(rows[0])

    def adapters(self) -> list[AdapterVersion]:
        with self._guard():
            return [_adapter(r) for r in self.db.query("select * from adapters order by version desc")]

    def served_version(self) -> int | None:
        value = self.get_state("served_adapter")
        return int(value) if value else None

    # --- models ---------------------------------------------------------------------------------
    def add_model(self, entry: ModelEntry) -> None:
        with self.transaction():
            self.db["models"].upsert(
                {"name": entry.name, "path": entry.path, "sha256": entry.sha256, "source": entry.source,
                 "license": entry.license, "template_notes": entry.template_notes,
                 "hf_checkpoint": entry.hf_checkpoint, "added_at": _now()}, pk="name")

    def user_models(self) -> list[ModelEntry]:
        with self._guard():
            rows = self.db.query("select * from models order by name")
            return [ModelEntry(r["name"], r["path"], r["sha256"], r["source"], r["license"],
                               r["template_notes"], r["hf_checkpoint"]) for r in rows]

    def remove_model(self, name: str) -> None:
        with self.transaction():
            self.db.execute("delete from models where name = ?", [name])

    # --- pipeline log ---------------------------------------------------------------------------
    def log_pipeline(self, trigger: str, decision: str, detail: str = "", run_id: int | None = None,
                     at: str | None = None) -> None:
        with self.transaction():
            self.db["pipeline_log"].insert({"at": at or _now(), "trigger": trigger, "decision": decision,
                                            "detail": detail, "run_id": run_id})

    def pipeline_log(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._guard():
            return list(self.db.query(f"select * from pipeline_log order by id desc limit {int(limit)}"))

    def last_user_activity(self) -> str | None:
        """When the user last sent a message (ISO, UTC) — the daemon waits for an idle machine."""
        with self._guard():
            row = self.db.execute("select max(created_at) from messages where role = 'user'").fetchone()
        return row[0] if row else None

    # --- whole-store ----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        out = {}
        with self._guard():
            for table in ("conversations", "messages", "feedback", "samples", "training_runs", "adapters"):
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
        out = []
        for conv in self.list_conversations():
            msgs = []
            for m in self.messages(conv.id):
                d = m.__dict__.copy()
                d["feedback"] = [f.__dict__ for f in self.feedback_for(m.id)]
                msgs.append(d)
            out.append({**conv.__dict__, "messages": msgs})
        return out

    def import_conversations(self, data: list[dict[str, Any]]) -> int:
        """Load an ``export_conversations`` dump; ids are renumbered, the tree is kept."""
        count = 0
        with self.transaction():
            for conv in data:
                cid = self.db["conversations"].insert(
                    {"name": conv.get("name") or "Imported", "system_prompt": conv.get("system_prompt", ""),
                     "model": conv.get("model", ""), "exclude": int(bool(conv.get("exclude"))),
                     "created_at": conv.get("created_at") or _now(),
                     "updated_at": conv.get("updated_at") or _now()}).last_pk
                ids: dict[int, int] = {}
                for m in sorted(conv.get("messages", []), key=lambda m: m["id"]):
                    row = {k: m.get(k) for k in ("role", "content", "model", "adapter_version", "finish_reason",
                                                 "prompt_tokens", "response_tokens", "ttft_ms", "duration_ms",
                                                 "truncated_tokens", "created_at")}
                    row.update(conversation_id=cid, parent_id=ids.get(m.get("parent_id")),
                               prompt_token_ids=_j(m.get("prompt_token_ids")),
                               response_token_ids=_j(m.get("response_token_ids")),
                               sampling=json.dumps(m.get("sampling") or {}), exclude=int(bool(m.get("exclude"))))
                    if not isinstance(row["content"], str) or row["role"] not in ("system", "user", "assistant", "tool"):
                        raise StoreError(f"Message {m.get('id')} in the import has no valid role/content.")
                    ids[m["id"]] = self.db["messages"].insert(row).last_pk
                    for f in m.get("feedback", []):
                        self.db["feedback"].insert({k: f.get(k, "") for k in ("kind", "reason", "comment", "correction", "created_at")}
                                                   | {"message_id": ids[m["id"]]})
                count += 1
        return count

    # --- forgetting -----------------------------------------------------------------------------
    def conversation_ids(self) -> list[int]:
        with self._guard():
            return [r[0] for r in self.db.execute("select id from conversations order by id").fetchall()]

    def forget_conversations(self, cids: list[int]) -> dict[str, Any]:
        """Delete conversations with every row that holds their text, in one transaction.

        Returns counts per table and the deleted message ids (to flag adapters trained on them)."""
        for cid in cids:
            self.get_conversation(cid)  # an unknown id is an error before anything is deleted
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
        index segments (the full-text index records a delete as a new segment until segments are
        merged: 'optimize' merges them) and the write-ahead log (checkpointed and truncated). VACUUM
        then rewrites the file from live rows only; in WAL mode it writes through the log, so the
        log is checkpointed and truncated once more at the end."""
        with self._guard():
            self.db.execute("PRAGMA secure_delete = ON")
            with self.db.conn:
                self.db.execute("insert into messages_fts(messages_fts) values ('optimize')")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.execute("VACUUM")
            busy = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy and busy[0]:
            raise StoreLocked(f"Another process is reading {self.path}, so the deleted text may stay in its "
                              f"write-ahead log until that process exits; close the chat and run `clawdesk forget --compact`.")

    def integrity_check(self) -> str:
        with self._guard():
            return self.db.execute("pragma integrity_check").fetchone()[0]


def _fts_query(text: str) -> str:
    """Quote each word so user input can't be parsed as FTS5 syntax."""
    words = [w.replace('"', '""') for w in text.split()]
    return " ".join(f'"{w}"' for w in words) or '""'


def _message(r: dict[str, Any]) -> Message:
    return Message(
        id=r["id"], conversation_id=r["conversation_id"], parent_id=r["parent_id"], role=r["role"],
        content=r["content"], prompt_token_ids=_l(r["prompt_token_ids"], None),
        response_token_ids=_l(r["response_token_ids"], None), model=r["model"] or "",
        adapter_version=r["adapter_version"], sampling=_l(r["sampling"], {}), finish_reason=r["finish_reason"] or "",
        prompt_tokens=r["prompt_tokens"] or 0, response_tokens=r["response_tokens"] or 0, ttft_ms=r["ttft_ms"],
        duration_ms=r["duration_ms"], truncated_tokens=r["truncated_tokens"] or 0, exclude=bool(r["exclude"]),
        created_at=r["created_at"])


def _sample(r: dict[str, Any]) -> Sample:
    return Sample(
        id=r["id"], message_id=r["message_id"], conversation_id=r["conversation_id"],
        prompt_token_ids=_l(r["prompt_token_ids"], []), response_token_ids=_l(r["response_token_ids"], []),
        reward=r["reward"], source=r["source"], status=r["status"], hints=_l(r["hints"], []),
        votes=_l(r["votes"], []), failed_votes=r["failed_votes"] or 0, drop_reason=r["drop_reason"] or "",
        next_state=r["next_state"] or "", prompt_messages=_l(r["prompt_messages"], []), created_at=r["created_at"],
        judge_model=r["judge_model"] or "")


def _run(r: dict[str, Any]) -> TrainingRun:
    return TrainingRun(
        id=r["id"], status=r["status"], method=r["method"], started_at=r["started_at"],
        finished_at=r["finished_at"] or "", n_samples=r["n_samples"] or 0, settings=_l(r["settings"], {}),
        metrics=_l(r["metrics"], {}), gate=_l(r["gate"], {}), candidate_path=r["candidate_path"] or "",
        error=r["error"] or "", pid=r.get("pid"))


def _adapter(r: dict[str, Any]) -> AdapterVersion:
    return AdapterVersion(
        version=r["version"], path=r["path"], parent_version=r["parent_version"], run_id=r["run_id"],
        gguf_path=r["gguf_path"] or "", kind=r["kind"] or "adapter", metrics=_l(r["metrics"], {}),
        created_at=r["created_at"], promoted_at=r["promoted_at"], rolled_back_at=r["rolled_back_at"],
        trained_on_forgotten=bool(r["trained_on_forgotten"]))
