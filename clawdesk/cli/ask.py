"""``clawdesk ask``: one turn from the shell, streamed to stdout and logged like a chat turn."""

from __future__ import annotations

import signal
import sys
import threading

import click

from ..chat import ChatService, open_engine
from .context import AppContext, pass_app
from .progress import spinner


@click.command()
@click.argument("prompt", required=False)
@click.option("-c", "--continue", "continue_", is_flag=True, help="Continue the most recent conversation.")
@click.option("--cid", type=int, help="Continue the conversation with this id.")
@click.option("-s", "--system", help="System prompt for a new conversation.")
@click.option("-m", "--model", help="Registered model name or GGUF path (default: the current model).")
@click.option("--temperature", type=float, help="Sampling temperature for this reply.")
@click.option("--seed", type=int, help="Sampling seed for this reply.")
@click.option("--max-tokens", type=int, help="Longest reply, in tokens.")
@pass_app
def ask(app: AppContext, prompt: str | None, continue_: bool, cid: int | None, system: str | None,
        model: str | None, temperature: float | None, seed: int | None, max_tokens: int | None) -> None:
    """Ask one question; the reply streams to stdout and the turn is logged.

    PROMPT may be '-' or omitted to read it from standard input."""
    if prompt in (None, "-"):
        if sys.stdin.isatty():
            raise click.UsageError("Give a PROMPT or pipe one in.")
        # bytes, decoded leniently: a pasted binary file must not end in a UnicodeDecodeError
        prompt = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    # undecodable bytes in argv arrive as lone surrogates, which SQLite and llama.cpp refuse
    prompt = prompt.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
    if not prompt.strip():
        raise click.UsageError("The prompt is empty.")
    store = app.store
    with spinner("Loading model"):
        engine = open_engine(store, app.settings, model=model)
    if engine.fallback_note:
        click.secho(engine.fallback_note, fg="yellow", err=True)
    chat = ChatService(store, engine, app.settings)
    if continue_ and cid is None:
        cid = store.last_conversation_id()
    conv = store.get_conversation(cid) if cid is not None else chat.new_conversation(system_prompt=system)
    overrides = {k: v for k, v in {"temperature": temperature, "seed": seed, "max_tokens": max_tokens}.items()
                 if v is not None}
    cancel = threading.Event()
    # Ctrl-C mid-reply stops the generation like Esc in the chat: the partial answer is logged
    # (marked stopped), then the command exits 130 through the CLI's interrupt handler.
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        turn = chat.send(conv.id, prompt, on_text=lambda s: click.echo(s, nl=False), cancel=cancel, **overrides)
    finally:
        signal.signal(signal.SIGINT, previous)
        engine.close()
    click.echo()
    if cancel.is_set():
        raise KeyboardInterrupt
    if turn.generation.truncated_tokens:
        click.secho(f"(note: the conversation was longer than the context window; the oldest "
                    f"{turn.generation.truncated_tokens} tokens were left out)", fg="yellow", err=True)


def register(cli: click.Group) -> None:
    cli.add_command(ask)
