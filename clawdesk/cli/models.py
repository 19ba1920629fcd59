"""``clawdesk models``: the bundled model and the user's own GGUF files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import catalog
from .context import AppContext, pass_app


@click.group()
def models() -> None:
    """List, add and choose chat models (local GGUF files; nothing is downloaded)."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Output as JSON.")
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """Show the registered models; * marks the current one."""
    current = catalog.current_name(app.store, app.settings)
    entries = catalog.all_models(app.store)
    if as_json:
        click.echo(json.dumps([{**e.__dict__, "current": e.name == current} for e in entries], indent=2))
        return
    for e in entries:
        mark = "*" if e.name == current else " "
        state = "" if e.path and Path(e.path).exists() else "  (file missing)"
        kind = "bundled" if e.bundled else "added"
        click.echo(f"{mark} {e.name}  [{kind}] {e.path or e.source}{state}")


@models.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--name", help="Name to register it under (default: the file name).")
@pass_app
def add(app: AppContext, path: str, name: str | None) -> None:
    """Register a local GGUF file (it is checked, not copied)."""
    entry = catalog.add_model(app.store, path, name)
    click.echo(f"Added {entry.name} ({entry.path}, sha256 {entry.sha256[:12]}…). "
               f"Use it with `clawdesk models use {entry.name}`.")
    note = catalog.training_note(entry.path)
    if note:
        click.echo(f"Note: {note}", err=True)


@models.command()
@click.argument("name")
@pass_app
def use(app: AppContext, name: str) -> None:
    """Make NAME the chat model."""
    entry = catalog.use_model(app.store, name)
    click.echo(f"Now chatting with {entry.name}.")


@models.command()
@click.argument("name")
@pass_app
def remove(app: AppContext, name: str) -> None:
    """Forget a model you added (the file stays where it is)."""
    app.store.remove_model(name)
    if app.store.get_state("current_model") == name:
        app.store.set_state("current_model", None)
    click.echo(f"Removed {name}.")


def register(cli: click.Group) -> None:
    cli.add_command(models)
