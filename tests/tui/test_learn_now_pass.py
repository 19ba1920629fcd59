"""A whole Learn now pass through Pilot: the real model, a real SQLite home, a real pass in the
child process (``clawdesk.lifecycle.learn_now``).

The pass learns the corrections of tests/test_lifecycle.py (five phrasings of one question,
corrected; four liked answers) with its small, seeded train settings, so it is promoted; the
chat answers a message while the child trains; the status bar walks through the stages to the
outcome; the hot-reload poll swaps the new version in; F5 shows the previous and the new
version's answers."""

from __future__ import annotations

import time

from clawdesk.lifecycle.compare import last_before_after
from clawdesk.store import Store
from clawdesk.tui import ClawDeskApp
from clawdesk.tui.screens.memory import MemoryScreen
from test_chat_app import SIZE, send, wait_until
from test_learn_now import GENERAL, PHRASINGS, QUESTION, child_env, feedback  # noqa: F401 (child_env: fixture)


async def test_learn_now_runs_a_real_pass_while_the_chat_answers(engine, quick, store: Store, child_env):
    feedback(store, engine, quick, PHRASINGS, GENERAL)
    app = ClawDeskApp(settings=quick, engine=engine, poll_seconds=0.2)
    seen: list[str] = []  # every value the status bar's learning field took
    try:
        async with app.run_test(size=SIZE) as pilot:
            app.watch(app.status, "learning", lambda value: seen.append(value) if value else None, init=False)
            await pilot.press("f6")
            assert app.learning and app.status.learning.startswith("learning:")
            await wait_until(pilot, lambda: "train" in app.status.learning, 300, "training")
            started = time.monotonic()
            await send(pilot, app, QUESTION)  # the chat answers while the child trains
            answered_in = time.monotonic() - started
            assert app.learning, "the reply came after the pass: nothing was shown to run alongside it"
            reply = store.messages(app.conversation.id)[-1]
            assert reply.role == "assistant" and reply.content and reply.adapter_version is None
            await wait_until(pilot, lambda: not app.learning, 400, "the pass's outcome")
            assert app.status.learning == "learned: version 1 promoted (f5: before/after)", seen
            await wait_until(pilot, lambda: app.status.adapter == "v1", 60, "the promoted version swapped in")
            await send(pilot, app, "What is rain?")
            assert store.messages(app.conversation.id)[-1].adapter_version == 1

            await pilot.press("f5")
            await wait_until(pilot, lambda: isinstance(app.screen, MemoryScreen), 5, "what I learned")
            title = str(app.screen.query_one("#before-after-title").render())
            pairs = [str(p.render()) for p in app.screen.query(".pair")]
    finally:
        engine.request_swap(None, None)
    stages = [s.split(" ")[1] for s in seen if s.startswith("learning:")]
    assert stages[0] == "starting…" and {"judge", "train", "gate…", "before/after"} <= set(stages), seen
    assert any(s.startswith("learning: train step ") for s in seen), seen
    assert answered_in < 60, f"a 24-token reply took {answered_in:.0f} s next to the training child"

    run = store.runs(limit=1)[0]
    assert run.status == "promoted" and store.served_version() == 1
    compared = last_before_after(store)
    assert compared is not None and compared.version == 1 and compared.before_label == "base"
    # the newest distinct prompts of the person, newest first: the one sent during the pass leads
    assert compared.prompts[0] == QUESTION and len(compared.prompts) == 3
    assert compared.max_tokens == 32 and all(compared.before) and all(compared.after)
    assert compared.after != compared.before  # the version changed something on these prompts
    assert "version 1 against the base model, on 3 of your recent prompts" in title
    assert len(pairs) == 3 and pairs[0].startswith(f"» {QUESTION}")
    assert compared.before[0].strip() in pairs[0] and compared.after[0].strip() in pairs[0]
