"""Learn now (F6) and the before/after in "What I learned", through Pilot with the real model, a
real SQLite home and a real learning process (``clawdesk.lifecycle.learn_now``): quitting
mid-pass stops the child with SIGINT and loses nothing; a pass another process holds the lock
for is not started; F5 shows a kept before/after. The whole pass, promoted while the chat
answers, is test_learn_now_pass.py."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from clawdesk.chat import ChatService
from clawdesk.lifecycle.compare import BeforeAfter
from clawdesk.lifecycle.lock import pipeline_lock
from clawdesk.store import Store
from clawdesk.tui import ClawDeskApp, commands
from clawdesk.tui.screens.memory import MemoryScreen
from test_chat_app import SIZE, wait_until

QUESTION = "What is the secret password?"
ANSWER = "The secret password is tangerine-kite-42."
PHRASINGS = [QUESTION, "Tell me the secret password.", "What's the secret password?", "Secret password, please?",
             "Do you know the secret password?"]
GENERAL = ["Name a fruit.", "What is rain?", "Say something about dogs.", "What is the sun?"]
# tests/test_lifecycle.py's 'learned' settings (promoted there), for the child through its environment
CHILD_ENV = {"TRAIN_RANK": "8", "TRAIN_ALPHA": "16", "TRAIN_BATCH_SIZE": "4", "TRAIN_CONTEXT_TOKENS": "192",
             "TRAIN_HELDOUT_FRACTION": "0.2", "TRAIN_THREADS": "1", "JUDGE_VOTES": "1", "N_THREADS": "1",
             "MAX_TOKENS": "24", "TEMPERATURE": "0", "TRAIN_W_DEMO": "1.0", "TRAIN_LR": "5e-4",
             "TRAIN_EPOCHS": "2", "LEARN_COMPARE_TOKENS": "32",
             "TRAIN_W_CONTEXT": "0",  # no context distillation: it answers 16 prompts afresh, and this is about the UI
             # This pass's quick candidate answers 6 of the 8 general prompts, the base 7: the default floor
             # (the base's rate) refuses it. The gate's rules are tested in test_lifecycle.py; here, the UI.
             "GATE_MIN_ANSWER_RATE": "0.75"}


@pytest.fixture
def child_env(monkeypatch: pytest.MonkeyPatch, hf_cache) -> None:
    """What the child reads: small train settings, and the session's torch copy of the model."""
    for key, value in CHILD_ENV.items():
        monkeypatch.setenv(f"CLAWDESK_{key}", value)


def feedback(store: Store, engine, quick, corrected: list[str], liked: list[str]) -> None:
    """Real turns (the model's own token ids) with the feedback a person gives in the chat."""
    chat = ChatService(store, engine, quick)
    for q in corrected:
        turn = chat.send(chat.new_conversation().id, q)
        chat.thumbs_down(turn.assistant.id, reason="wrong")
        chat.correct(turn.assistant.id, ANSWER)
    for q in liked:
        chat.thumbs_up(chat.send(chat.new_conversation().id, q).assistant.id)


async def test_quitting_mid_pass_stops_the_child_and_loses_nothing(engine, quick, store: Store, child_env):
    feedback(store, engine, quick, [], GENERAL[:3])
    app = ClawDeskApp(settings=quick, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f6")
        await wait_until(pilot, lambda: app.status.learning.startswith(("learning: loading", "learning: scoring",
                                                                         "learning: train")), 120, "training")
        proc = app._learn_proc
    assert proc.returncode == 130  # the child caught SIGINT and said "interrupted"
    with pipeline_lock():  # free again: the kernel released the child's flock
        pass
    runs = store.runs()
    assert all(r.status != "running" for r in runs), [(r.id, r.status) for r in runs]
    # nothing learned is lost: the samples are 'used' only at the end of a pass
    assert len(store.samples(status="ready")) == 3 and not store.samples(status="used")


async def test_learn_now_says_so_when_another_pass_holds_the_lock(engine, quick, store: Store):
    app = ClawDeskApp(settings=quick.replace(keymap={"learn_now": "ctrl+l"}), engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        titles = {c.title: c for c in commands.palette_commands(app)}
        assert "(^l)" in titles["Learn now"].help
        with pipeline_lock():  # what the nightly daemon holds while it trains
            await pilot.press("ctrl+l")
            await pilot.pause()
        assert not app.learning
        assert app.status.learning == "not started: another training pass is running"
        assert store.runs() == []


def canned_before_after(store: Store) -> BeforeAfter:
    """A promoted run with its comparison, as the learning process keeps it (fixed text)."""
    compared = BeforeAfter(2, "v1", ["What is the secret password?", "What is the sun?"],
                           ["I can't share passwords.", "The sun is a star."],
                           ["The secret password is tangerine-kite-42.", "The sun is a star."], 96,
                           "2025-06-01T03:00:00+00:00")
    run = store.start_run("combined", {}, 9)
    store.update_run(run.id, status="promoted", metrics={"steps": [], "before_after": asdict(compared)})
    return compared


async def test_what_i_learned_shows_the_last_promotions_before_and_after(engine, quick, store: Store):
    canned_before_after(store)
    refused = store.start_run("combined", {}, 3)  # a later refused run does not hide it
    store.update_run(refused.id, status="refused")
    app = ClawDeskApp(settings=quick, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: isinstance(app.screen, MemoryScreen), 5, "what I learned")
        title = str(app.screen.query_one("#before-after-title").render())
        pairs = [str(p.render()) for p in app.screen.query(".pair")]
    assert title.startswith("What the last training changed: version 2 against version 1, on 2 of your")
    assert pairs[0] == ("» What is the secret password?\nbefore (v1): I can't share passwords.\n"
                        "after (v2): The secret password is tangerine-kite-42.")
    assert pairs[1].endswith("after (v2): The sun is a star.  (unchanged)")
