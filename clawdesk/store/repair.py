"""Salvage what SQLite can still read from a damaged database (``clawdesk doctor --repair``).

Python's sqlite3 has no ``.recover``, so this is the pure-Python equivalent of what a careful
person would do by hand:

1. The damaged file (with its -wal and -shm) is copied aside, ``clawdesk.db.damaged-<time>``,
   and kept: nothing is ever thrown away, a later tool may get more out of it.
2. Each table of the schema is read with a full scan; when the scan hits a damaged page, it
   falls back to reading row by row (``where rowid = ?`` for every rowid up to the largest one
   SQLite can still find), so one bad page costs only the rows on it.
3. A fresh database is built with the current migrations and the readable rows are inserted
   with their ids (feedback, samples and adapters refer to messages by id). Rows whose parent row
   was lost are handled the least lossy way: messages of a lost conversation go into a
   "Recovered conversation" placeholder, a reply whose parent message was lost becomes a root;
   feedback and samples of a lost message cannot be placed and are counted as lost.
4. The new file replaces the old one with one ``rename`` (the copy aside is already safe).

If the header itself is destroyed SQLite reads nothing; the repaired database is then empty and
the report says so (the copy aside is still there).
"""

from __future__ import annotations

import datetime
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from ..records import RepairReport
from . import open_store

# Insert order respects the foreign keys: parents before children.
# Parents before children. Tables added by later migrations follow in creation order (see _tables).
TABLES = ["conversations", "messages", "feedback", "samples", "training_runs", "adapters", "models", "state",
          "pipeline_log"]
DERIVED = {"signals_changed"}  # the judge's queue: the rebuild's own inserts refill it through triggers
MAX_PROBE = 5_000_000  # rowid probing beyond this is not worth the wait


def is_damaged(path: Path) -> str | None:
    """None when SQLite finds the file healthy, else what is wrong (its integrity_check or error)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = conn.execute("pragma integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        return str(e)
    text = "; ".join(r[0] for r in result)
    return None if text == "ok" else text


def repair(path: Path | str) -> RepairReport:
    """Rebuild the database at ``path`` from its readable rows (see the module docstring)."""
    path = Path(path)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    kept = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            shutil.copy2(src, str(kept) + suffix)
            os.chmod(str(kept) + suffix, 0o600)
    report = RepairReport(original=str(kept))

    # Read from the copy, never the original: opening the original could replay its WAL into it.
    fresh = path.with_name(f".{path.name}.repair-{os.getpid()}")
    for suffix in ("", "-wal", "-shm"):
        Path(str(fresh) + suffix).unlink(missing_ok=True)
    store = open_store(fresh)
    try:
        tables = _tables(store)
        salvaged = {table: _read_table(kept, table, report) for table in tables}
        _rebuild(store, tables, salvaged, report)
        store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        report.integrity = store.integrity_check()
    finally:
        store.close()
    for suffix in ("-wal", "-shm"):  # they belong to the damaged file; the copy aside has them
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(fresh, path)
    Path(str(fresh) + "-wal").unlink(missing_ok=True)
    Path(str(fresh) + "-shm").unlink(missing_ok=True)
    return report


def _read_table(db_file: Path, table: str, report: RepairReport) -> list[dict[str, Any]]:
    """Every readable row of ``table``: a full scan, else row by row around the damage."""
    try:
        conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    except sqlite3.DatabaseError:
        report.unreadable_tables.append(table)
        return []
    conn.row_factory = sqlite3.Row
    try:
        try:
            return [dict(r) for r in conn.execute(f"select rowid as _rowid, * from [{table}] order by rowid")]
        except sqlite3.DatabaseError:
            pass
        try:
            top = conn.execute(f"select max(rowid) from [{table}]").fetchone()[0] or 0
        except sqlite3.DatabaseError:
            report.unreadable_tables.append(table)
            return []
        rows, lost = [], 0
        for rowid in range(1, min(top, MAX_PROBE) + 1):
            try:
                row = conn.execute(f"select rowid as _rowid, * from [{table}] where rowid = ?", [rowid]).fetchone()
            except sqlite3.DatabaseError:
                lost += 1
                continue
            if row is not None:
                rows.append(dict(row))
        if lost:
            report.lost[table] = report.lost.get(table, 0) + lost
        return rows
    finally:
        conn.close()


def _tables(store) -> list[str]:
    """The tables that hold the user's data: ``TABLES``, then every table a later migration
    added (the server's sessions, the preference memory, ...) in creation order — which is
    parents first, since a migration can only reference tables that exist. Left out: SQLite's
    and the migration log's own, full-text indexes (rebuilt by triggers) and ``DERIVED``."""
    rows = store.execute("select name, sql from sqlite_master where type = 'table' order by rowid")
    virtual = [name for name, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL TABLE")]
    extra = [name for name, _ in rows
             if name not in TABLES and name not in DERIVED and not name.startswith(("_", "sqlite_"))
             and not any(name == v or name.startswith(v + "_") for v in virtual)]
    return TABLES + extra


def _rebuild(store, tables: list[str], salvaged: dict[str, list[dict[str, Any]]], report: RepairReport) -> None:
    db = store.db
    with store.transaction():
        for table in tables:
            columns = set(db[table].columns_dict)
            rows = [{k: v for k, v in r.items() if k in columns} for r in salvaged[table]]
            if table == "messages":
                rows = _place_messages(db, rows)
            elif table in ("feedback", "samples"):
                known = {r["id"] for r in salvaged["messages"]}
                orphans = [r for r in rows if r.get("message_id") not in known]
                if orphans:
                    report.lost[table] = report.lost.get(table, 0) + len(orphans)
                rows = [r for r in rows if r.get("message_id") in known]
            elif table == "adapters":
                runs = {r["id"] for r in salvaged["training_runs"]}
                for r in rows:
                    if r.get("run_id") not in runs:
                        r["run_id"] = None
            done = 0
            for r in rows:
                try:
                    db[table].insert(r)
                    done += 1
                except sqlite3.DatabaseError:  # e.g. a NOT NULL cell that was destroyed
                    report.lost[table] = report.lost.get(table, 0) + 1
            report.recovered[table] = done


def _place_messages(db, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep every readable message: give orphans a placeholder conversation, lost parents → root."""
    conversations = {r[0] for r in db.execute("select id from conversations").fetchall()}
    ids = {r["id"] for r in rows}
    placeholder: dict[int, int] = {}
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    for r in rows:
        cid = r.get("conversation_id")
        if cid not in conversations:
            if cid not in placeholder:
                placeholder[cid] = db["conversations"].insert(
                    {"id": cid if isinstance(cid, int) else None, "name": f"Recovered conversation {cid}",
                     "created_at": r.get("created_at") or now, "updated_at": now}).last_pk
                conversations.add(placeholder[cid])
            r["conversation_id"] = placeholder[cid]
        if r.get("parent_id") is not None and r["parent_id"] not in ids:
            r["parent_id"] = None
    # a parent must be inserted before its children: ids grow with time, so sort by id
    return sorted(rows, key=lambda r: r["id"])
