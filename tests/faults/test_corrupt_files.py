"""Damaged files on disk: a database with destroyed pages or header, a truncated adapter, a
truncated model. Each gives one clear line (no traceback), and what can be recovered is:
`clawdesk doctor --repair` rebuilds the database from its readable rows (keeping the original),
and `clawdesk ask` falls back from a broken served version to the last one that loads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fault_helpers import install_version, run_cli

from clawdesk import locations
from clawdesk.store import open_store

pytestmark = pytest.mark.faults


def fill(store, conversations: int = 30, turns: int = 6) -> None:
    for c in range(conversations):
        conv = store.new_conversation(name=f"conversation {c}")
        parent = None
        for t in range(turns):
            user = store.add_message(conv.id, "user", f"question {c}.{t} " + "words " * 40, parent_id=parent)
            parent = store.add_message(conv.id, "assistant", f"answer {c}.{t} " + "more words " * 40,
                                       parent_id=user.id).id
            store.add_feedback(parent, "thumbs_up")
    store.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def smash(path: Path, pages: list[int], page_size: int = 4096) -> None:
    data = bytearray(path.read_bytes())
    for page in pages:
        data[page * page_size:(page + 1) * page_size] = os.urandom(page_size)
    path.write_bytes(bytes(data))


def one_clear_line(proc) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and err.startswith("Error:"), err
    return err


def test_damaged_pages_clear_error_then_repair(store):
    fill(store)
    before = store.counts()
    store.close()
    db = locations.db_path()
    pages = db.stat().st_size // 4096
    smash(db, [pages // 3, pages // 2, 2 * pages // 3])
    original_bytes = db.read_bytes()

    listing = run_cli("logs", "show", "15")
    if listing.returncode:  # the damage may be on pages this query never reads
        assert "doctor --repair" in one_clear_line(listing)
    doctor = run_cli("doctor")
    assert doctor.returncode == 1 and "FAIL" in doctor.stdout.decode() and "Traceback" not in doctor.stderr.decode()

    repaired = run_cli("doctor", "--repair")
    out = repaired.stdout.decode()
    assert "Traceback" not in repaired.stderr.decode(), repaired.stderr.decode()
    assert "recovered" in out and "kept as" in out
    kept = [p for p in db.parent.iterdir() if p.name.startswith("clawdesk.db.damaged-") and p.name[-4:] not in ("-wal", "-shm")]
    assert len(kept) == 1 and kept[0].read_bytes() == original_bytes  # the original is kept, byte for byte
    assert "database: " in out and "integrity ok" in out

    fixed = open_store(db)
    try:
        after = fixed.counts()
        assert fixed.integrity_check() == "ok"
        # three destroyed pages hold at most a few dozen rows of each table; the rest came back
        assert before["messages"] - 60 <= after["messages"] < before["messages"] + 1
        assert after["messages"] > 0.6 * before["messages"] and after["feedback"] > 0.5 * before["feedback"]
        assert all(fixed.get_message(f.message_id) for m in fixed.messages(1) for f in fixed.feedback_for(m.id))
        assert len(fixed.search("question")) > 0  # the full-text index was rebuilt
    finally:
        fixed.close()
    assert run_cli("logs", "list").returncode == 0


def test_destroyed_header_is_a_clear_error_and_repair_keeps_the_original(store):
    fill(store, conversations=3)
    store.close()
    db = locations.db_path()
    smash(db, [0])
    proc = run_cli("logs", "list")
    assert "damaged" in one_clear_line(proc) and "doctor --repair" in proc.stderr.decode()
    repaired = run_cli("doctor", "--repair")
    assert "Traceback" not in repaired.stderr.decode()
    assert "kept as" in repaired.stdout.decode()
    assert run_cli("logs", "list").returncode == 0  # usable again (empty: nothing was readable)


def test_truncated_served_adapter_falls_back_through_ask(store, loras):
    install_version(store, loras.a, 1)
    broken = install_version(store, loras.b, 2, parent=1)
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    store.close()

    proc = run_cli("ask", "--max-tokens", "4", "--temperature", "0", "Hello")
    err = proc.stderr.decode()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "Adapter version 2 could not be loaded" in err and "serving version 1" in err
    s = open_store(locations.db_path())
    try:
        reply = [m for m in s.messages(s.last_conversation_id()) if m.role == "assistant"][0]
        assert reply.adapter_version == 1  # the turn was answered, and logged with what served it
        assert s.served_version() == 2  # the fallback does not silently change what is promoted
    finally:
        s.close()


def test_truncated_and_garbage_model_files_are_one_line(tmp_path, model_path):
    truncated = tmp_path / "truncated.gguf"
    with open(model_path, "rb") as src, open(truncated, "wb") as dst:
        dst.write(src.read(os.path.getsize(model_path) // 3))
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF" + os.urandom(4096))
    for path in (truncated, garbage):
        err = one_clear_line(run_cli("ask", "-m", str(path), "--max-tokens", "2", "Hi"))
        assert str(path) in err
    shutil.rmtree(tmp_path, ignore_errors=True)
