"""Snapshot tests (pytest-textual-snapshot) of the main screen, the thumbs-down dialog, the
help screen and "What I learned" with a promotion's before/after. Deterministic: fixed terminal size, canned conversation text (no model output on
screen), a fixed settings path in the help text. Update with ``pytest --snapshot-update`` after
checking the new SVGs by eye."""

from __future__ import annotations

from pathlib import Path

import pytest

from clawdesk import locations
from clawdesk.store import Store
from clawdesk.tui import ClawDeskApp

SIZE = (100, 32)


@pytest.fixture
def app(engine, quick, store: Store, monkeypatch: pytest.MonkeyPatch) -> ClawDeskApp:
    monkeypatch.setattr(locations, "settings_path", lambda: Path("~/.config/clawdesk/settings.toml"))
    store.new_conversation(name="Packing list")
    cid = store.new_conversation(name="Python help").id
    q = store.add_message(cid, "user", "How do I reverse a list in Python?")
    old = store.add_message(cid, "assistant", "Use `reversed()`.", parent_id=q.id, finish_reason="stop")
    store.add_feedback(old.id, "regenerate")
    a = store.add_message(cid, "assistant",
                          "Two ways:\n\n- `items.reverse()` reverses **in place**\n- `items[::-1]` returns a copy\n\n"
                          "```python\nprint([1, 2, 3][::-1])\n```", parent_id=q.id, finish_reason="stop")
    store.add_feedback(a.id, "thumbs_up")
    q2 = store.add_message(cid, "user", "Thanks! And a tuple?", parent_id=a.id)
    b = store.add_message(cid, "assistant", "Tuples are immutable, so slice: `t[::-1]`", parent_id=q2.id,
                          finish_reason="cancelled")
    store.add_feedback(b.id, "stop")
    return ClawDeskApp(settings=quick, engine=engine, conversation_id=cid)


def test_main_screen(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, press=["up", "_"])


def test_thumbs_down_dialog(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, press=["up", "minus", "_"])


def test_help_screen(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, press=["f1", "_"])


def test_what_i_learned_with_before_after(snap_compare, app, store: Store):
    from test_learn_now import canned_before_after

    canned_before_after(store)  # no wish: its row carries today's date
    assert snap_compare(app, terminal_size=SIZE, press=["f5", "_"])
