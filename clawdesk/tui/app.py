"""The chat app: wires the widgets to the chat service and keeps the UI responsive.

Threads and connections: generation, model loading and adapter swaps run in worker threads;
the event loop only renders. SQLite connections are per thread of use — the UI thread has its
own ``Store`` and the workers share a second one (only one generation runs at a time) — so a
feedback click never lands inside a turn's transaction.

This module holds the app's state, the layout and the turn (send, regenerate, stream, stop).
The rest is by concern, each mixed in or owned here: ``conversations`` (the sidebar's actions),
``feedback`` (the keys that act on a message), ``loading`` (the model, F4), ``hot_reload`` (a
promotion or rollback swapped in between turns), ``commands`` (bindings, keymap, help and the
command palette, all from one table), ``state`` (a message's badges from its feedback rows),
``memory`` (the preference memory: "What I learned" and the status bar's "learned: …"),
``learn`` (Learn now, F6: a learning pass in a child process, its progress in the status bar).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer

from .. import locations
from ..chat import ChatService, Turn
from ..engine import Engine
from ..errors import ClawDeskError
from ..lifecycle.promote import rollback
from ..records import Conversation, Message
from ..settings import Settings, load_settings
from ..store import open_store
from . import commands
from .conversations import ConversationActions
from .feedback import MessageFeedback
from .hot_reload import AdapterSwapped, HotReload
from .learn import LearnNow
from .loading import ModelLoading, version_label
from .memory import MemoryActions
from .screens.help import HelpScreen
from .state import MessageState, message_state
from .tree import ConversationTree
from .widgets.chatlog import ChatLog
from .widgets.message import MessageView
from .widgets.prompt import PromptInput
from .widgets.sidebar import Sidebar
from .widgets.statusbar import StatusBar


class ClawDeskApp(ConversationActions, MessageFeedback, MemoryActions, LearnNow, ModelLoading, App[None]):
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "ClawDesk"
    BINDINGS = commands.APP_BINDINGS

    def __init__(self, settings: Settings | None = None, engine: Engine | None = None,
                 conversation_id: int | None = None, model: str | None = None,
                 db_path: Path | None = None, poll_seconds: float = 2.0) -> None:
        """``engine``: an already-open engine (tests pass one; it is not closed on exit).
        Without it the app loads the model itself in a worker, showing progress."""
        super().__init__()
        self.settings = settings or load_settings()
        db_path = db_path or locations.db_path()
        self.store = open_store(db_path, self.settings.db_busy_timeout_ms)
        self._bg_store = open_store(db_path, self.settings.db_busy_timeout_ms)
        self.engine = engine
        self._own_engine = engine is None
        self._model_arg = model
        self._open_cid = conversation_id
        # Feedback and conversation edits go through the UI thread's service; turns through the
        # workers'. The engine is only used for turns (None until loaded).
        self.chat = ChatService(self.store, engine, self.settings)
        self._bg_chat = ChatService(self._bg_store, engine, self.settings)
        self.wire_memory()  # "learned: …" in the status bar, from either service
        self.hot_reload = HotReload(self, self.store, self.settings, poll_seconds, model)
        self.conversation: Conversation | None = None
        self.conv_tree = ConversationTree([])
        self.current_id: int | None = None  # the message the keys act on (last focused)
        self._cancel: threading.Event | None = None
        # Set while no reply is being generated. Quitting waits on it before closing the
        # database: the worker thread writes the turn through its own connection, and closing
        # that connection under it crashes SQLite (seen as a segfault on Ctrl+Q mid-reply).
        self._turn_idle = threading.Event()
        self._turn_idle.set()
        self._pending_user: MessageView | None = None
        self._send_when_ready = False

    # --- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield Sidebar(lambda offset, limit, query: self.store.list_conversations(
                limit=limit, query=query, offset=offset), id="sidebar")
            with Vertical(id="main"):
                yield ChatLog(id="chat")
                yield PromptInput()
        yield StatusBar(id="status")
        yield Footer()

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def log_view(self) -> ChatLog:
        return self.query_one(ChatLog)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    async def on_mount(self) -> None:
        commands.apply_keymap(self, self.settings)
        self.hot_reload.start()
        if self._open_cid is not None:
            await self.open_conversation(self._open_cid)
        # After the first frame: the prompt is there at once however long the history is, and
        # the sidebar's first page (~0.3 s to mount on a loaded 2-core machine) follows.
        self.call_after_refresh(self.refresh_sidebar)
        if self.engine is not None:
            self.engine_ready(self.engine)
        else:
            self.status.notice = "Loading model…"
            self.load_engine(self._model_arg)
        self.prompt.focus()

    async def on_unmount(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
        await self.stop_learning()  # a pass in progress unwinds; the next one settles what it left
        # the cancelled turn is logged (partial answer + 'stop') before we close anything
        await asyncio.to_thread(self._turn_idle.wait, 120)
        self.hot_reload.detach()
        if self.engine is not None and self._own_engine:
            self.engine.close()
        self.scrub_if_pending()
        self.store.close()
        self._bg_store.close()

    def busy(self) -> bool:
        """True (and says so) while a reply is being written: most actions wait for it."""
        if self._cancel is not None:
            self.notify("Still answering — press Esc to stop it first.", severity="warning")
            return True
        return False

    # --- the branch on screen -------------------------------------------------------------------
    def message_state(self, m: Message) -> MessageState:
        return message_state(m, self.store.feedback_for(m.id), self.conv_tree.siblings(m.id))

    def refresh_message(self, message_id: int) -> None:
        self.conv_tree.add(self.store.get_message(message_id), choose=False)
        view = self.log_view.view_for(message_id)
        if view is not None:
            m = self.conv_tree.by_id[message_id]
            view.show_state(self.message_state(m), m)

    async def show_branch(self, upto: int | None = None) -> None:
        """Show the tree's chosen branch, cut after message ``upto`` if given."""
        branch = self.conv_tree.branch()
        if upto is not None:
            branch = branch[: [m.id for m in branch].index(upto) + 1]
        await self.log_view.show_branch(branch, self.message_state)

    # --- sending and regenerating ---------------------------------------------------------------
    async def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        text = event.text.strip()
        if not text or self.busy():
            return
        if self.engine is None:
            if self.status.error:
                self.notify("No model is loaded — press F4 to choose one.", severity="warning")
            else:  # typed before the load finished: send it as soon as the model is there
                self._send_when_ready = True
                self.notify("Sending as soon as the model is loaded…", timeout=3)
            return
        self.prompt.clear()
        if self.conversation is None:
            self.conversation = self.chat.new_conversation()
        parent = self.conv_tree.leaf()
        cid = self.conversation.id
        user_view, reply_view = MessageView("user", text=text), MessageView("assistant")
        await self.log_view.mount_all([user_view, reply_view])
        self._pending_user = user_view
        self._start_turn(reply_view, lambda on_text, cancel: self._bg_chat.send(
            cid, text, parent_id=parent.id if parent else None, on_text=on_text, cancel=cancel))

    async def action_regenerate(self) -> None:
        m = self.target()
        if m is None or self.busy() or self.engine is None:
            return
        await self.show_branch(upto=m.parent_id)
        view = MessageView("assistant")
        await self.log_view.mount(view)
        view.focus()  # so [ / ] compare the answers as soon as this one is done
        self._pending_user = None
        self._start_turn(view, lambda on_text, cancel: self._bg_chat.regenerate(m.id, on_text=on_text, cancel=cancel))

    def _start_turn(self, view: MessageView, run: Callable[..., Turn]) -> None:
        self._cancel = threading.Event()
        self._turn_idle.clear()  # here, not in the worker: a quit right now must still wait
        view.start_stream()
        self.log_view.anchor()
        self.status.notice = ""
        self._generate(view, run, self._cancel)

    @work(thread=True, exclusive=True, group="generate")
    def _generate(self, view: MessageView, run: Callable[..., Turn], cancel: threading.Event) -> None:
        try:
            turn = run(lambda piece: view.post_message(MessageView.Piece(piece)), cancel)
        except ClawDeskError as e:
            view.post_message(MessageView.Finished(None, str(e)))
            return
        finally:
            self._turn_idle.set()
        view.post_message(MessageView.Finished(turn))

    async def on_message_view_completed(self, event: MessageView.Completed) -> None:
        self._cancel = None
        turn = event.turn
        if turn is None:
            self.notify(event.error, title="The reply failed", severity="error", timeout=15)
            if self.conversation is not None:  # the user's message may be logged: reload
                await self.open_conversation(self.conversation.id)
            return
        if self._pending_user is not None:
            self._pending_user.message = turn.user
            self.conv_tree.add(turn.user)
            self._pending_user = None
        self.conv_tree.add(turn.assistant)
        await self.show_branch()
        gen = turn.generation
        self.status.tokens_per_s = gen.tokens_per_s
        self.status.adapter = version_label(turn.assistant.adapter_version)
        if gen.truncated_tokens:
            self.notify(f"The conversation is longer than the context window; the oldest "
                        f"{gen.truncated_tokens} tokens were left out of this reply's context.", timeout=10)
        self.hot_reload.refresh_counts()
        await self.refresh_sidebar()

    def action_cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self.status.notice = "stopped"
        elif not self.prompt.has_focus:
            self.prompt.focus()

    # --- adapters -------------------------------------------------------------------------------
    def on_adapter_swapped(self, event: AdapterSwapped) -> None:
        self.status.adapter = version_label(event.version)
        self.status.error = False
        self.status.notice = ("new adapter loaded" if event.version is not None else "serving the base model")

    def action_rollback(self) -> None:
        """One step back along the served version's parents; the poll swaps it in between turns."""
        current = self.store.served_version()
        if current is None:
            self.notify("The base model is already served; nothing to roll back.", timeout=6)
            return
        target = self.store.get_adapter(current).parent_version
        try:
            rollback(self.store, target)
        except ClawDeskError as e:
            self.notify(str(e), title="Rollback failed", severity="error", timeout=15)
            return
        self.notify(f"Rolled back to {'version %d' % target if target else 'the base model'}.", timeout=6)
        self.hot_reload.tick()

    # --- help and palette -----------------------------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen(commands.binding_rows(self), str(locations.settings_path())))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from commands.palette_commands(self)
