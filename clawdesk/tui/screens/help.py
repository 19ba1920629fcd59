"""F1 / ?: every key binding with its id (the name to use in the settings file's [keymap])."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1,question_mark", "close", "Close", id="help_close")]

    def __init__(self, rows: list[tuple[str, str, str, str]], settings_path: str) -> None:
        """``rows``: (where, keys, action, binding id)."""
        super().__init__()
        self.rows, self.settings_path = rows, settings_path

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="help"):
            yield Label("Keys", classes="title")
            table: DataTable = DataTable(cursor_type="row", zebra_stripes=True)
            table.add_columns("where", "keys", "action", "id")
            for row in self.rows:
                table.add_row(*row)
            yield table
            yield Label(f"Remap any key in {self.settings_path}:\n[keymap]\nthumbs_up = \"u\"    # binding id = key(s), comma-separated",
                        classes="hint", markup=False)
            yield Label("Ctrl+P opens the command palette (every action is there too). Esc closes.", classes="hint")

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()

    def action_close(self) -> None:
        self.dismiss(None)
