"""Privacy promises, tested for real: nothing tries the network during a chat turn, a judge pass
or a training pass; `clawdesk forget` leaves no trace of the text in the database files (WAL
included) and flags the adapters that learned from it; "don't learn" holds at once; the whole
store moves through `clawdesk export|import`; everything ClawDesk writes is private (0600/0700)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from train_samples import add_sample, chat, one_torch_thread, tiny  # noqa: F401 (fixtures)

from clawdesk import locations, privacy
from clawdesk.cli import cli
from clawdesk.engine import Engine
from clawdesk.judge.pipeline import judge_pending
from clawdesk.records import Sample
from clawdesk.store import open_store, transfer
from clawdesk.train import train_pass

ROOT = Path(__file__).resolve().parents[1]
SECRET = "zanzibar quokka plumtree"


@pytest.fixture(scope="module")
def engine(model_path: str):
    e = Engine(model_path, n_ctx=2048, n_threads=1)  # one thread: see tests/tui/conftest.py
    yield e
    e.close()


@pytest.fixture
def no_network(monkeypatch):
    """Every Internet connection attempt is recorded and refused (Unix sockets stay allowed)."""
    attempts: list[str] = []

    def refuse(what):
        def blocked(*args, **kwargs):
            attempts.append(f"{what}{args[1:] if what.startswith('socket.') else args}")
            raise OSError("network access blocked by the test")
        return blocked

    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            return refuse("socket.connect")(self, address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, a: connect(self, a))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # the code itself must stay local
        monkeypatch.delenv(key, raising=False)
    return attempts


@pytest.mark.slow
def test_chat_judge_and_train_with_the_network_blocked(no_network, chat, settings):
    with pytest.raises(OSError):  # the guard works
        socket.create_connection(("example.com", 80))
    no_network.clear()
    settings = tiny(settings, n_threads=1, judge_votes=1, judge_max_tokens=24, temperature=0.0, max_tokens=8)
    chat.settings = settings
    conv = chat.new_conversation()
    turn = chat.send(conv.id, "What is the capital of France?")
    chat.send(conv.id, "No, that's wrong. Answer in one word.")  # a next state for the judge to read
    report = judge_pending(chat.store, settings)
    assert report.examined >= 1 and report.votes >= 1  # the judge model really ran
    assert turn.assistant.id in {s.message_id for s in chat.store.samples()}
    add_sample(chat, "Say hello.", reward=1.0, seed=1, max_tokens=6)
    result = train_pass(chat.store, settings)
    assert result.steps and Path(result.candidate_path).is_dir()
    assert no_network == []  # not one attempt, even a caught one


def forget_world(store):
    """A kept conversation, a secret one (feedback, a sample), and adapter versions: v1 clean,
    v2 trained on the secret turn, v3 continued from v2 on kept turns."""
    kept = store.new_conversation(name="kept")
    k_user = store.add_message(kept.id, "user", "an ordinary question")
    k_reply = store.add_message(kept.id, "assistant", "an ordinary answer", parent_id=k_user.id)
    secret = store.new_conversation(name="private " + SECRET)
    s_user = store.add_message(secret.id, "user", f"my password hint is {SECRET}")
    s_reply = store.add_message(secret.id, "assistant", f"noted: {SECRET}", parent_id=s_user.id,
                                prompt_token_ids=[1], response_token_ids=[2])
    store.add_feedback(s_reply.id, "correction", correction=f"say {SECRET} back")
    runs = [store.start_run("combined", {}, 1).id for _ in range(3)]
    for r in runs:
        store.update_run(r, status="promoted")
    samples = {}
    for msg in (k_reply, s_reply):
        samples[msg.id] = store.upsert_sample(Sample(
            id=0, message_id=msg.id, conversation_id=msg.conversation_id, prompt_token_ids=[1],
            response_token_ids=[2], reward=1.0, source="explicit", status="ready",
            prompt_messages=[{"role": "user", "content": msg.content}])).id
    store.set_sample_status([samples[k_reply.id]], "used", run_id=runs[2])
    store.record_promotion(1, "/v1/peft", "/v1/adapter.gguf", "adapter", None, runs[0], {}, [k_reply.id])
    store.record_promotion(2, "/v2/peft", "/v2/adapter.gguf", "adapter", 1, runs[1], {}, [s_reply.id])
    store.record_promotion(3, "/v3/peft", "/v3/adapter.gguf", "adapter", 2, runs[2], {}, [k_reply.id])
    store.execute("PRAGMA wal_checkpoint(PASSIVE)")
    return kept, secret


def db_bytes() -> bytes:
    db = locations.db_path()
    return b"".join(Path(str(db) + s).read_bytes() for s in ("", "-wal", "-shm") if Path(str(db) + s).exists())


def test_forget_leaves_no_trace_and_flags_adapters(store):
    kept, secret = forget_world(store)
    assert b"quokka" in db_bytes()

    result = CliRunner().invoke(cli, ["forget", str(secret.id), "--yes"])
    assert result.exit_code == 0, result.output
    assert "Forgot 1 conversations: 2 messages, 1 feedback, 1 samples" in result.output
    assert "version(s) 2, 3 learned from forgotten turns" in result.output
    assert "clawdesk forget --rollback" in result.output and "clawdesk train --now" in result.output

    data = db_bytes()
    for word in (b"zanzibar", b"quokka", b"plumtree", b"plumtre", b"password"):
        assert word not in data, word  # not in the file, the WAL or the full-text index
    assert [c.id for c in store.list_conversations()] == [kept.id]
    assert {a.version: a.trained_on_forgotten for a in store.adapters()} == {1: False, 2: True, 3: True}
    listing = CliRunner().invoke(cli, ["adapters", "show", "3"])
    assert "since deleted" in listing.output

    rolled = CliRunner().invoke(cli, ["forget", "--rollback"])
    assert rolled.exit_code == 0 and "Now serving version 1; 1 samples re-queued" in rolled.output
    assert store.served_version() == 1
    assert [s.status for s in store.samples()] == ["ready"]  # the kept turn will be learned again


def test_forget_all(store):
    forget_world(store)
    result = CliRunner().invoke(cli, ["forget", "--all", "--yes"])
    assert result.exit_code == 0, result.output
    counts = store.counts()
    assert counts["conversations"] == counts["messages"] == counts["feedback"] == counts["samples"] == 0
    assert b"quokka" not in db_bytes() and b"ordinary" not in db_bytes()
    assert privacy.served_taint(store) == (True, None)  # v3 learned from forgotten turns; base is clean


def test_dont_learn_per_conversation_and_per_message_holds_at_once(store, settings):
    def turn(name):
        conv = store.new_conversation(name=name)
        user = store.add_message(conv.id, "user", "question")
        reply = store.add_message(conv.id, "assistant", "answer", parent_id=user.id, prompt_token_ids=[1],
                                  response_token_ids=[2])
        store.add_feedback(reply.id, "thumbs_up")
        store.upsert_sample(Sample(id=0, message_id=reply.id, conversation_id=conv.id, prompt_token_ids=[1],
                                   response_token_ids=[2], reward=1.0, source="explicit", status="ready"))
        return conv, reply

    (c1, r1), (c2, r2), (c3, r3) = turn("a"), turn("b"), turn("c")
    assert CliRunner().invoke(cli, ["logs", "exclude", str(c1.id)]).exit_code == 0
    store.add_feedback(r2.id, "exclude")  # what the TUI's x key writes
    assert {s.message_id for s in store.samples()} == {r3.id}  # `train --now` can no longer see them
    dry = judge_pending(store, settings, dry_run=True)
    assert {s.message_id for s in dry.samples} == {r3.id}
    assert store.get_conversation(c1.id).exclude and CliRunner().invoke(cli, ["logs", "include", str(c1.id)]).exit_code == 0
    assert r1.id in {s.message_id for s in judge_pending(store, settings, dry_run=True).samples}


def test_export_import_moves_the_whole_store(store, tmp_path, monkeypatch):
    kept, secret = forget_world(store)
    out = tmp_path / "all.jsonl"
    result = CliRunner().invoke(cli, ["export", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    first = out.read_text(encoding="utf-8").splitlines()
    kinds = [line.split('"', 4)[3] for line in first]
    assert kinds[0] == "header" and set(kinds[1:]) == {"conversation", "message", "feedback", "sample", "run", "adapter"}

    monkeypatch.setenv("CLAWDESK_HOME", str(tmp_path / "new-machine"))
    result = CliRunner().invoke(cli, ["import", str(out)])
    assert result.exit_code == 0, result.output
    moved = open_store(locations.db_path())
    try:
        again = list(transfer.export_lines(moved))
        assert again[1:] == first[1:]  # identical, ids and token ids included
        assert moved.get_adapter(2).path == "/v2/peft"
        second = CliRunner().invoke(cli, ["import", str(out)])
        assert second.exit_code == 0 and "Imported nothing new" in second.output
        moved.update_conversation(kept.id, name="renamed here")
        clash = CliRunner().invoke(cli, ["import", str(out)])
        assert clash.exit_code == 1 and "already exists in this store with different content" in clash.output
        assert moved.counts()["messages"] == 4
    finally:
        moved.close()


def test_everything_written_is_private(clawdesk_home, tmp_path, model_path):
    env = {**os.environ, "CLAWDESK_N_THREADS": "1"}
    run = lambda *a: subprocess.run([sys.executable, "-c", "from clawdesk.cli import main; main()", *a],  # noqa: E731
                                    cwd=ROOT, env=env, capture_output=True, timeout=180)
    assert run("ask", "--max-tokens", "2", "Hi").returncode == 0
    assert run("export", "-o", str(clawdesk_home / "all.jsonl")).returncode == 0
    assert run("logs", "backup", str(clawdesk_home / "backup.db")).returncode == 0
    assert run("forget", "--all", "--yes").returncode == 0
    paths = [p for p in clawdesk_home.rglob("*")]
    names = {p.name for p in paths}
    assert {"clawdesk.db", "all.jsonl", "backup.db", "data", "config"} <= names, names
    for p in paths:
        mode = stat.S_IMODE(p.lstat().st_mode)
        assert mode & 0o077 == 0, f"{p} is {oct(mode)}"
    assert locations.adapters_dir().stat().st_mode & 0o077 == 0 and locations.runs_dir().stat().st_mode & 0o077 == 0
