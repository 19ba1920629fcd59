"""The whole store as JSON lines, for backups and for moving to another machine.

One record per line, each a JSON object with a ``type``: the first line is a ``header`` (format
version, schema migrations, when), then ``conversation``, ``message``, ``feedback``, ``sample``,
``run`` and ``adapter`` records — in that order, so every record only refers to lines above it
(a message's parent has a smaller id than the message). Rows keep their ids: samples, runs and
``adapters.trained_on`` refer to messages by id, and those links must survive the move.
Token ids, sampling parameters and votes stay JSON values, so the file is readable with ``jq``.

Import is all or nothing. Every line is decoded and checked first (invalid UTF-8, a truncated
line, an unknown type or column is an error naming the line); then one transaction inserts the
rows. A row whose id is already in the store with the *same* content is skipped, which makes a
second import of the same file a no-op; the same id with different content is refused, naming
the line, because merging two histories that reuse ids would tie feedback to the wrong message.
Adapter records are metadata: the weights are files in ``adapters/``, copied separately.

The same rows also have a nested shape, `clawdesk logs export --json`: each conversation with its
messages (all branches) and their feedback, for tools that want one conversation per object.
Importing it renumbers the ids after the store's own (it is for adding conversations to a store
that has some) and goes through ``import_records``: one transaction, the same checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from ..errors import StoreError
from ..records import Feedback, TransferReport
from .base import StoreBase as Store
from .conversations import RECENT, _conversation, _message
from .migrations import MIGRATIONS, _now

FORMAT = "clawdesk-store"
VERSION = 1

# record type → (table, primary key); the export order, which is also a valid insert order
TABLES: dict[str, tuple[str, str]] = {
    "conversation": ("conversations", "id"),
    "message": ("messages", "id"),
    "feedback": ("feedback", "id"),
    # the preference memory: its tombstones and sources too, so an imported store never re-learns
    # a wish the user deleted
    "wish": ("wishes", "id"),
    "wish_source": ("wish_sources", "id"),
    "memory_note": ("memory_notes", "message_id"),
    "sample": ("samples", "id"),
    "run": ("training_runs", "id"),
    "adapter": ("adapters", "version"),
}
# columns stored as JSON text in SQLite, written as JSON values in the file
# what the nested import takes from a message / a feedback row (ids are renumbered, not taken)
MESSAGE_FIELDS = ("role", "content", "model", "adapter_version", "finish_reason", "prompt_tokens", "response_tokens",
                  "ttft_ms", "duration_ms", "truncated_tokens", "created_at", "prompt_token_ids", "response_token_ids")
FEEDBACK_FIELDS = ("kind", "reason", "comment", "correction", "created_at")
JSON_COLUMNS = {"prompt_token_ids", "response_token_ids", "sampling", "prompt_messages", "votes", "hints",
                "settings", "metrics", "gate", "trained_on", "wish_ids"}


def export_lines(store: Store) -> Iterator[str]:
    """Every record of the store, one JSON document per line (no trailing newline)."""
    for _, record in _records(store):
        yield json.dumps(record, ensure_ascii=False)


def write_export(store: Store, out: IO[str]) -> dict[str, int]:
    """Write the export to ``out``; returns the record count per type."""
    counts: dict[str, int] = {}
    for kind, record in _records(store):
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        if kind != "header":
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def _records(store: Store) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "header", {"type": "header", "format": FORMAT, "version": VERSION, "exported_at": _now(),
                     "migrations": [fn.__name__ for fn in MIGRATIONS]}
    for kind, (table, pk) in TABLES.items():
        for row in _table(store, table, f"[{pk}]"):
            yield kind, {"type": kind, **_to_file(row)}


def _table(store: Store, table: str, order: str) -> list[dict[str, Any]]:
    return store._rows(f"select * from [{table}] order by {order}")


def export_conversations(store: Store) -> list[dict[str, Any]]:
    """The nested shape: conversations newest first, each with its messages oldest first and
    each message with its feedback — plain JSON-able dicts."""
    feedback: dict[int, list[dict[str, Any]]] = {}
    for row in _table(store, "feedback", "id"):
        feedback.setdefault(row["message_id"], []).append(Feedback(**row).__dict__)
    messages: dict[int, list[dict[str, Any]]] = {}
    for row in _table(store, "messages", "id"):
        m = _message(row)
        messages.setdefault(m.conversation_id, []).append({**m.__dict__, "feedback": feedback.get(m.id, [])})
    return [{**c.__dict__, "messages": messages.get(c.id, [])}
            for c in map(_conversation, _table(store, "conversations", RECENT))]


def import_conversations(store: Store, data: list[dict[str, Any]], name: str = "the import") -> int:
    """Add the conversations of an ``export_conversations`` dump; returns how many."""
    with store.transaction():
        next_ids = {table: store.execute(f"select coalesce(max(id), 0) + 1 from {table}")[0][0]
                    for table in ("conversations", "messages", "feedback")}
        import_records(store, list(_renumbered(data, next_ids)), name=name, unit="record")
    return len(data)


def _renumbered(data: list[dict[str, Any]], next_ids: dict[str, int]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The dump as typed records with fresh ids (``next_ids``: the first free id per table)."""
    n = 0

    def record(kind: str, table: str, row: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        nonlocal n
        n += 1
        row[TABLES[kind][1]] = next_ids[table]
        next_ids[table] += 1
        return n, {"type": kind, **row}

    for conv in data:
        _, c = record("conversation", "conversations", {
            "name": conv.get("name") or "Imported", "system_prompt": conv.get("system_prompt", ""),
            "model": conv.get("model", ""), "exclude": int(bool(conv.get("exclude"))),
            "created_at": conv.get("created_at") or _now(), "updated_at": conv.get("updated_at") or _now()})
        yield n, c
        ids: dict[int, int] = {}
        for m in sorted(conv.get("messages", []), key=lambda m: m["id"]):
            if not isinstance(m.get("content"), str) or m.get("role") not in ("system", "user", "assistant", "tool"):
                raise StoreError(f"Message {m.get('id')} in the import has no valid role/content.")
            row = {k: m.get(k) for k in MESSAGE_FIELDS}
            row.update(conversation_id=c["id"], parent_id=ids.get(m.get("parent_id")),
                       sampling=m.get("sampling") or {}, exclude=int(bool(m.get("exclude"))))
            yield (msg := record("message", "messages", row))
            ids[m["id"]] = msg[1]["id"]
            for f in m.get("feedback", []):
                yield record("feedback", "feedback", {k: f.get(k, "") for k in FEEDBACK_FIELDS}
                             | {"message_id": ids[m["id"]]})


def read_records(lines: Iterable[bytes], name: str = "the import file") -> list[tuple[int, dict[str, Any]]]:
    """Decode and check every line before anything is written; (line number, record) pairs."""
    records: list[tuple[int, dict[str, Any]]] = []
    header = None
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise StoreError(f"{name}, line {n}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column "
                             f"{e.start + 1}); nothing was imported.") from None
        try:
            record = json.loads(text)
        except json.JSONDecodeError as e:
            hint = " — the file looks truncated" if not raw.endswith(b"\n") else ""
            raise StoreError(f"{name}, line {n}: not valid JSON ({e.msg} at column {e.colno}){hint}; "
                             f"nothing was imported.") from None
        if not isinstance(record, dict) or "type" not in record:
            raise StoreError(f"{name}, line {n}: a record must be a JSON object with a \"type\"; nothing was imported.")
        if header is None:
            if record.get("type") != "header" or record.get("format") != FORMAT:
                raise StoreError(f"{name}, line {n}: not a ClawDesk export (no header line); it must come from "
                                 f"`clawdesk export`. Nothing was imported.")
            if record.get("version", 0) > VERSION:
                raise StoreError(f"{name} was written by a newer ClawDesk (format {record.get('version')}); "
                                 f"upgrade ClawDesk to import it.")
            header = record
            continue
        if record["type"] not in TABLES:
            raise StoreError(f"{name}, line {n}: unknown record type {record['type']!r}; nothing was imported.")
        records.append((n, record))
    if header is None:
        raise StoreError(f"{name} is empty; nothing was imported.")
    return records


def import_records(store: Store, records: list[tuple[int, dict[str, Any]]],
                   name: str = "the import file", unit: str = "line") -> TransferReport:
    """Insert checked records in one transaction (see the module docstring for duplicates).
    Errors name the record by ``unit`` and number (a line of the file, by default)."""
    report = TransferReport(lines=len(records) + 1)
    columns = {kind: set(store.db[table].columns_dict) for kind, (table, _) in TABLES.items()}
    with store.transaction():
        for n, record in records:
            kind = record["type"]
            table, pk = TABLES[kind]
            row = {k: v for k, v in record.items() if k != "type"}
            unknown = set(row) - columns[kind]
            if unknown:
                raise StoreError(f"{name}, {unit} {n}: unknown {kind} field(s) {', '.join(sorted(unknown))}; "
                                 f"nothing was imported.")
            if row.get(pk) is None:
                raise StoreError(f"{name}, {unit} {n}: the {kind} has no {pk}; nothing was imported.")
            row = _to_db(row)
            existing = list(store.db.query(f"select * from [{table}] where [{pk}] = ?", [row[pk]]))
            if existing:
                if _same(existing[0], row):
                    report.skipped[kind] = report.skipped.get(kind, 0) + 1
                    continue
                raise StoreError(f"{name}, {unit} {n}: {kind} {row[pk]} already exists in this store with different "
                                 f"content. Import into an empty store (e.g. CLAWDESK_HOME=/new/dir) — nothing was "
                                 f"imported.")
            try:
                # plain SQL: sqlite-utils' insert() commits on its own, which would end the transaction
                names = ", ".join(f"[{k}]" for k in row)
                store.db.execute(f"insert into [{table}] ({names}) values ({', '.join('?' for _ in row)})",
                                 list(row.values()))
            except Exception as e:  # a constraint (missing parent, NOT NULL) names the line, then rolls back
                raise StoreError(f"{name}, {unit} {n}: the {kind} cannot be stored ({e}); nothing was imported.") from None
            report.added[kind] = report.added.get(kind, 0) + 1
    return report


def _to_file(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if key in JSON_COLUMNS and isinstance(value, str) and value:
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass  # keep a malformed cell as text rather than losing it
        out[key] = value
    return out


def _to_db(row: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v) if k in JSON_COLUMNS and v is not None and not isinstance(v, str) else v
            for k, v in row.items()}


def _same(existing: dict[str, Any], row: dict[str, Any]) -> bool:
    """Equal as data: JSON cells compare by value (whitespace differences don't count)."""
    a, b = _to_file(existing), _to_file(row)
    return all(a.get(k) == v for k, v in b.items())
