"""``clawdesk memory``: what ClawDesk knows about you — list, add, edit, delete (docs/memory.md).

Every change takes effect on the next reply, in the chat that is open too: the note is read from
the store for every turn.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from ..memory import Memory, said, where
from ..records import Wish
from .context import AppContext, pass_app


def _memory(app: AppContext) -> Memory:
    return Memory(app.store, app.settings)


def _source_line(wish: Wish) -> list[str]:
    lines = []
    for s in wish.sources:
        turn = f"conversation {s.conversation_id}, message #{s.message_id}" if s.message_id else "a forgotten turn"
        quote = f' "{s.quote}"' if s.quote else ""
        lines.append(f"       from {turn} ({s.channel}{quote}, {s.created_at[:10]})")
    return lines


@click.group()
def memory() -> None:
    """What ClawDesk knows about you: wishes learned from your feedback, used in every reply."""


@memory.command("list")
@click.option("--all", "include_deleted", is_flag=True, help="Include deleted wishes (kept so they are not re-learned).")
@click.option("--json", "as_json", is_flag=True, help="Output as JSON (sources included).")
@pass_app
def list_(app: AppContext, include_deleted: bool, as_json: bool) -> None:
    """Show the wishes, where each came from, and where they go in the prompt."""
    mem = _memory(app)
    wishes = mem.wishes(include_deleted=include_deleted)
    note = mem.note()
    if as_json:
        literals = mem.literals()
        click.echo(json.dumps({"placement": app.settings.memory_placement, "note": note.text if note else "",
                               **literals.generate_args(),
                               "wishes": [asdict(w) for w in wishes]}, indent=2, ensure_ascii=False))
        return
    if not wishes:
        click.echo("Nothing yet. Wishes are learned from your corrections, comments and 👎 reasons "
                   "(\"keep it under 30 words\"); `clawdesk memory add TEXT` adds one by hand.")
        return
    click.echo(f"Used in every reply: {where(app.settings.memory_placement)}.")
    if exact := said(mem.literals()):
        click.echo(exact)
    for w in wishes:
        state = "  [deleted]" if w.status == "deleted" else ""
        origin = {"user": "added by you", "judge": "learned (judge)"}.get(w.origin, "learned")
        click.secho(f"{w.id:>4}  {w.text}{state}", bold=w.status == "active")
        click.echo(f"       {origin} {w.created_at[:10]}, last confirmed {w.confirmed_at[:10]}"
                   f"{f', slot {w.slot}' if w.slot else ''}")
        for line in _source_line(w):
            click.echo(line)


@memory.command()
@click.argument("text", nargs=-1, required=True)
@pass_app
def add(app: AppContext, text: tuple[str, ...]) -> None:
    """Add a wish by hand: clawdesk memory add "Call me Dana"."""
    try:
        wish = _memory(app).add(" ".join(text))
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    click.echo(f"Added {wish.id}: {wish.text}")


@memory.command()
@click.argument("wish_id", type=int)
@click.argument("text", nargs=-1, required=True)
@pass_app
def edit(app: AppContext, wish_id: int, text: tuple[str, ...]) -> None:
    """Reword wish WISH_ID: clawdesk memory edit 3 "Keep answers under 50 words"."""
    try:
        wish = _memory(app).edit(wish_id, " ".join(text))
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    click.echo(f"Changed {wish.id}: {wish.text}")


@memory.command()
@click.argument("wish_ids", type=int, nargs=-1, required=True)
@click.option("--purge", is_flag=True, help="Also forget that it was learned (it may then be learned again "
                                            "from the same turns).")
@pass_app
def rm(app: AppContext, wish_ids: tuple[int, ...], purge: bool) -> None:
    """Delete wishes: out of the prompt from the next reply on, and never re-learned from the same turns."""
    mem = _memory(app)
    for wid in wish_ids:
        wish = mem.remove(wid, purge=purge)
        click.echo(f"Deleted {wid}: {wish.text}")


@memory.command()
@pass_app
def extract(app: AppContext) -> None:
    """Let the judge model find the wishes the rules missed in your recent comments and complaints.

    It may only pick a part of what you wrote (a grammar built from your words), so it cannot
    invent a wish; still, check what it found — `clawdesk memory rm ID` removes one for good."""
    from ..judge.pipeline import open_judge_engine
    from ..memory.judge import WishJudge, extract_pending

    engines = []

    def make_judge() -> WishJudge:
        engines.append(open_judge_engine(app.store, app.settings))
        return WishJudge.from_settings(engines[0], app.settings)

    try:
        learned = extract_pending(app.store, app.settings, make_judge)
    finally:
        for engine in engines:
            engine.close()
    if not learned:
        click.echo("No new wishes found.")
    for x in learned:
        click.echo(f"{x.kind}: {x.wish.id}  {x.wish.text}")


def register(cli: click.Group) -> None:
    cli.add_command(memory)
