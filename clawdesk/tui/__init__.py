"""The chat TUI (``clawdesk chat``): a Textual app over the chat service.

Layout: tui/app.py wires everything; widgets/ holds the message view, chat log, prompt box,
sidebar and status bar; screens/ the modal dialogs; tree.py which branch of the conversation
tree is shown; app.tcss the styles. The TUI calls services only (ChatService, catalog, store
reads) — it never writes SQL.
"""

from .app import ClawDeskApp

__all__ = ["ClawDeskApp"]
