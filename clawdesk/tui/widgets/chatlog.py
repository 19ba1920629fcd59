"""The scrolling column of messages for the branch on screen.

It stays anchored to the bottom while an answer streams in; scrolling up releases the anchor
(Textual's ``anchor``), so reading an earlier message is never yanked away.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.containers import VerticalScroll

from ...records import Message
from ..state import MessageState
from .message import MessageView


class ChatLog(VerticalScroll, can_focus=False):
    @property
    def views(self) -> list[MessageView]:
        return list(self.query_children(MessageView))

    def view_for(self, message_id: int) -> MessageView | None:
        return next((v for v in self.views if v.message and v.message.id == message_id), None)

    async def show_branch(self, branch: list[Message], state_of: Callable[[Message], MessageState]) -> None:
        """Make the column show ``branch``, keeping the views of the prefix it shares with what
        is on screen, so a sibling switch re-renders only what changed below the fork."""
        views = self.views
        keep = 0
        while keep < min(len(views), len(branch)) and views[keep].message and views[keep].message.id == branch[keep].id:
            keep += 1
        if views[keep:]:
            await self.remove_children(views[keep:])
        new = [MessageView(m.role, m) for m in branch[keep:]]
        if new:
            await self.mount_all(new)
        for view, m in zip(self.views, branch):
            view.show_state(state_of(m), m)
