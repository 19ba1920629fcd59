"""After 👎: why? A reason from a short fixed list (records.THUMBS_DOWN_REASONS), then an
optional comment. The thumbs-down row is already written; Esc skips the rest.

A reason and a comment are the most useful hint a person gives (docs/method.md §3: an explicit
comment is always a hint candidate), so the dialog makes them one keypress each.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList

from ...records import THUMBS_DOWN_REASONS


class ThumbsDownScreen(ModalScreen[tuple[str, str] | None]):
    """Returns (reason, comment) — either may be empty — or None when skipped at once."""

    BINDINGS = [Binding("escape", "skip", "Skip", id="dialog_skip")]

    def __init__(self) -> None:
        super().__init__()
        self.reason = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("👎  What was wrong? (1–7 or ↑↓ Enter · Esc skips)", classes="title")
            yield OptionList(*[f"{i}. {r}" for i, r in enumerate(THUMBS_DOWN_REASONS, 1)], id="reasons")
            yield Label("Anything to add? (optional · Enter saves)", classes="hint")
            yield Input(placeholder="e.g. answer in one sentence", id="comment")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_key(self, event) -> None:  # digits pick a reason directly
        if self.query_one(OptionList).has_focus and event.character and event.character.isdigit():
            index = int(event.character) - 1
            if 0 <= index < len(THUMBS_DOWN_REASONS):
                event.stop()
                self._pick(index)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._pick(event.option_index)

    def _pick(self, index: int) -> None:
        self.reason = THUMBS_DOWN_REASONS[index]
        self.query_one(OptionList).highlighted = index
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss((self.reason, event.value.strip()))

    def action_skip(self) -> None:
        comment = self.query_one(Input).value.strip()
        self.dismiss((self.reason, comment) if self.reason or comment else None)
