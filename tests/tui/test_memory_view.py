"""The preference memory in the TUI, through Pilot with the real model and a real SQLite file:
a correction that states a wish shows "learned: …" in the status bar and holds the next
reply to it; "What I learned" (F5, and the palette) lists, adds, rewords and deletes wishes."""

from __future__ import annotations

from textual.widgets import Input, OptionList, TextArea

from clawdesk.store import Store
from clawdesk.tui import ClawDeskApp, commands
from clawdesk.tui.screens.editor import EditorScreen, LineEditScreen
from clawdesk.tui.screens.memory import MemoryScreen
from test_chat_app import SIZE, send, wait_until

NOTE = "(Keep every answer under 30 words.)"


async def test_a_correction_is_learned_shown_and_used_in_the_next_reply(engine, quick, store: Store):
    app = ClawDeskApp(settings=quick, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Why is the sky blue?")
        await pilot.press("up", "c")
        await wait_until(pilot, lambda: isinstance(app.screen, EditorScreen), 5, "editor")
        app.screen.query_one(TextArea).load_text("under 30 words please")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, EditorScreen), 5, "editor closed")
        assert app.status.notice == "learned: Keep every answer under 30 words. (f5: what I learned)"
        assert len(store.wishes()) == 1
        await send(pilot, app, "How do magnets work?")
        reply = store.get_message(app.conv_tree.leaf().id)
        # the engine holds the reply to the number rather than the note stating it (memory/literal.py)
        assert reply.sampling["max_words"] == 29 and len(reply.content.split()) <= 29
        assert NOTE not in engine.detokenize(reply.prompt_token_ids) and store.note_of(reply.id) is None


async def test_a_complaint_learned_in_the_worker_reaches_the_status_bar(engine, quick, store: Store):
    app = ClawDeskApp(settings=quick, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, app, "Why is the ocean salty?")
        await send(pilot, app, "No lists please, and call me Dana.")
        assert app.status.notice.startswith("learned: Write plain sentences, no lists. Call me Dana.")


async def test_what_i_learned_lists_adds_rewords_and_deletes(engine, quick, store: Store):
    store.add_wish("Keep every answer under 30 words.", "length")
    app = ClawDeskApp(settings=quick, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: isinstance(app.screen, MemoryScreen), 5, "memory screen")
        screen = app.screen
        assert "appended to your latest message" in str(screen.query_one("#where").render())
        options = screen.query_one(OptionList)
        assert options.option_count == 1 and "under 30 words" in str(options.get_option_at_index(0).prompt)

        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, LineEditScreen), 5, "add dialog")
        app.screen.query_one(Input).value = "call me Dana"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MemoryScreen), 5, "back")
        assert [w.text for w in store.wishes()] == ["Keep every answer under 30 words.", "Call me Dana."]

        await pilot.press("e")  # the new wish is highlighted
        await wait_until(pilot, lambda: isinstance(app.screen, LineEditScreen), 5, "edit dialog")
        app.screen.query_one(Input).value = "Call me Dana, please."
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MemoryScreen), 5, "back")
        assert store.wishes()[1].text == "Call me Dana, please."

        screen.query_one(OptionList).highlighted = 0
        await pilot.press("d")
        assert [w.text for w in store.wishes()] == ["Call me Dana, please."]
        assert store.wishes(include_deleted=True)[0].status == "deleted"
        assert screen.query_one(OptionList).option_count == 1
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, MemoryScreen), 5, "closed")


async def test_what_i_learned_is_in_the_palette_and_remappable(engine, quick, store: Store):
    app = ClawDeskApp(settings=quick.replace(keymap={"memory": "f10"}), engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        titles = {c.title: c for c in commands.palette_commands(app)}
        assert "(f10)" in titles["What I learned"].help
        await pilot.press("f10")
        await wait_until(pilot, lambda: isinstance(app.screen, MemoryScreen), 5, "memory screen")
        assert "Nothing yet" in str(app.screen.query_one("#empty").render())
