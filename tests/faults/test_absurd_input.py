"""Absurd input: a 1 MB paste, binary bytes and NUL characters, undecodable command-line bytes,
invalid UTF-8 and truncated lines in an imported file, a prompt longer than the context window.
Each is handled — stored as typed, cut to fit with a visible note, or refused naming the line —
and none crashes."""

from __future__ import annotations

import json
import os

import pytest
from fault_helpers import run_cli

from clawdesk import locations
from clawdesk.errors import StoreError
from clawdesk.store import open_store, transfer

pytestmark = pytest.mark.faults

MEGABYTE = ("All work and no play makes Jack a dull boy. " * 25000)[:1_000_000]


def test_megabyte_paste_into_chatservice_is_cut_to_fit(chat):
    conv = chat.new_conversation()
    turn = chat.send(conv.id, MEGABYTE, max_tokens=4)
    assert chat.store.get_message(turn.user.id).content == MEGABYTE  # logged exactly as pasted
    assert turn.generation.truncated_tokens > 200_000  # the head of the paste was left out...
    assert len(turn.assistant.prompt_token_ids) <= chat.engine.n_ctx  # ...so the prompt fits
    assert chat.store.search("dull")  # and it is searchable


def test_nul_and_control_characters_round_trip(chat):
    conv = chat.new_conversation()
    text = "before\x00after \x01\x02\x1b[31m red \x7f end"
    turn = chat.send(conv.id, text, max_tokens=4)
    assert chat.store.get_message(turn.user.id).content == text
    assert turn.assistant.response_token_ids


def test_megabyte_of_binary_on_stdin_and_a_long_prompt_note(clawdesk_home, model_path):
    junk = os.urandom(200_000) + b"\x00" * 1000 + MEGABYTE.encode()[:800_000]
    proc = run_cli("ask", "--max-tokens", "4", "--temperature", "0", input=junk, CLAWDESK_N_CTX="512")
    err = proc.stderr.decode()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "longer than the context window" in err and "were left out" in err
    store = open_store(locations.db_path())
    try:
        user = store.messages(store.last_conversation_id())[0]
        assert len(user.content) > 900_000  # kept whole; undecodable bytes became U+FFFD
    finally:
        store.close()


def test_undecodable_command_line_bytes(clawdesk_home, model_path):
    proc = run_cli(b"ask".decode(), "--max-tokens", "2", os.fsdecode(b"caf\xe9 \xff\xfe?"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr.decode(), proc.stderr.decode()


def export_file(store, tmp_path):
    conv = store.new_conversation(name="kept")
    store.add_message(conv.id, "user", "first line of the export")
    path = tmp_path / "backup.jsonl"
    path.write_text("\n".join(transfer.export_lines(store)) + "\n", encoding="utf-8")
    return path


def test_invalid_utf8_and_truncated_lines_in_an_import(store, tmp_path):
    path = export_file(store, tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    target = open_store(tmp_path / "other.db")
    try:
        bad = tmp_path / "bad.jsonl"
        bad.write_bytes(lines[0] + lines[1] + b'{"type": "message", "content": "caf\xe9"}\n' + lines[2])
        with pytest.raises(StoreError, match=r"line 3: not valid UTF-8 \(byte 0xe9"):
            transfer.import_records(target, transfer.read_records(bad.open("rb"), str(bad)))
        cut = tmp_path / "cut.jsonl"
        cut.write_bytes(lines[0] + lines[1] + lines[2][: len(lines[2]) // 2])
        with pytest.raises(StoreError, match="line 3: not valid JSON .* truncated"):
            transfer.read_records(cut.open("rb"), str(cut))
        assert target.counts()["conversations"] == 0

        proc = run_cli("import", str(bad))  # the same through the CLI: one line, nothing imported
        err = proc.stderr.decode()
        assert proc.returncode == 1 and "line 3" in err and "Traceback" not in err
        assert "nothing was imported" in err
    finally:
        target.close()


def test_a_failing_record_rolls_back_the_whole_import(store, tmp_path):
    path = export_file(store, tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()
    orphan = json.dumps({"type": "feedback", "id": 1, "message_id": 999, "kind": "thumbs_up", "created_at": "x"})
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines + [orphan]) + "\n", encoding="utf-8")
    target = open_store(tmp_path / "other.db")
    try:
        with pytest.raises(StoreError, match=f"line {len(lines) + 1}: the feedback cannot be stored"):
            transfer.import_records(target, transfer.read_records(broken.open("rb"), str(broken)))
        assert target.counts()["conversations"] == 0 and target.counts()["messages"] == 0
    finally:
        target.close()
