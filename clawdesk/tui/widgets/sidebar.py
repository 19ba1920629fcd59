"""Conversation list with full-text search (the store's FTS index over every message)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message as UIMessage
from textual.widgets import Input, Label, ListItem, ListView

from ...records import Conversation


class ConversationItem(ListItem):
    def __init__(self, conversation: Conversation) -> None:
        super().__init__(Label(conversation.name, markup=False))
        self.conversation = conversation


class Sidebar(Vertical):
    BINDINGS = [
        Binding("delete,d", "delete_highlighted", "Delete", id="delete_conversation"),
    ]

    class Open(UIMessage):
        def __init__(self, conversation_id: int) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    class Delete(UIMessage):
        def __init__(self, conversation_id: int) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    class Search(UIMessage):
        def __init__(self, query: str) -> None:
            super().__init__()
            self.query = query

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search conversations…", id="search")
        yield ListView(id="conversations")

    async def show(self, conversations: list[Conversation], current: int | None) -> None:
        items = self.query_one(ListView)
        await items.clear()
        await items.extend(ConversationItem(c) for c in conversations)
        ids = [c.id for c in conversations]
        items.index = ids.index(current) if current in ids else None

    @property
    def conversation_ids(self) -> list[int]:
        return [item.conversation.id for item in self.query(ConversationItem)]

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Search(event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        items = self.query_one(ListView)
        if items.index is None and items.children:
            items.index = 0  # Enter from the search box lands on the first result
        items.focus()

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, ConversationItem):
            self.post_message(self.Open(event.item.conversation.id))

    def action_delete_highlighted(self) -> None:
        item = self.query_one(ListView).highlighted_child
        if isinstance(item, ConversationItem):
            self.post_message(self.Delete(item.conversation.id))
