"""The chat TUI (``clawdesk chat``): a Textual app over the chat service.

Layout: tui/app.py holds the app's state, layout and the turn; the app's other concerns each
have a module — conversations.py (sidebar actions), feedback.py (the keys on a message),
loading.py (the model, F4), hot_reload.py (a promoted version swapped in between turns),
commands.py (bindings, keymap, help and palette from one table), state.py (a message's badges
from its feedback rows), tree.py (which branch of the conversation tree is shown). widgets/
holds the message view, chat log, prompt box, paged sidebar and status bar; screens/ the modal
dialogs; app.tcss the styles. The TUI calls services only (ChatService, catalog, lifecycle,
store reads) — it never writes SQL.
"""

from .app import ClawDeskApp

__all__ = ["ClawDeskApp"]
