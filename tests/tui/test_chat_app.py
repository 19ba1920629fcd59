"""The chat TUI driven through Textual's Pilot: the real app, the real bundled model through
llama.cpp, and a real SQLite store in a tmp CLAWDESK_HOME. Every key test asserts the rows the
key wrote. Replies are greedy (temperature 0, seed 0) and short to keep the module quick."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Input, ListView, Markdown, TextArea

from clawdesk import locations
from clawdesk.chat import ChatService
from clawdesk.store import Store
from clawdesk.tui import ClawDeskApp, commands
from clawdesk.tui.screens.choose import ChooseScreen
from clawdesk.tui.screens.confirm import ConfirmScreen
from clawdesk.tui.screens.editor import EditorScreen
from clawdesk.tui.screens.feedback import ThumbsDownScreen
from clawdesk.tui.widgets.message import MessageView
from clawdesk.tui.widgets.sidebar import Sidebar
from turn_gate import hold_after_first_piece

SIZE = (110, 36)


async def wait_until(pilot, predicate, timeout: float = 90.0, what: str = "condition"):
    """Poll (letting the app run) instead of sleeping a fixed time: replies arrive from a
    worker thread whenever the model is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"{what} not reached within {timeout}s")


def idle(app: ClawDeskApp) -> bool:
    return app._cancel is None


def logged(app: ClawDeskApp) -> int:
    return sum(1 for v in views(app) if v.message is not None)


async def send(pilot, app: ClawDeskApp, text: str) -> None:
    """Type, press Enter, and wait until both messages of the turn are logged and on screen."""
    before = logged(app)
    app.prompt.focus()
    app.prompt.load_text(text)
    await pilot.press("enter")
    await wait_until(pilot, lambda: idle(app) and logged(app) >= before + 2, what="reply")
    await pilot.pause()


def canned(store: Store, name: str, turns: list[tuple[str, str]]) -> int:
    """A conversation with fixed text (no model output), for the screens that must look the same
    on every run and the tests that are about the sidebar."""
    cid = store.new_conversation(name=name).id
    parent = None
    for question, answer in turns:
        parent = store.add_message(cid, "user", question, parent_id=parent).id
        parent = store.add_message(cid, "assistant", answer, parent_id=parent, finish_reason="stop").id
    return cid


def views(app: ClawDeskApp) -> list[MessageView]:
    return app.log_view.views


# --- sending ------------------------------------------------------------------------------------

async def test_send_streams_reply_and_logs_the_turn(engine, quick, store):
    app = ClawDeskApp(settings=quick, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        pieces: list[str] = []
        original = MessageView.on_message_view_piece

        async def spy(self, event):  # count the streamed fragments the view received
            pieces.append(event.text)
            await original(self, event)

        MessageView.on_message_view_piece = spy
        try:
            await send(pilot, app, "Name a primary colour.")
        finally:
            MessageView.on_message_view_piece = original
        user, reply = views(app)
        assert len(pieces) > 1 and "".join(pieces).strip() == reply.text.strip()
        conv = store.list_conversations()[0]
        assert conv.name == "Name a primary colour."
        rows = store.messages(conv.id)
        assert [m.role for m in rows] == ["user", "assistant"]
        assert rows[0].parent_id is None and rows[1].parent_id == rows[0].id
        assert rows[1].content == reply.text and reply.message.id == rows[1].id
        # the exact ids the model saw and sampled
        assert rows[1].prompt_token_ids == engine.render([{"role": "user", "content": "Name a primary colour."}])
        assert rows[1].response_token_ids and len(rows[1].response_token_ids) <= 24
        assert rows[1].sampling["temperature"] == 0.0 and rows[1].sampling["seed"] == 0
        assert app.status.tokens_per_s and app.status.tokens_per_s > 0

        await send(pilot, app, "And another one?")
        rows = store.messages(conv.id)
        assert len(rows) == 4 and rows[2].parent_id == rows[1].id and rows[3].parent_id == rows[2].id
        assert rows[3].prompt_token_ids[: len(rows[1].prompt_token_ids)] == rows[1].prompt_token_ids
        assert app.query_one(Sidebar).conversation_ids == [conv.id]


async def test_enter_sends_and_ctrl_j_makes_a_newline(engine, quick, store):
    app = ClawDeskApp(settings=quick, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("h", "i", "ctrl+j", "y", "o", "enter")
        await wait_until(pilot, lambda: store.list_conversations() and idle(app), what="reply")
        first = store.messages(store.list_conversations()[0].id)[0]
        assert first.content == "hi\nyo"
        assert app.prompt.text == ""


async def test_escape_stops_and_keeps_the_partial_answer(engine, quick, store):
    app = ClawDeskApp(settings=quick.replace(max_tokens=400), engine=engine)
    release = hold_after_first_piece(app)
    async with app.run_test(size=SIZE) as pilot:
        app.prompt.load_text("Write a long story about a dragon who learns to cook.")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(views(app)) == 2 and views(app)[1].text, what="first piece")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app._cancel is not None and app._cancel.is_set(), 10, "Esc asks to stop")
        release.set()
        await wait_until(pilot, lambda: idle(app), what="stop")
        reply = store.messages(store.list_conversations()[0].id)[1]
        assert reply.finish_reason == "cancelled"
        assert 0 < len(reply.response_token_ids) < 400
        assert [f.kind for f in store.feedback_for(reply.id)] == ["stop"]
        assert "stopped" in views(app)[1].border_title


# --- feedback keys ------------------------------------------------------------------------------

async def test_feedback_keys_write_rows(engine, quick, store):
    app = ClawDeskApp(settings=quick, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "What is 2 + 2?")
        reply = views(app)[1]
        mid = reply.message.id
        await pilot.press("up")  # from the prompt's first line to the last message
        assert app.focused is reply

        await pilot.press("plus")
        assert [f.kind for f in store.feedback_for(mid)] == ["thumbs_up"]
        assert "👍" in reply.border_title

        await pilot.press("minus")
        await wait_until(pilot, lambda: isinstance(app.screen, ThumbsDownScreen), 5, "reason dialog")
        # the thumbs-down is written before the dialog asks why
        assert [f.kind for f in store.feedback_for(mid)] == ["thumbs_up", "thumbs_down"]
        await pilot.press("2")  # "too long"
        await pilot.press(*"one line please", "enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, ThumbsDownScreen), 5, "dialog closed")
        down = store.feedback_for(mid)[1]
        assert (down.reason, down.comment) == ("too long", "one line please")
        assert "👎 too long" in reply.border_title

        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, EditorScreen), 5, "editor")
        editor = app.screen.query_one(TextArea)
        assert editor.text == reply.text  # prefilled with the answer
        editor.load_text("2 + 2 = 4.")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, EditorScreen), 5, "editor closed")
        correction = store.feedback_for(mid)[2]
        assert (correction.kind, correction.correction) == ("correction", "2 + 2 = 4.")
        assert "corrected" in reply.border_title

        await pilot.press("x")
        assert store.get_message(mid).exclude is True
        assert store.feedback_for(mid)[-1].kind == "exclude"
        assert "excluded" in reply.border_title

        await pilot.press("y")
        assert app.clipboard == reply.text
        assert len(store.feedback_for(mid)) == 4  # copying is not feedback


async def test_escape_skips_the_reason(engine, quick, store):
    app = ClawDeskApp(settings=quick, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Say hello.")
        await pilot.press("up", "minus")
        await wait_until(pilot, lambda: isinstance(app.screen, ThumbsDownScreen), 5, "reason dialog")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ThumbsDownScreen), 5, "dialog closed")
        (down,) = store.feedback_for(views(app)[1].message.id)
        assert (down.kind, down.reason, down.comment) == ("thumbs_down", "", "")


async def test_regenerate_then_switch_siblings(engine, quick, store):
    chat = ChatService(store, engine, quick)
    conv = chat.new_conversation()
    first = chat.send(conv.id, "Name a fruit.", temperature=0.0, seed=0, max_tokens=16)
    follow = chat.send(conv.id, "Why?", temperature=0.0, seed=0, max_tokens=16)
    app = ClawDeskApp(settings=quick.replace(temperature=0.9, seed=7), engine=engine, conversation_id=conv.id)
    async with app.run_test(size=SIZE) as pilot:
        assert [v.message.id for v in views(app)] == [first.user.id, first.assistant.id,
                                                     follow.user.id, follow.assistant.id]
        views(app)[1].focus()
        await pilot.press("r")
        await wait_until(pilot, lambda: len(store.siblings(first.assistant.id)) == 2 and idle(app)
                         and all(v.message for v in views(app)), what="regenerated reply")
        await pilot.pause()
        siblings = store.siblings(first.assistant.id)
        assert len(siblings) == 2 and {s.parent_id for s in siblings} == {first.user.id}
        new = siblings[1]
        assert new.response_token_ids and new.prompt_token_ids == first.assistant.prompt_token_ids
        assert [f.kind for f in store.feedback_for(first.assistant.id)] == ["regenerate"]
        # the new answer is shown, and the old answer's follow-up is not below it
        assert [v.message.id for v in views(app)] == [first.user.id, new.id]
        assert "[ 2/2 ]" in views(app)[1].border_subtitle
        assert app.focused is views(app)[1]

        await pilot.press("left_square_bracket")
        assert [v.message.id for v in views(app)] == [first.user.id, first.assistant.id,
                                                     follow.user.id, follow.assistant.id]
        assert "[ 1/2 ]" in views(app)[1].border_subtitle and app.focused is views(app)[1]
        await pilot.press("right_square_bracket")
        assert [v.message.id for v in views(app)] == [first.user.id, new.id]

        # a new message continues the branch on screen, not the newest row in the table
        await pilot.press("left_square_bracket")
        await send(pilot, app, "Another?")
        last = store.messages(conv.id)[-2]
        assert last.content == "Another?" and last.parent_id == follow.assistant.id


# --- conversations ------------------------------------------------------------------------------

async def test_search_then_delete_conversation(engine, quick, store):
    keep = canned(store, "Zoo trip", [("What do zebras eat?", "Mostly grass.")])
    gone = canned(store, "Cooking", [("How long to boil an egg?", "About nine minutes.")])
    store.add_feedback(store.messages(gone)[1].id, "thumbs_up")
    assert b"nine minutes" in db_bytes(store)
    app = ClawDeskApp(settings=quick, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        sidebar = app.query_one(Sidebar)  # filled just after the first frame
        await wait_until(pilot, lambda: sidebar.conversation_ids == [gone, keep], 5, "sidebar")
        await pilot.press("ctrl+f")
        assert app.focused is app.query_one("#search", Input)
        await pilot.press(*"zebras")
        await wait_until(pilot, lambda: sidebar.conversation_ids == [keep], 5, "search result")
        await pilot.press("enter")  # into the list; Enter again opens the highlighted one
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.conversation and app.conversation.id == keep, 5, "opened")
        assert [v.text for v in views(app)] == ["What do zebras eat?", "Mostly grass."]

        app.query_one("#search", Input).value = ""
        await wait_until(pilot, lambda: sidebar.conversation_ids == [gone, keep], 5, "full list")
        app.query_one("#conversations").focus()
        app.query_one("#conversations").index = 0
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "confirm")
        await pilot.press("n")  # cancel first: nothing is deleted
        assert {c.id for c in store.list_conversations()} == {gone, keep}
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "confirm")
        await pilot.press("y")
        await wait_until(pilot, lambda: sidebar.conversation_ids == [keep], 5, "list refreshed")
        assert [c.id for c in store.list_conversations()] == [keep]
        assert store.messages(gone) == []
        assert store.execute("select count(*) from feedback")[0][0] == 0
        # and scrubbed from the file's bytes (free pages, full-text index, write-ahead log), as
        # `clawdesk forget` does; the kept conversation is still there
        await wait_until(pilot, lambda: b"nine minutes" not in db_bytes(store), 10, "scrubbed")
        assert b"Mostly grass" in db_bytes(store)


async def test_sidebar_pages_through_a_long_history(engine, quick, store):
    """300 conversations: the newest page first; reaching its end (arrow keys, or scrolling)
    loads the next; search goes to the store and finds one whose page was never loaded."""
    ids = [canned(store, f"Chat {i}", [(f"question {i}" + (" about aardvarks" if i == 0 else ""), f"answer {i}")])
           for i in range(300)]
    newest_first = ids[::-1]
    page = Sidebar.PAGE_SIZE
    app = ClawDeskApp(settings=quick, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        sidebar = app.query_one(Sidebar)  # filled just after the first frame
        await wait_until(pilot, lambda: sidebar.conversation_ids == newest_first[:page], 5, "first page")
        await pilot.press("ctrl+f", *"aardvarks")
        await wait_until(pilot, lambda: sidebar.conversation_ids == [ids[0]], 5, "old conversation found")
        await pilot.press("enter", "enter")
        await wait_until(pilot, lambda: app.conversation and app.conversation.id == ids[0], 5, "opened")

        app.query_one("#search", Input).value = ""
        await wait_until(pilot, lambda: not sidebar.loading and sidebar.conversation_ids == newest_first[:page], 5,
                         "first page again")
        items = app.query_one("#conversations", ListView)
        items.focus()
        items.index = page - 2
        await pilot.pause()
        await pilot.press("down")  # onto the last loaded item
        await wait_until(pilot, lambda: len(sidebar.conversation_ids) == 2 * page, 5, "second page")
        assert sidebar.conversation_ids == newest_first[:2 * page]
        items.scroll_end(animate=False)
        await wait_until(pilot, lambda: len(sidebar.conversation_ids) == 300, 5, "third page by scrolling")
        assert sidebar.conversation_ids == newest_first


def db_bytes(store) -> bytes:
    path = Path(store.path)
    return b"".join(Path(str(path) + s).read_bytes() for s in ("", "-wal", "-shm") if Path(str(path) + s).exists())


async def test_new_rename_and_system_prompt(engine, quick, store):
    cid = canned(store, "Old", [("Hi", "Hello!")])
    app = ClawDeskApp(settings=quick, engine=engine, conversation_id=cid)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        app.screen.query_one(Input).value = "Greetings"
        await pilot.press("enter")
        await wait_until(pilot, lambda: store.get_conversation(cid).name == "Greetings", 5, "rename")

        await pilot.press("ctrl+n")
        assert app.conversation is None and views(app) == []
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, EditorScreen), 5, "editor")
        app.screen.query_one(TextArea).load_text("You are a terse pirate.")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.conversation is not None, 5, "persona saved")
        assert app.conversation.system_prompt == "You are a terse pirate."
        await send(pilot, app, "Hello")
        reply = store.messages(app.conversation.id)[1]
        assert reply.prompt_token_ids == engine.render([{"role": "system", "content": "You are a terse pirate."},
                                                        {"role": "user", "content": "Hello"}])


async def test_export_markdown_and_json(engine, quick, store):
    cid = canned(store, "Export me", [("Question one", "Answer **one**")])
    store.add_feedback(store.messages(cid)[1].id, "thumbs_up")
    app = ClawDeskApp(settings=quick, engine=engine, conversation_id=cid)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f8", "f9")
        folder = locations.data_dir() / "exports"
        await wait_until(pilot, lambda: len(list(folder.glob("*"))) == 2, 5, "two files")
        md = next(folder.glob("*.md"))
        js = next(folder.glob("*.json"))
        for f in (md, js):
            assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
        text = md.read_text()
        assert "# Export me" in text and "Question one" in text and "Answer **one**" in text and "👍" in text
        data = json.loads(js.read_text())
        assert data["name"] == "Export me" and [m["role"] for m in data["messages"]] == ["user", "assistant"]
        assert data["messages"][1]["feedback"][0]["kind"] == "thumbs_up"


async def test_command_palette_runs_actions(engine, quick, store):
    cid = canned(store, "Palette", [("Hi", "Hello there")])
    app = ClawDeskApp(settings=quick, engine=engine, conversation_id=cid)
    async with app.run_test(size=SIZE) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("Thumbs up", "Thumbs down", "Correct reply", "Regenerate reply", "Don't learn from this reply",
                       "Copy reply", "Previous answer", "Next answer", "New conversation", "Delete conversation",
                       "Rename conversation", "Search conversations", "Toggle sidebar", "Switch model",
                       "System prompt / persona", "Export conversation to Markdown", "Export conversation to JSON",
                       "Stop generating", "Keys and help"):
            assert wanted in titles
        await pilot.press("ctrl+p")
        await pilot.press(*"Thumbs up")
        await pilot.pause(0.3)
        await pilot.press("enter")
        mid = store.messages(cid)[1].id
        await wait_until(pilot, lambda: store.feedback_for(mid), 5, "palette thumbs up")
        assert store.feedback_for(mid)[0].kind == "thumbs_up"


async def test_keymap_from_settings_remaps_keys(engine, quick, store):
    cid = canned(store, "Keys", [("Hi", "Hello there")])
    app = ClawDeskApp(settings=quick.replace(keymap={"thumbs_up": "u", "help": "f12"}), engine=engine,
                      conversation_id=cid)
    async with app.run_test(size=SIZE) as pilot:
        rows = {row[3]: row[1] for row in commands.binding_rows(app)}
        assert rows["thumbs_up"] == "u" and rows["help"] == "f12"
        await pilot.press("up")
        await pilot.press("plus")  # no longer bound
        await pilot.press("u")
        assert [f.kind for f in store.feedback_for(store.messages(cid)[1].id)] == ["thumbs_up"]


async def test_palette_hints_show_the_keys_in_effect(engine, quick, store):
    """The palette is generated from the bindings after the [keymap]: a remapped key shows up
    in its entry's hint, and the old key is gone from it."""
    app = ClawDeskApp(settings=quick.replace(keymap={"thumbs_up": "u", "rename": "f6"}), engine=engine)
    async with app.run_test(size=SIZE):
        hints = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert hints["Thumbs up"].endswith("(u)") and "+" not in hints["Thumbs up"]
        assert hints["Rename conversation"].endswith("(f6)")
        assert hints["Thumbs down"].endswith("(-)")  # not remapped: the default key
        # every binding is in the palette, except those that only make sense where pressed
        titled = {e.binding for e in commands.PALETTE}
        assert {b.id for b in commands.all_bindings()} - titled == commands.NOT_IN_PALETTE


# --- model loading and hot reload ----------------------------------------------------------------

async def test_default_path_loads_the_model_in_a_worker(quick, store, model_path):
    app = ClawDeskApp(settings=quick)
    async with app.run_test(size=SIZE) as pilot:
        assert app.status.notice in ("Loading model…", "")
        if app.engine is None:  # typed while loading: sent once the model is there
            await pilot.press("H", "i", "enter")
        await wait_until(pilot, lambda: app.engine is not None, 60, "model loaded")
        assert app.status.model == "smollm2-135m-instruct" and app.status.notice == ""
        if not store.list_conversations():
            await send(pilot, app, "Hi")
        await wait_until(pilot, lambda: idle(app) and logged(app) == 2, what="reply")
        assert store.messages(store.list_conversations()[0].id)[1].model == "smollm2-135m-instruct"


async def test_missing_model_is_a_message_not_a_traceback(quick, store, tmp_path):
    app = ClawDeskApp(settings=quick.replace(model=str(tmp_path / "nowhere.gguf")))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.status.error, 30, "error shown")
        notice = await wait_until(pilot, lambda: app.log_view.query_one(".notice", Markdown).source, 5, "notice")
        assert "Could not load the model" in notice and "nowhere.gguf" in notice
        app.prompt.load_text("hello?")
        await pilot.press("enter")
        await pilot.pause()
        assert store.list_conversations() == []  # nothing sent without a model
        await pilot.press("f4")  # recover: pick the bundled model from the list
        await wait_until(pilot, lambda: isinstance(app.screen, ChooseScreen), 5, "model chooser")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.engine is not None, 60, "model loaded")
        assert not app.status.error
        await wait_until(pilot, lambda: len(app.log_view.query(".notice")) == 0, 5, "notice removed")
        assert store.get_state("current_model") == "smollm2-135m-instruct"
        await pilot.press("enter")  # the text typed earlier is still in the prompt
        await wait_until(pilot, lambda: idle(app) and logged(app) == 2, what="reply")
    assert app.return_code in (0, None)


def _zero_lora(path: Path, model_path: str) -> None:
    """A real (rank-1, all-zero) llama.cpp LoRA for the bundled model: loads like a trained one
    and leaves the outputs unchanged, so the shared engine is unaffected after the test."""
    import gguf

    reader = gguf.GGUFReader(model_path)
    q = next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight")
    n_in, n_out = int(q.shape[0]), int(q.shape[1])  # GGUF lists dims innermost first
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", 1.0)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((1, n_in), dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((n_out, 1), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


async def test_hot_reload_and_rollback_between_turns(engine, model_path, quick, store, tmp_path):
    adapter_file = tmp_path / "v1.gguf"
    _zero_lora(adapter_file, model_path)
    version = store.add_adapter(str(tmp_path), gguf_path=str(adapter_file)).version
    app = ClawDeskApp(settings=quick, engine=engine, poll_seconds=0.1)
    try:
        async with app.run_test(size=SIZE) as pilot:
            assert app.status.adapter == "none"
            store.set_state("served_adapter", str(version))  # what a promotion does
            await wait_until(pilot, lambda: engine.adapter_version == version, 30, "adapter swapped in")
            await wait_until(pilot, lambda: app.status.adapter == f"v{version}", 5, "status updated")
            assert app.status.notice == "new adapter loaded"
            await send(pilot, app, "Hello")
            assert store.messages(store.list_conversations()[0].id)[1].adapter_version == version
            store.set_state("served_adapter", None)  # a rollback to the base model
            await wait_until(pilot, lambda: engine.adapter_version is None, 30, "rolled back")
            await wait_until(pilot, lambda: app.status.adapter == "none", 5, "status updated")
            # and the palette's rollback action does the same from inside the chat
            store.set_state("served_adapter", str(version))
            await wait_until(pilot, lambda: engine.adapter_version == version, 30, "adapter swapped in again")
            app.action_rollback()
            assert store.served_version() is None
            assert store.get_adapter(version).rolled_back_at is not None
            await wait_until(pilot, lambda: engine.adapter_version is None, 30, "rolled back from the palette")
    finally:
        engine.request_swap(None, None)


async def test_quitting_while_the_hot_reload_poll_ticks(engine, quick, store):
    """Textual removes the widgets on quit before it stops the app's timers; a poll tick in that
    window used to fail the exit (NoMatches: StatusBar). A 0.5 ms poll hit it on every quit."""
    for _ in range(5):
        app = ClawDeskApp(settings=quick, engine=engine, poll_seconds=0.0005)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.01)
            assert app.status.adapter == "none"
        assert not app.is_running  # run_test re-raises an exception from a tick: reaching here is the check
