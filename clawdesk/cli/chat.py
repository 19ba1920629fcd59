"""``clawdesk chat``: the full-screen chat (Textual). The app loads the model itself, in a
worker, so the screen appears at once with "Loading model…" in the status bar."""

from __future__ import annotations

import click

from .context import AppContext, pass_app


@click.command()
@click.option("--cid", type=int, help="Open the conversation with this id (`clawdesk logs list` shows them).")
@click.option("-m", "--model", help="Registered model name or GGUF path (default: the current model).")
@pass_app
def chat(app: AppContext, cid: int | None, model: str | None) -> None:
    """Chat with your agent; rate, correct and regenerate replies with single keys (F1 lists them)."""
    from ..tui import ClawDeskApp  # Textual is only imported for this command

    if cid is not None:
        app.store.get_conversation(cid)  # fail here, with a clear message, if the id is unknown
    ClawDeskApp(settings=app.settings, conversation_id=cid, model=model).run()


def register(cli: click.Group) -> None:
    cli.add_command(chat)
