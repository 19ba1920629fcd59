"""``clawdesk adapters``: the trained versions — list, inspect, roll back, compare answers, import one
trained elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import ClawDeskError
from ..lifecycle.promote import rollback as do_rollback
from .context import AppContext, pass_app
from .progress import console, spinner


@click.group()
def adapters() -> None:
    """Trained adapter versions (each kept for rollback)."""


@adapters.command("list")
@click.option("--json", "as_json", is_flag=True, help="Output as JSON.")
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """All kept versions; * marks the one being served."""
    served = app.store.served_version()
    rows = app.store.adapters()
    if as_json:
        click.echo(json.dumps([{**a.__dict__, "served": a.version == served} for a in rows], indent=2))
        return
    if not rows:
        click.echo("No trained versions yet: the base model is served. `clawdesk train --now` trains one.")
        return
    click.echo(f"{'':2}{'version':>7}  {'kind':8} {'run':>4}  {'promoted':25} note")
    for a in rows:
        mark = "*" if a.version == served else " "
        note = []
        if a.rolled_back_at:
            note.append(f"rolled back {a.rolled_back_at}")
        if a.trained_on_forgotten:
            note.append("trained on data you deleted — retrain without it")
        click.echo(f"{mark:2}{a.version:>7}  {a.kind:8} {a.run_id or '-':>4}  {a.promoted_at or '-':25} {'; '.join(note)}")
    if served is None:
        click.echo("  (the base model is served)")


@adapters.command()
@click.argument("version", type=int)
@pass_app
def show(app: AppContext, version: int) -> None:
    """One version: files, what it was trained on, the gate's numbers."""
    a = app.store.get_adapter(version)
    click.echo(f"Version {a.version} ({a.kind}){'  ← served' if app.store.served_version() == a.version else ''}")
    click.echo(f"  parent:     {a.parent_version or 'base model'}")
    click.echo(f"  run:        {a.run_id}  (`clawdesk runs show {a.run_id}` for its curves)")
    click.echo(f"  served from {a.gguf_path}")
    click.echo(f"  peft:       {a.path}")
    if a.trained_on_forgotten:
        click.secho("  Trained on conversations you have since deleted. `clawdesk train --now` after a rollback "
                    "retrains without them.", fg="yellow")
    for line in a.metrics.get("gate", {}).get("reasons", []):
        click.echo(f"  gate: {line}")


@adapters.command()
@click.argument("version")
@pass_app
def rollback(app: AppContext, version: str) -> None:
    """Serve VERSION again ('base' = no adapter). A running chat switches between turns."""
    target = None if version.lower() in ("base", "none", "0") else int(version)
    do_rollback(app.store, target)
    click.echo(f"Now serving {'the base model' if target is None else f'version {target}'}.")


@adapters.command()
@click.argument("version")
@click.option("--against", "other", default=None, help="Version to compare with (default: the served one; 'base' = no adapter).")
@click.option("-n", "--prompts", "count", default=3, show_default=True, help="How many of your recent prompts.")
@click.option("--prompt", "extra", multiple=True, help="A prompt to use instead of your recent ones (repeatable).")
@click.option("--max-tokens", default=96, show_default=True)
@pass_app
def diff(app: AppContext, version: str, other: str | None, count: int, extra: tuple[str, ...], max_tokens: int) -> None:
    """The same prompts answered by two versions, side by side (greedy, so it is repeatable)."""
    from rich.table import Table

    from ..lifecycle.compare import answer, recent_prompts, side

    prompts = list(extra) or [m.content for m in recent_prompts(app.store, count)]
    if not prompts:
        raise ClawDeskError("No prompts to compare on yet; chat a little or pass --prompt.")
    columns = []
    for v in (version, other):
        s = side(app.store, v)
        with spinner(f"Answering with {s.label}"):
            columns.append((s.label, answer(app.store, app.settings, s, prompts, max_tokens)))
    table = Table(show_lines=True)
    table.add_column("prompt", ratio=1)
    for label, _ in columns:
        table.add_column(label, ratio=2)
    for i, p in enumerate(prompts):
        table.add_row(p, *(answers[i] for _, answers in columns))
    console.print(table)


@adapters.command("import")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--no-gate", is_flag=True, help="Promote without the gate (warns; rollback undoes it).")
@click.option("--no-promote", is_flag=True, help="Only check and register it as a run; serve nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def import_(app: AppContext, folder: Path, no_gate: bool, no_promote: bool, as_json: bool) -> None:
    """Bring back an adapter trained elsewhere (a GPU server's runs/<id> folder).

    It must fit the chat model here (same base file, architecture and shapes) and llama.cpp must
    serve it as torch computes it; then it is gated like a nightly candidate and promoted if
    accepted. A folder that does not fit changes nothing."""
    from ..lifecycle.import_adapter import import_adapter

    say = (lambda _m: None) if as_json else (lambda m: console.print(f"[dim]{m}[/dim]"))
    report = import_adapter(app.store, app.settings, folder, gate=not no_gate, promote_it=not no_promote,
                            progress=say)
    if as_json:
        click.echo(json.dumps(report.__dict__, indent=2, default=str))
        return
    for w in report.warnings:
        click.secho(f"Warning: {w}.", fg="yellow", err=True)
    for line in report.gate.get("reasons", []):
        click.echo(f"  gate {line}")
    if report.decision == "promoted":
        click.secho(f"Imported as run {report.run_id}; version {report.version} is now served.", fg="green", bold=True)
        click.echo("A running `clawdesk chat` switches to it before its next answer; `clawdesk adapters rollback` "
                   "undoes it.")
    elif report.decision == "refused":
        click.secho(f"Imported as run {report.run_id}, but the gate refused it; nothing changed in what is served.",
                    fg="yellow", bold=True)
    else:
        click.echo(f"Imported as run {report.run_id} (not served): {report.gguf_path}")


def register(cli: click.Group) -> None:
    cli.add_command(adapters)
