"""The conversation actions: open, new, search, rename, persona, export and delete.

Deleting is real forgetting: the rows go with their feedback and samples (``ChatService``), and
the text is then scrubbed from the database file's free pages, full-text index and write-ahead
log in a worker, as ``clawdesk forget`` does. Mixed into ``ClawDeskApp``; the methods annotate
``self`` with it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from textual import work
from textual.widgets import Input

from ..chat import transcript
from ..errors import ClawDeskError
from ..store import open_store
from .screens.confirm import ConfirmScreen
from .screens.editor import EditorScreen, LineEditScreen
from .tree import ConversationTree
from .widgets.sidebar import Sidebar

if TYPE_CHECKING:
    from .app import ClawDeskApp


class ConversationActions:
    _scrub_pending = False  # a scrub failed (another process held the file): retry on quit

    async def refresh_sidebar(self: ClawDeskApp, query: str | None = None) -> None:
        if query is None:
            query = self.query_one("#search", Input).value
        await self.query_one(Sidebar).reload(query.strip() or None,
                                             self.conversation.id if self.conversation else None)

    async def open_conversation(self: ClawDeskApp, conversation_id: int) -> None:
        self.conversation = self.store.get_conversation(conversation_id)
        self.conv_tree = ConversationTree(self.store.messages(conversation_id))
        self.current_id = None
        await self.log_view.remove_children()
        await self.show_branch()
        self.log_view.scroll_end(animate=False)

    async def on_sidebar_open(self: ClawDeskApp, event: Sidebar.Open) -> None:
        if self.busy():
            return
        await self.open_conversation(event.conversation_id)
        self.prompt.focus()

    async def on_sidebar_search(self: ClawDeskApp, event: Sidebar.Search) -> None:
        await self.refresh_sidebar(event.query)

    def on_sidebar_delete(self: ClawDeskApp, event: Sidebar.Delete) -> None:
        self.action_delete_conversation(event.conversation_id)

    async def action_new_conversation(self: ClawDeskApp) -> None:
        if self.busy():
            return
        self.conversation = None
        self.conv_tree = ConversationTree([])
        self.current_id = None
        await self.log_view.remove_children()
        await self.refresh_sidebar()
        self.prompt.focus()

    def action_toggle_sidebar(self: ClawDeskApp) -> None:
        sidebar = self.query_one(Sidebar)
        sidebar.display = not sidebar.display
        if not sidebar.display and sidebar.has_focus_within:
            self.prompt.focus()

    def action_search(self: ClawDeskApp) -> None:
        self.query_one(Sidebar).display = True
        self.query_one("#search", Input).focus()

    def action_rename(self: ClawDeskApp) -> None:
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

    def action_system_prompt(self: ClawDeskApp) -> None:
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

    def action_export(self: ClawDeskApp, fmt: str) -> None:
        if self.conversation is None:
            self.notify("Nothing to export yet.")
            return
        path = transcript.export(self.store, self.conversation.id, fmt, branch=self.conv_tree.branch())
        self.notify(f"Exported to {path}", title="Export", timeout=10)

    def action_delete_conversation(self: ClawDeskApp, conversation_id: int | None = None) -> None:
        cid = conversation_id or (self.conversation.id if self.conversation else None)
        if cid is None or self.busy():
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
    def _scrub(self: ClawDeskApp) -> None:
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

    def scrub_if_pending(self: ClawDeskApp) -> None:
        """On quit, once every other connection of ours is idle."""
        if self._scrub_pending:
            with contextlib.suppress(ClawDeskError):
                self.store.scrub()  # best effort: `clawdesk forget --compact` says if it still could not
