"""Text editing dialogs: a multi-line editor (corrections, the system prompt) and a one-line
input (renaming). Ctrl+S saves, Esc cancels — nothing is written on cancel."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, TextArea


class EditorScreen(ModalScreen[str | None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="editor_save", priority=True),
        Binding("escape", "cancel", "Cancel", id="editor_cancel"),
    ]

    def __init__(self, title: str, text: str, hint: str = "Ctrl+S saves · Esc cancels") -> None:
        super().__init__()
        self.title_text, self.text, self.hint = title, text, hint

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="editor"):
            yield Label(self.title_text, classes="title")
            yield TextArea(self.text, soft_wrap=True, id="editor")
            yield Label(self.hint, classes="hint")

    def on_mount(self) -> None:
        # The whole text starts selected: typing rewrites it (the usual correction), an arrow
        # key keeps it and edits in place. Found in a real terminal: with the cursor at the end,
        # Ctrl+A only goes to the line start and people end up splicing into the old answer.
        editor = self.query_one(TextArea)
        editor.focus()
        editor.select_all()

    def action_save(self) -> None:
        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class LineEditScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="line_cancel")]

    def __init__(self, title: str, value: str) -> None:
        super().__init__()
        self.title_text, self.value = title, value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, classes="title")
            yield Input(self.value, id="line")
            yield Label("Enter saves · Esc cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
