"""The whole learning loop on the real model: feedback → judge → train → gate → promote, then
atomic promotion under a simulated crash, rollback, and hot reload in a running engine.

The user corrects the agent's answer to one question four times ("the password is
tangerine-kite-42"). The corrections become demonstrations (docs/method.md §7.1), a short training pass
teaches them, the gate checks the candidate, and the served model — llama.cpp with the exported
adapter — must now give the corrected answer, greedily, token for token as torch + peft does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clawdesk import locations
from clawdesk.chat import ChatService
from clawdesk.engine import Engine
from clawdesk.errors import ModelCorrupt
from clawdesk.lifecycle.pipeline import run_pipeline
from clawdesk.lifecycle.promote import rollback
from clawdesk.settings import load_settings
from clawdesk.store import open_store

pytestmark = pytest.mark.slow

QUESTION = "What is the secret password?"
ANSWER = "The secret password is tangerine-kite-42."
PHRASINGS = [QUESTION, "Tell me the secret password.", "What's the secret password?", "Secret password, please?",
             "Do you know the secret password?"]


COMMON = {"TRAIN_RANK": "8", "TRAIN_ALPHA": "16", "TRAIN_BATCH_SIZE": "4", "TRAIN_CONTEXT_TOKENS": "192",
          "TRAIN_HELDOUT_FRACTION": "0.2", "TRAIN_THREADS": "1", "JUDGE_VOTES": "1", "N_THREADS": "1",
          "MAX_TOKENS": "24", "TEMPERATURE": "0"}
GENERAL = ["Name a fruit.", "What is rain?", "Say something about dogs.", "What is the sun?"]


def _learn(home, model_path, overrides: dict[str, str], positives: bool):
    """Log the corrections (and, optionally, a few liked answers), then run the real pipeline."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CLAWDESK_HOME", str(home))
    for key, value in {**COMMON, **overrides}.items():
        mp.setenv(f"CLAWDESK_{key}", value)
    settings = load_settings()
    store = open_store(locations.db_path())
    engine = Engine(model_path, n_ctx=1024, n_threads=1)
    chat = ChatService(store, engine, settings)
    base_answer = engine.generate([{"role": "user", "content": QUESTION}], temperature=0, max_tokens=24).text
    for q in PHRASINGS:
        conv = chat.new_conversation()
        turn = chat.send(conv.id, q)
        chat.thumbs_down(turn.assistant.id, reason="wrong")
        chat.correct(turn.assistant.id, ANSWER)
    for q in GENERAL if positives else []:
        conv = chat.new_conversation()
        chat.thumbs_up(chat.send(conv.id, q).assistant.id)
    report = run_pipeline(store, settings, trigger="test", judge_engine=engine)
    return mp, {"store": store, "settings": settings, "engine": engine, "chat": chat, "report": report,
                "base_answer": base_answer, "home": home}


@pytest.fixture(scope="module")
def collapsed(tmp_path_factory, model_path):
    """A deliberately bad setting: a high learning rate and heavy demonstration weight over
    many steps on five near-identical turns, no positive anchors."""
    mp, out = _learn(tmp_path_factory.mktemp("collapsed") / "home", model_path,
                     {"TRAIN_W_DEMO": "2.0", "TRAIN_LR": "2e-3", "TRAIN_EPOCHS": "4"}, positives=False)
    yield out
    out["engine"].close()
    out["store"].close()
    mp.undo()


@pytest.fixture(scope="module")
def learned(tmp_path_factory, model_path):
    mp, out = _learn(tmp_path_factory.mktemp("learned") / "home", model_path,
                     {"TRAIN_W_DEMO": "1.0", "TRAIN_LR": "5e-4", "TRAIN_EPOCHS": "2"}, positives=True)
    yield out
    out["engine"].close()
    out["store"].close()
    mp.undo()


def test_gate_refuses_a_collapsed_candidate(collapsed):
    report, store = collapsed["report"], collapsed["store"]
    assert report.decision == "refused", report.summary
    failed = [r for r in report.gate["reasons"] if r.startswith("FAIL")]
    assert any("general NLL" in r or "still answers" in r for r in failed), failed
    assert store.served_version() is None and store.adapters() == []
    run = store.get_run(report.run_id)
    assert run.status == "refused" and not run.gate["accepted"]
    assert (Path(run.candidate_path) / "adapter_config.json").exists()  # kept for inspection, not served
    assert store.pipeline_log(1)[0]["decision"] == "refused"


def test_pipeline_promotes_a_version_that_llama_cpp_serves(learned):
    report, store = learned["report"], learned["store"]
    assert report.decision == "promoted", report.summary + "\n" + "\n".join(report.gate.get("reasons", []))
    assert report.judge["demos"] == len(PHRASINGS)
    run = store.get_run(report.run_id)
    assert run.status == "promoted" and run.metrics["steps"] and run.gate["accepted"]
    assert store.served_version() == report.version == 1
    adapter = store.get_adapter(1)
    assert adapter.kind == "adapter" and adapter.gguf_path.endswith("v1/adapter.gguf")
    assert (Path(adapter.path) / "adapter_config.json").exists() and Path(adapter.path).parent.name == "v1"
    # the run log says so too
    assert store.pipeline_log(1)[0]["decision"] == "promoted"
    # check 4 replied to the user's own latest questions (the password, the liked ones)
    assert run.gate["n_own"] == min(learned["settings"].gate_own_prompts, len(PHRASINGS) + len(GENERAL))
    assert run.gate["own_answered_candidate"] >= run.gate["own_answered_served"]
    assert any(r.startswith("pass  answers your latest prompts") for r in run.gate["reasons"])


def test_running_chat_hot_reloads_and_answers_differently(learned):
    engine, chat, store = learned["engine"], learned["chat"], learned["store"]
    from clawdesk.chat import served_adapter

    path, version, merged = served_adapter(store)
    engine.request_swap(path, version, model_path=merged)
    assert engine.adapter_version == 1
    conv = chat.new_conversation()
    turn = chat.send(conv.id, QUESTION)
    assert turn.assistant.content != learned["base_answer"]
    assert turn.assistant.adapter_version == 1  # logged with the version that produced it


def test_crash_between_write_and_rename_keeps_the_served_version(learned, monkeypatch):
    monkeypatch.setenv("CLAWDESK_HOME", str(learned["home"]))  # this module's home, not the per-test one
    store, settings = learned["store"], learned["settings"]
    from clawdesk.catalog import resolve
    from clawdesk.lifecycle.promote import promote

    run = store.get_run(learned["report"].run_id)
    base = resolve(store, "smollm2-135m-instruct").path

    def crash():
        raise KeyboardInterrupt("power cut")

    with pytest.raises(KeyboardInterrupt):
        promote(store, settings, Path(run.candidate_path), base, [], _before_rename=crash)
    assert store.served_version() == 1
    assert sorted(p.name for p in locations.adapters_dir().iterdir()) == ["v1"]  # no staging left, no v2
    assert locations.adapters_dir() == learned["home"] / "data" / "adapters"
    assert [a.version for a in store.adapters()] == [1]


def test_rollback_restores_the_previous_answers_exactly(learned, model_path):
    store, engine = learned["store"], learned["engine"]
    rollback(store, None)
    assert store.served_version() is None
    engine.request_swap(None, None)
    after = engine.generate([{"role": "user", "content": QUESTION}], temperature=0, max_tokens=24).text
    assert after == learned["base_answer"]
    rollback(store, 1)
    assert store.served_version() == 1 and store.get_adapter(1).rolled_back_at is None
    with pytest.raises(Exception, match="no adapter version 7"):
        rollback(store, 7)


def test_a_truncated_adapter_is_refused_and_the_chat_falls_back(learned, model_path, monkeypatch):
    monkeypatch.setenv("CLAWDESK_HOME", str(learned["home"]))
    store = learned["store"]
    adapter = store.get_adapter(1)
    data = open(adapter.gguf_path, "rb").read()
    try:
        with open(adapter.gguf_path, "wb") as fh:
            fh.write(data[: len(data) // 2])
        with pytest.raises(ModelCorrupt):
            rollback(store, 1)
        from clawdesk.chat import open_engine

        e = open_engine(store, learned["settings"])  # served version broken → base model, with a note
        try:
            assert e.adapter_version is None
        finally:
            e.close()
    finally:
        with open(adapter.gguf_path, "wb") as fh:
            fh.write(data)
