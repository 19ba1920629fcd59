"""The SQLite store: schema from scratch, migrations, the message tree, deletion, search, modes."""

from __future__ import annotations

import json
import os
import stat
import sqlite3

import pytest

from clawdesk import locations
from clawdesk.errors import StoreError
from clawdesk.records import Sample
from clawdesk.store import open_store
from clawdesk.store.migrations import MIGRATIONS, migrate

EXPECTED_COLUMNS = {
    "conversations": ["id", "name", "system_prompt", "model", "exclude", "created_at", "updated_at"],
    "messages": ["id", "conversation_id", "parent_id", "role", "content", "prompt_token_ids",
                 "response_token_ids", "model", "adapter_version", "sampling", "finish_reason", "prompt_tokens",
                 "response_tokens", "ttft_ms", "duration_ms", "truncated_tokens", "exclude", "created_at"],
    "feedback": ["id", "message_id", "kind", "reason", "comment", "correction", "created_at"],
    "samples": ["id", "message_id", "conversation_id", "source", "prompt_token_ids", "response_token_ids",
                "prompt_messages", "next_state", "reward", "votes", "failed_votes", "hints", "status",
                "drop_reason", "judge_model", "run_id", "created_at"],
    "training_runs": ["id", "status", "method", "started_at", "finished_at", "n_samples", "settings", "metrics",
                      "gate", "candidate_path", "error", "pid"],
    "adapters": ["version", "parent_version", "run_id", "path", "gguf_path", "kind", "metrics", "trained_on",
                 "trained_on_forgotten", "created_at", "promoted_at", "rolled_back_at"],
    "models": ["name", "path", "sha256", "source", "license", "template_notes", "hf_checkpoint", "added_at"],
    "state": ["key", "value"],
    "pipeline_log": ["id", "at", "trigger", "decision", "detail", "run_id"],
}


def test_schema_from_scratch_has_exact_columns(store):
    for table, columns in EXPECTED_COLUMNS.items():
        actual = [c.name for c in store.db[table].columns]
        assert actual[: len(columns)] == columns, table
    # later migrations may only add columns at the end; none may vanish or move
    assert "messages_fts" in store.db.table_names()
    applied = [r["name"] for r in store.db["_migrations"].rows]
    assert applied == [fn.__name__ for fn in MIGRATIONS]
    assert applied[0] == "m001_initial"


def test_migrate_is_idempotent_and_upgrades_an_old_schema(tmp_path):
    import sqlite_utils

    db = sqlite_utils.Database(tmp_path / "old.db")
    MIGRATIONS[0](db)  # a database that only ever saw m001
    db["_migrations"].insert({"name": "m001_initial", "applied_at": "2026-01-01"}, pk="name")
    applied = migrate(db)
    assert applied == [fn.__name__ for fn in MIGRATIONS[1:]]
    assert migrate(db) == []


def test_db_file_is_private(store):
    mode = stat.S_IMODE(os.stat(store.path).st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700


def test_wal_mode_and_busy_timeout(store):
    assert store.execute("pragma journal_mode")[0][0] == "wal"
    assert store.execute("pragma busy_timeout")[0][0] == 10000


def test_message_tree_siblings_and_path(store):
    conv = store.new_conversation("t")
    u = store.add_message(conv.id, "user", "hello")
    a1 = store.add_message(conv.id, "assistant", "first", parent_id=u.id, response_token_ids=[1, 2])
    a2 = store.add_message(conv.id, "assistant", "second", parent_id=u.id)
    u2 = store.add_message(conv.id, "user", "more", parent_id=a2.id)
    assert [m.id for m in store.siblings(a1.id)] == [a1.id, a2.id]
    assert [m.content for m in store.path_to(u2.id)] == ["hello", "second", "more"]
    assert store.get_message(a1.id).response_token_ids == [1, 2]
    assert store.latest_leaf(conv.id).id == u2.id


def test_delete_conversation_really_deletes(store):
    conv = store.new_conversation("secret")
    u = store.add_message(conv.id, "user", "my bank pin is 1234")
    a = store.add_message(conv.id, "assistant", "noted", parent_id=u.id)
    store.add_feedback(a.id, "thumbs_up")
    store.upsert_sample(Sample(0, a.id, conv.id, [1], [2], 1.0, "explicit", "ready"))
    other = store.new_conversation("other")
    store.add_message(other.id, "user", "keep me")
    store.delete_conversation(conv.id)
    counts = store.counts()
    assert counts["messages"] == 1 and counts["feedback"] == 0 and counts["samples"] == 0
    assert store.search("bank") == []
    with pytest.raises(StoreError):
        store.get_conversation(conv.id)


def test_fts_search_and_conversation_filter(store):
    c1 = store.new_conversation("cooking")
    store.add_message(c1.id, "user", "How do I bake sourdough bread?")
    c2 = store.new_conversation("code")
    store.add_message(c2.id, "user", "Explain Python decorators")
    assert [m.content for m in store.search("sourdough")] == ["How do I bake sourdough bread?"]
    assert [c.id for c in store.list_conversations(query="decorators")] == [c2.id]
    # FTS syntax in user input is quoted, not interpreted
    assert store.search("AND OR NOT (") == []
    assert [m.content for m in store.search('bread"')] == ["How do I bake sourdough bread?"]


def test_samples_upsert_is_idempotent(store):
    conv = store.new_conversation("s")
    u = store.add_message(conv.id, "user", "q")
    a = store.add_message(conv.id, "assistant", "r", parent_id=u.id)
    s1 = store.upsert_sample(Sample(0, a.id, conv.id, [1, 2], [3], -1.0, "judge", "ready", hints=["be brief"]))
    s2 = store.upsert_sample(Sample(0, a.id, conv.id, [1, 2], [3], 1.0, "judge", "ready"))
    assert s1.id == s2.id and store.get_sample(s1.id).reward == 1.0
    assert store.counts()["samples"] == 1


def test_corrupt_database_gives_actionable_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a sqlite database" * 200)
    with pytest.raises(StoreError, match="doctor --repair"):
        open_store(bad)


def test_backup_is_a_consistent_private_copy(store, tmp_path):
    conv = store.new_conversation("b")
    store.add_message(conv.id, "user", "backup me")
    dest = tmp_path / "backup.db"
    store.backup(dest)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    rows = sqlite3.connect(dest).execute("select content from messages").fetchall()
    assert rows == [("backup me",)]


def test_export_import_round_trip(store, tmp_path):
    conv = store.new_conversation("round trip", system_prompt="be terse")
    u = store.add_message(conv.id, "user", "hi")
    a = store.add_message(conv.id, "assistant", "hello", parent_id=u.id, prompt_token_ids=[1, 2, 3],
                          response_token_ids=[4, 5], sampling={"temperature": 0.7})
    store.add_message(conv.id, "assistant", "hey", parent_id=u.id)
    store.add_feedback(a.id, "correction", correction="Hello!")
    dump = json.loads(json.dumps(store.export_conversations()))
    other = open_store(tmp_path / "other.db")
    assert other.import_conversations(dump) == 1
    again = other.export_conversations()

    def strip(convs):
        out = []
        for c in convs:
            msgs = [{k: v for k, v in m.items() if k not in ("id", "conversation_id", "parent_id")}
                    | {"feedback": [{k: v for k, v in f.items() if k not in ("id", "message_id")}
                                    for f in m["feedback"]]} for m in c["messages"]]
            out.append({k: v for k, v in c.items() if k not in ("id", "messages", "updated_at")} | {"messages": msgs})
        return out

    assert strip(again) == strip(dump)
    tree = other.messages(again[0]["id"])
    assert tree[1].parent_id == tree[0].id and tree[2].parent_id == tree[0].id
