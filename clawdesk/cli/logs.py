"""``clawdesk logs``: where the conversations are, and ways to read, back up and move them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .. import locations
from .context import AppContext, pass_app


@click.group()
def logs() -> None:
    """Inspect the conversation log (SQLite)."""


@logs.command()
def path() -> None:
    """Print the database path."""
    click.echo(locations.db_path())


@logs.command("list")
@click.option("-n", "--count", default=20, show_default=True, help="How many conversations.")
@click.option("-q", "--query", help="Full-text search over message text.")
@click.option("--json", "as_json", is_flag=True, help="Output as JSON.")
@pass_app
def list_(app: AppContext, count: int, query: str | None, as_json: bool) -> None:
    """List recent conversations."""
    convs = app.store.list_conversations(limit=count or None, query=query)
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in convs], indent=2))
        return
    for c in convs:
        n = len(app.store.messages(c.id))
        click.echo(f"{c.id:>5}  {c.updated_at or c.created_at}  {n:>3} msgs  {c.name}")


@logs.command()
@click.argument("cid", type=int)
@click.option("--json", "as_json", is_flag=True, help="Output as JSON (all branches, token ids included).")
@pass_app
def show(app: AppContext, cid: int, as_json: bool) -> None:
    """Show one conversation."""
    conv = app.store.get_conversation(cid)
    msgs = app.store.messages(cid)
    if as_json:
        click.echo(json.dumps({**conv.__dict__, "messages": [m.__dict__ for m in msgs]}, indent=2))
        return
    click.secho(f"# {conv.name}  (conversation {conv.id})", bold=True)
    for m in msgs:
        fb = ", ".join(f.kind for f in app.store.feedback_for(m.id))
        meta = f"  [{fb}]" if fb else ""
        parent = f" ↳{m.parent_id}" if m.parent_id else ""
        click.secho(f"\n## {m.role} #{m.id}{parent}{meta}", fg="cyan")
        click.echo(m.content)


@logs.command()
@click.argument("dest", type=click.Path(dir_okay=False))
@pass_app
def backup(app: AppContext, dest: str) -> None:
    """Write a consistent copy of the database to DEST (safe while chatting)."""
    app.store.backup(Path(dest))
    click.echo(f"Backed up to {dest}.")


@logs.command()
@click.option("--json", "as_json", is_flag=True, required=True, help="JSON (the only format).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File to write (created 0600); default stdout.")
@pass_app
def export(app: AppContext, as_json: bool, output: str | None) -> None:
    """Export every conversation, with feedback and token ids, as JSON."""
    text = json.dumps(app.store.export_conversations(), indent=2, ensure_ascii=False)
    if output:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        click.echo(f"Exported to {output}.", err=True)
    else:
        sys.stdout.write(text + "\n")


@logs.command("import")
@click.argument("source", type=click.File("rb"))
@pass_app
def import_(app: AppContext, source) -> None:
    """Import conversations from a `logs export --json` file (ids are renumbered)."""
    raw = source.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise click.ClickException(f"{source.name} is not a valid export ({e}).") from None
    n = app.store.import_conversations(data)
    click.echo(f"Imported {n} conversations.")


def register(cli: click.Group) -> None:
    cli.add_command(logs)
