"""The prompt box: Enter sends, Shift+Enter or Ctrl+J starts a new line (most terminals send
Shift+Enter as plain Enter, so Ctrl+J is the one that always works)."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message as UIMessage
from textual.widgets import TextArea


class PromptInput(TextArea):
    BINDINGS = [
        # priority: TextArea would otherwise consume Enter as a newline before any binding runs.
        Binding("enter", "send", "Send", id="send", priority=True),
        Binding("shift+enter,ctrl+j", "newline", "New line", id="newline", priority=True, show=False),
    ]

    class Submitted(UIMessage):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class LeaveUp(UIMessage):
        """Up on the first line: move focus to the messages."""

    def __init__(self) -> None:
        super().__init__(id="prompt", soft_wrap=True, tab_behavior="focus", compact=True,
                         placeholder="Message your agent — Enter sends, Ctrl+J new line, F1 help")

    def action_send(self) -> None:
        # A priority binding runs as soon as Enter reaches the app, possibly before the keys
        # typed just before it (same terminal read) are in the document; reading the text from
        # this widget's own queue puts it after them.
        self.call_later(lambda: self.post_message(self.Submitted(self.text)))

    def action_newline(self) -> None:
        self.insert("\n")

    def action_cursor_up(self, select: bool = False) -> None:
        if not select and self.cursor_location[0] == 0:
            self.post_message(self.LeaveUp())
        else:
            super().action_cursor_up(select)
