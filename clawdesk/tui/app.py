"""The chat app: wires the widgets to the chat service and keeps the UI responsive.

Threads and connections: generation, model loading and adapter swaps run in worker threads;
the event loop only renders. SQLite connections are per thread of use — the UI thread has its
own ``Store`` and the workers share a second one (only one generation runs at a time) — so a
feedback click never lands inside a turn's transaction.

Every action is an ``action_*`` method with a ``Binding`` (id = the name used in the settings
file's ``[keymap]``) and a command-palette entry; the single-letter message keys live on
``MessageView`` and call these actions with the ``app.`` prefix.
"""

from __future__ import annotations

import asyncio
import contextlib

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message as UIMessage
from textual.screen import Screen
from textual.widgets import Footer, Input, Markdown

from .. import catalog, locations
from ..chat import ChatService, Turn, open_engine, served_adapter
from ..chat import transcript
from ..engine import Engine
from ..errors import ClawDeskError
from ..records import Conversation, Message
from ..settings import Settings, load_settings
from ..store import Store, open_store
from .screens.choose import ChooseScreen
from .screens.confirm import ConfirmScreen
from .screens.editor import EditorScreen, LineEditScreen
from .screens.feedback import ThumbsDownScreen
from .screens.help import HelpScreen
from .tree import ConversationTree
from .widgets.chatlog import ChatLog
from .widgets.message import MESSAGE_BINDINGS, MessageState, MessageView
from .widgets.prompt import PromptInput
from .widgets.sidebar import Sidebar
from .widgets.statusbar import StatusBar

FEEDBACK_ACTIONS = {"thumbs_up", "thumbs_down", "correct", "regenerate", "exclude"}


class AdapterSwapped(UIMessage):
    """Posted from whichever thread the engine applied a swap in."""

    def __init__(self, version: int | None, model_path: str) -> None:
        super().__init__()
        self.version, self.model_path = version, model_path


class ClawDeskApp(App[None]):
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "ClawDesk"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
        Binding("escape", "cancel", "Stop", id="cancel"),
        Binding("ctrl+n", "new_conversation", "New", id="new_conversation"),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar", id="toggle_sidebar"),
        Binding("ctrl+f", "search", "Search", id="search"),
        Binding("f2", "rename", "Rename", id="rename", show=False),
        Binding("f3", "system_prompt", "Persona", id="system_prompt", show=False),
        Binding("f4", "switch_model", "Model", id="switch_model", show=False),
        Binding("f8", "export('md')", "Export .md", id="export_markdown", show=False),
        Binding("f9", "export('json')", "Export .json", id="export_json", show=False),
        Binding("f1,question_mark", "help", "Help", id="help"),
    ]

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
        self.poll_seconds = poll_seconds
        # Feedback and conversation edits go through the UI thread's service; turns through the
        # workers'. The engine is only used for turns (None until loaded).
        self.chat = ChatService(self.store, engine, self.settings)  # type: ignore[arg-type]
        self._bg_chat = ChatService(self._bg_store, engine, self.settings)  # type: ignore[arg-type]
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
        self._served: str | None = None
        self._previous_on_swap = None
        self._send_when_ready = False

    # --- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield Sidebar(id="sidebar")
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
        self._apply_keymap()
        self._served = self.store.get_state("served_adapter")
        if self._open_cid is not None:
            await self.open_conversation(self._open_cid)
        await self.refresh_sidebar()
        if self.engine is not None:
            self._engine_ready(self.engine)
        else:
            self.status.notice = "Loading model…"
            self._load_engine(self._model_arg)
        self._refresh_counts()
        self.set_interval(self.poll_seconds, self._poll)
        self.prompt.focus()

    def _apply_keymap(self) -> None:
        known = {b.id for b in self._all_bindings() if b.id}
        unknown = sorted(set(self.settings.keymap) - known)
        if unknown:
            self.notify(f"Unknown binding id(s) in [keymap]: {', '.join(unknown)} — F1 lists the ids.",
                        severity="warning", timeout=8)
        self.set_keymap({k: str(v) for k, v in self.settings.keymap.items() if k in known})

    async def on_unmount(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
        # the cancelled turn is logged (partial answer + 'stop') before we close anything
        await asyncio.to_thread(self._turn_idle.wait, 120)
        if self.engine is not None:
            self.engine.on_swap = self._previous_on_swap
            if self._own_engine:
                self.engine.close()
        if getattr(self, "_scrub_pending", False):
            with contextlib.suppress(ClawDeskError):
                self.store.scrub()  # best effort: `clawdesk forget --compact` says if it still could not
        self.store.close()
        self._bg_store.close()

    # --- engine ---------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="engine")
    def _load_engine(self, model: str | None) -> None:
        try:
            engine = open_engine(self._bg_store, self.settings, model=model)
        except ClawDeskError as e:
            self.call_from_thread(self._engine_failed, str(e))
            return
        self.call_from_thread(self._engine_ready, engine)

    def _engine_ready(self, engine: Engine) -> None:
        notices = self.log_view.query(".notice")
        if notices:  # recovered from a failed load: drop its messages
            notices.remove()
            self.clear_notifications()
        self.engine = engine
        self.chat.engine = self._bg_chat.engine = engine
        self._previous_on_swap = engine.on_swap
        # Called by the engine in whichever thread applies a swap; post_message is thread-safe.
        engine.on_swap = lambda version: self.post_message(AdapterSwapped(version, engine.model_path))
        self.status.error = False
        self.status.notice = ""
        self.status.model = self.chat.model_name
        self.status.adapter = _version(engine.adapter_version)
        if self._send_when_ready:
            self._send_when_ready = False
            self.prompt.action_send()

    def _engine_failed(self, message: str) -> None:
        self.status.error = True
        self.status.notice = "No model loaded — F4 picks another"
        self.notify(message, title="Could not load the model", severity="error", timeout=30)
        self.log_view.mount(Markdown(f"**Could not load the model.** {message}\n\nPress F4 to choose another "
                                     "model, or fix it with `clawdesk models list` / `clawdesk models add "
                                     "PATH.gguf`.", classes="notice"))

    def on_adapter_swapped(self, event: AdapterSwapped) -> None:
        self.status.adapter = _version(event.version)
        self.status.error = False
        self.status.notice = ("new adapter loaded" if event.version is not None else "serving the base model")

    def _poll(self) -> None:
        """Hot reload: a promotion or rollback changes the store's 'served_adapter' key."""
        if not self.is_running:
            # Textual removes the widgets on quit before it stops the app's timers; a tick in
            # that window found no StatusBar and failed the exit (seen in CI, 0.1 s poll).
            return
        value = self.store.get_state("served_adapter")
        if value != self._served and self.engine is not None:
            self._served = value
            adapter, version, merged = served_adapter(self.store)
            model_path = merged
            if model_path is None and self.engine.model_path != self._base_path():
                model_path = self._base_path()  # back from a merged model to base + adapter
            self.status.notice = "loading new adapter…"
            self._swap(adapter, version, model_path)
        self._refresh_counts()

    def _base_path(self) -> str | None:
        try:
            return catalog.resolve(self.store, self._model_arg or catalog.current_name(self.store, self.settings)).path
        except ClawDeskError:
            return None

    @work(thread=True, group="swap")
    def _swap(self, adapter: str | None, version: int | None, model_path: str | None) -> None:
        """A turn in progress finishes on the old weights; the engine applies this after it."""
        assert self.engine is not None
        try:
            self.engine.request_swap(adapter, version, model_path=model_path)
        except ClawDeskError as e:
            self.call_from_thread(self.notify, str(e), title="Adapter not loaded", severity="error", timeout=15)

    def _refresh_counts(self) -> None:
        counts = self.store.counts()
        self.status.samples_ready = counts["samples_ready"]
        runs = self.store.runs(limit=1)
        if runs:
            run = runs[0]
            self.status.last_run = f"last training #{run.id}: {run.status}"

    # --- conversations --------------------------------------------------------------------------
    def _busy(self) -> bool:
        if self._cancel is not None:
            self.notify("Still answering — press Esc to stop it first.", severity="warning")
            return True
        return False

    async def refresh_sidebar(self, query: str | None = None) -> None:
        if query is None:
            query = self.query_one("#search", Input).value
        convs = self.store.list_conversations(query=query.strip() or None)
        await self.query_one(Sidebar).show(convs, self.conversation.id if self.conversation else None)

    async def open_conversation(self, conversation_id: int) -> None:
        self.conversation = self.store.get_conversation(conversation_id)
        self.conv_tree = ConversationTree(self.store.messages(conversation_id))
        self.current_id = None
        await self.log_view.remove_children()
        await self.show_branch()
        self.log_view.scroll_end(animate=False)

    async def on_sidebar_open(self, event: Sidebar.Open) -> None:
        if self._busy():
            return
        await self.open_conversation(event.conversation_id)
        self.prompt.focus()

    async def on_sidebar_search(self, event: Sidebar.Search) -> None:
        await self.refresh_sidebar(event.query)

    def on_sidebar_delete(self, event: Sidebar.Delete) -> None:
        self.action_delete_conversation(event.conversation_id)

    async def action_new_conversation(self) -> None:
        if self._busy():
            return
        self.conversation = None
        self.conv_tree = ConversationTree([])
        self.current_id = None
        await self.log_view.remove_children()
        await self.refresh_sidebar()
        self.prompt.focus()

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one(Sidebar)
        sidebar.display = not sidebar.display
        if not sidebar.display and sidebar.has_focus_within:
            self.prompt.focus()

    def action_search(self) -> None:
        self.query_one(Sidebar).display = True
        self.query_one("#search", Input).focus()

    def action_rename(self) -> None:
        conv = self.conversation
        if conv is None:
            self.notify("Nothing to rename yet — send a message first.")
            return

        async def done(name: str | None) -> None:
            if name is not None and name.strip():
                self.chat.rename(conv.id, name)
                self.conversation = self.store.get_conversation(conv.id)
                await self.refresh_sidebar()

        self.push_screen(LineEditScreen("Rename conversation", conv.name), done)

    def action_delete_conversation(self, conversation_id: int | None = None) -> None:
        cid = conversation_id or (self.conversation.id if self.conversation else None)
        if cid is None or self._busy():
            return
        name = self.store.get_conversation(cid).name

        async def done(yes: bool | None) -> None:
            if not yes:
                return
            self.chat.delete_conversation(cid)
            self.notify(f"Deleted “{name}” with its messages, feedback and samples.")
            self._scrub()
            if self.conversation and self.conversation.id == cid:
                await self.action_new_conversation()
            else:
                await self.refresh_sidebar()

        self.push_screen(ConfirmScreen(f"Delete “{name}”?\nIts messages, feedback and training samples "
                                       f"are deleted for good."), done)

    @work(thread=True, exclusive=True, group="scrub")
    def _scrub(self) -> None:
        """Make the deleted text unrecoverable from the database files, as `clawdesk forget`
        does, on its own connection in a worker (VACUUM can take seconds on a long history). If
        another process holds the log open, it is tried again when the chat closes."""
        store = open_store(self.store.path)
        try:
            store.scrub()
            self._scrub_pending = False
        except ClawDeskError:
            self._scrub_pending = True
        finally:
            store.close()

    def action_system_prompt(self) -> None:
        if self.engine is None:
            self.notify("The model is not loaded yet.")
            return
        current = self.conversation.system_prompt if self.conversation else self.settings.system_prompt

        async def done(text: str | None) -> None:
            if text is None:
                return
            if self.conversation is None:
                self.conversation = self.chat.new_conversation(system_prompt=text.strip())
            else:
                self.chat.set_system_prompt(self.conversation.id, text.strip())
                self.conversation = self.store.get_conversation(self.conversation.id)
            self.notify("System prompt saved; it applies from the next reply.")
            await self.refresh_sidebar()

        self.push_screen(EditorScreen("System prompt / persona for this conversation", current), done)

    def action_export(self, fmt: str) -> None:
        if self.conversation is None:
            self.notify("Nothing to export yet.")
            return
        path = transcript.export(self.store, self.conversation.id, fmt, branch=self.conv_tree.branch())
        self.notify(f"Exported to {path}", title="Export", timeout=10)

    def action_switch_model(self) -> None:
        current = self.chat.model_name if self.engine else None
        choices = [(m.name, f"{'●' if m.name == current else ' '} {m.name}  ({'bundled' if m.bundled else m.path})")
                   for m in catalog.all_models(self.store)]

        def done(name: str | None) -> None:
            if name and name != current and not self._busy():
                self.status.error = False
                self.status.notice = f"Loading {name}…"
                self._switch_model(name)

        self.push_screen(ChooseScreen("Chat with which model? (`clawdesk models add` registers more)",
                                      choices, current), done)

    @work(thread=True, exclusive=True, group="engine")
    def _switch_model(self, name: str) -> None:
        try:
            entry = catalog.use_model(self._bg_store, name)
            if self.engine is None:
                engine = open_engine(self._bg_store, self.settings, model=entry.name)
                self.call_from_thread(self._engine_ready, engine)
                return
            # Another model: the served adapter was trained for the old one, so drop it.
            self.engine.request_swap(None, None, model_path=entry.path)
            self.engine.model_name = entry.name  # type: ignore[attr-defined]
        except ClawDeskError as e:
            self.call_from_thread(self._engine_failed, str(e))
            return
        self._model_arg = entry.name
        self.call_from_thread(self._engine_ready, self.engine)

    # --- the branch on screen -------------------------------------------------------------------
    def _state(self, m: Message) -> MessageState:
        state = MessageState(excluded=m.exclude, stopped=m.finish_reason == "cancelled")
        for f in self.store.feedback_for(m.id):
            if f.kind in ("thumbs_up", "thumbs_down"):
                state.thumbs = "up" if f.kind == "thumbs_up" else "down"
                state.reason = f.reason if f.kind == "thumbs_down" else ""
            elif f.kind == "correction":
                state.correction = f.correction
            elif f.kind == "exclude":
                state.excluded = True
        sibs = self.conv_tree.siblings(m.id)
        state.siblings = len(sibs)
        state.sibling = [s.id for s in sibs].index(m.id) + 1
        return state

    def refresh_message(self, message_id: int) -> None:
        self.conv_tree.add(self.store.get_message(message_id), choose=False)
        view = self.log_view.view_for(message_id)
        if view is not None:
            view.show_state(self._state(self.conv_tree.by_id[message_id]), self.conv_tree.by_id[message_id])

    async def show_branch(self, upto: int | None = None) -> None:
        """Make the screen show the tree's chosen branch (cut after ``upto``), keeping the views
        of the common prefix so a sibling switch re-renders only what changed."""
        branch = self.conv_tree.branch()
        if upto is not None:
            branch = branch[: [m.id for m in branch].index(upto) + 1]
        views = self.log_view.views
        keep = 0
        while keep < min(len(views), len(branch)) and views[keep].message and views[keep].message.id == branch[keep].id:
            keep += 1
        if views[keep:]:
            await self.log_view.remove_children(views[keep:])
        new = [MessageView(m.role, m) for m in branch[keep:]]
        if new:
            await self.log_view.mount_all(new)
        for view, m in zip(self.log_view.views, branch):
            view.show_state(self._state(m), m)

    def on_message_view_focused(self, event: MessageView.Focused) -> None:
        if event.view.message is not None:
            self.current_id = event.view.message.id

    def action_focus_message(self, delta: int) -> None:
        views = self.log_view.views
        if not views:
            return
        focused = self.focused
        index = views.index(focused) if focused in views else len(views)
        target = index + delta
        if target >= len(views):
            self.prompt.focus()
        elif target >= 0:
            views[target].focus()

    def on_prompt_input_leave_up(self, event: PromptInput.LeaveUp) -> None:
        self.action_focus_message(-1)

    def _target(self, any_role: bool = False) -> Message | None:
        """The message the keys act on: the focused one, else the last focused, else the
        newest reply on screen. Feedback needs an assistant reply (``any_role`` lifts that)."""
        focused = self.focused
        if isinstance(focused, MessageView) and focused.message is None:
            self.notify("This reply is still being written.")
            return None
        if isinstance(focused, MessageView) and focused.message is not None:
            m = focused.message
        elif self.current_id in self.conv_tree.by_id and self.log_view.view_for(self.current_id):
            m = self.conv_tree.by_id[self.current_id]
        else:
            replies = [m for m in self.conv_tree.branch() if m.role == "assistant"]
            m = replies[-1] if replies else None
        if m is None:
            self.notify("No reply to act on yet.")
            return None
        if m.role != "assistant" and not any_role:
            self.notify("Feedback applies to the assistant's replies — move to one with ↑/↓ or j/k.")
            return None
        return self.conv_tree.by_id.get(m.id, m)

    # --- sending and regenerating ---------------------------------------------------------------
    async def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        text = event.text.strip()
        if not text or self._busy():
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
        m = self._target()
        if m is None or self._busy() or self.engine is None:
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
        self.status.adapter = _version(turn.assistant.adapter_version)
        if gen.truncated_tokens:
            self.notify(f"The conversation is longer than the context window; the oldest "
                        f"{gen.truncated_tokens} tokens were left out of this reply's context.", timeout=10)
        self._refresh_counts()
        await self.refresh_sidebar()

    def action_cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self.status.notice = "stopped"
        elif not self.prompt.has_focus:
            self.prompt.focus()

    # --- feedback -------------------------------------------------------------------------------
    def action_thumbs_up(self) -> None:
        m = self._target()
        if m is not None:
            self.chat.thumbs_up(m.id)
            self.refresh_message(m.id)

    def action_thumbs_down(self) -> None:
        m = self._target()
        if m is None:
            return
        fb = self.chat.thumbs_down(m.id)  # written now; the reason is optional and comes after
        self.refresh_message(m.id)

        def done(answer: tuple[str, str] | None) -> None:
            if answer:
                self.chat.explain(fb.id, *answer)
                self.refresh_message(m.id)

        self.push_screen(ThumbsDownScreen(), done)

    def action_correct(self) -> None:
        m = self._target()
        if m is None:
            return

        def done(text: str | None) -> None:
            if text is not None and text.strip() and text.strip() != m.content.strip():
                self.chat.correct(m.id, text.strip())
                self.refresh_message(m.id)

        self.push_screen(EditorScreen("Correct the answer — your version teaches the model", m.content,
                                      "Type to replace the answer (an arrow key edits it instead) · Ctrl+S saves the correction · Esc cancels"), done)

    def action_exclude(self) -> None:
        m = self._target()
        if m is None:
            return
        if m.exclude:
            self.notify("Already excluded from learning.")
            return
        self.chat.exclude(m.id)
        self.refresh_message(m.id)

    def action_copy_message(self) -> None:
        focused = self.focused
        m = focused.message if isinstance(focused, MessageView) else self._target()
        if m is not None:
            self.copy_to_clipboard(m.content)
            self.notify("Copied to the clipboard.", timeout=2)

    async def action_sibling(self, delta: int) -> None:
        m = self._target(any_role=True)
        if m is None or self._busy():
            return
        other = self.conv_tree.step(m.id, delta)
        if other is None:
            self.bell()
            return
        await self.show_branch()
        view = self.log_view.view_for(other.id)
        if view is not None:
            view.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the message keys from the footer while a user message has focus."""
        if action in FEEDBACK_ACTIONS:
            focused = self.focused
            if isinstance(focused, MessageView) and focused.role != "assistant":
                return None  # shown dimmed: these keys only act on replies
        return True

    # --- help and palette -----------------------------------------------------------------------
    def _all_bindings(self) -> list[Binding]:
        groups = (self.BINDINGS, MESSAGE_BINDINGS, PromptInput.BINDINGS, Sidebar.BINDINGS)
        return [b for group in groups for b in group if isinstance(b, Binding)]

    def binding_rows(self) -> list[tuple[str, str, str, str]]:
        where = {id(b): name for name, group in (("anywhere", self.BINDINGS), ("message", MESSAGE_BINDINGS),
                                                  ("prompt", PromptInput.BINDINGS), ("sidebar", Sidebar.BINDINGS))
                 for b in group}
        rows = []
        for b in self._all_bindings():
            keys = self._keymap.get(b.id, b.key) if b.id else b.key
            shown = ", ".join(self.get_key_display(Binding(k.strip(), b.action)) for k in keys.split(","))
            rows.append((where[id(b)], shown, b.description, b.id or ""))
        rows.append(("anywhere", "ctrl+p", "Command palette", ""))
        return rows

    def action_rollback(self) -> None:
        """One step back along the served version's parents; the poll swaps it in between turns."""
        from ..lifecycle.promote import rollback

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
        self._poll()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.binding_rows(), str(locations.settings_path())))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands = [
            ("New conversation", "Start a fresh conversation (Ctrl+N)", self.action_new_conversation),
            ("Rename conversation", "Give this conversation a name (F2)", self.action_rename),
            ("Delete conversation", "Delete this conversation with its feedback and samples", self.action_delete_conversation),
            ("Search conversations", "Full-text search over every message (Ctrl+F)", self.action_search),
            ("Toggle sidebar", "Show or hide the conversation list (Ctrl+B)", self.action_toggle_sidebar),
            ("Thumbs up", "Rate the selected reply 👍 (+)", self.action_thumbs_up),
            ("Thumbs down", "Rate the selected reply 👎, optionally say why (-)", self.action_thumbs_down),
            ("Correct reply", "Edit the reply; your version is the correction (c)", self.action_correct),
            ("Regenerate reply", "A new answer; the old one stays as a sibling (r)", self.action_regenerate),
            ("Previous answer", "Show the previous sibling answer ([)", lambda: self.action_sibling(-1)),
            ("Next answer", "Show the next sibling answer (])", lambda: self.action_sibling(1)),
            ("Don't learn from this reply", "Exclude the selected reply from training (x)", self.action_exclude),
            ("Copy reply", "Copy the selected message to the clipboard (y)", self.action_copy_message),
            ("Stop generating", "Keep the partial answer, marked stopped (Esc)", self.action_cancel),
            ("System prompt / persona", "Set this conversation's system prompt (F3)", self.action_system_prompt),
            ("Switch model", "Chat with another registered model (F4)", self.action_switch_model),
            ("Export conversation to Markdown", "Write the branch on screen to a .md file (F8)", lambda: self.action_export("md")),
            ("Export conversation to JSON", "Write every branch with feedback to a .json file (F9)", lambda: self.action_export("json")),
            ("Roll back the adapter", "Serve the version before the current one (or the base model)", self.action_rollback),
            ("Keys and help", "Every key binding and how to remap it (F1)", self.action_help),
        ]
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)


def _version(version: int | None) -> str:
    return f"v{version}" if version is not None else "none"
