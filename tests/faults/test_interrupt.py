"""Ctrl-C in the CLI and the TUI. A real SIGINT to a `clawdesk ask` process in the middle of a
reply: exit status 130, "Interrupted — nothing was lost.", no traceback, and both the question
and the partial reply are in the database. In the TUI (through Pilot): Ctrl-C never kills a turn
in flight, Esc stops it keeping the partial answer, Ctrl+Q quits with everything logged."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from fault_helpers import CLI, ROOT, child_env
from turn_gate import hold_after_first_piece

from clawdesk import locations
from clawdesk.store import open_store
from clawdesk.tui import ClawDeskApp

pytestmark = pytest.mark.faults

STORY = "Write a very long story about a dragon who learns to cook, with many chapters."


def test_sigint_mid_reply_in_ask(clawdesk_home, model_path):
    proc = subprocess.Popen([*CLI, "ask", "--max-tokens", "400", "--temperature", "0.8", "--seed", "1", STORY],
                            cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = os.read(proc.stdout.fileno(), 1)  # unbuffered: the reply has started streaming
        assert first, proc.stderr.read().decode()
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Interrupted — nothing was lost." in err and "Traceback" not in err
    store = open_store(locations.db_path())
    try:
        user, reply = store.messages(store.last_conversation_id())
        assert user.role == "user" and user.content == STORY
        assert reply.finish_reason == "cancelled" and 0 < len(reply.response_token_ids) < 400
        assert (first + out).decode(errors="replace").strip().startswith(reply.content.strip()[:20])
        assert [f.kind for f in store.feedback_for(reply.id)] == ["stop"]
    finally:
        store.close()


# A real SIGINT, sent by the child to itself the moment Python starts importing the command line
# (a meta-path hook fires on `clawdesk.cli`): the window a user hits by pressing Ctrl-C right after
# Enter, made deterministic.
SIGINT_DURING_IMPORT = """
import os, signal, sys
# As from a terminal: a child inherits an ignored SIGINT from its parent, and earlier tests in the
# same pytest process (the TUI's) leave it ignored, so the child would never see the signal.
signal.signal(signal.SIGINT, signal.default_int_handler)
from clawdesk import _launch

class SignalOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == "clawdesk.cli":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, SignalOnImport())
sys.argv = ["clawdesk", "--help"]
_launch.main()
"""


def test_sigint_while_the_command_line_is_still_importing(clawdesk_home):
    proc = subprocess.run([CLI[0], "-c", SIGINT_DURING_IMPORT], cwd=ROOT, env=child_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert "Interrupted — nothing was lost." in proc.stderr and "Traceback" not in proc.stderr
    assert "Usage" not in proc.stdout  # it really stopped before the command ran


async def wait_until(pilot, predicate, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"{what} not reached within {timeout}s")


async def test_ctrl_c_esc_and_quit_in_the_tui(engine, quick, store):
    app = ClawDeskApp(settings=quick.replace(max_tokens=400), engine=engine)
    release = hold_after_first_piece(app)
    views = lambda: app.log_view.views  # noqa: E731
    async with app.run_test(size=(110, 36)) as pilot:
        app.prompt.load_text(STORY)
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(views()) == 2 and views()[1].text, what="first piece")
        await pilot.press("ctrl+c")  # a terminal reflex: must not kill the app or the turn
        await pilot.pause(0.2)
        assert app.is_running and app._cancel is not None and not app._cancel.is_set()
        app.screen.focus_next()  # Ctrl-C again with focus away from the prompt
        await pilot.press("ctrl+c")
        assert app.is_running and not app._cancel.is_set()
        await pilot.press("escape")  # Esc is the stop key...
        await wait_until(pilot, lambda: app._cancel is not None and app._cancel.is_set(), 10, "Esc asks to stop")
        release.set()  # ...and the generation, let go, stops at its next token
        await wait_until(pilot, lambda: app._cancel is None, what="stop")
        conv = store.list_conversations()[0]
        user, reply = store.messages(conv.id)
        assert user.content == STORY and reply.finish_reason == "cancelled"

        app.prompt.focus()
        app.prompt.load_text("And one more question, please answer at length.")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(views()) == 4 and views()[3].text, what="second reply starts")
        await pilot.press("ctrl+q")  # quit mid-reply
        await wait_until(pilot, lambda: not app.is_running, timeout=60, what="exit")
    messages = store.messages(conv.id)
    assert [m.role for m in messages][:3] == ["user", "assistant", "user"]  # the question typed before quitting
    assert messages[2].content.startswith("And one more question")
