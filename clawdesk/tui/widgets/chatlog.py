"""The scrolling column of messages for the branch on screen.

It stays anchored to the bottom while an answer streams in; scrolling up releases the anchor
(Textual's ``anchor``), so reading an earlier message is never yanked away.
"""

from __future__ import annotations

from textual.containers import VerticalScroll

from .message import MessageView


class ChatLog(VerticalScroll, can_focus=False):
    @property
    def views(self) -> list[MessageView]:
        return list(self.query_children(MessageView))

    def view_for(self, message_id: int) -> MessageView | None:
        return next((v for v in self.views if v.message and v.message.id == message_id), None)
