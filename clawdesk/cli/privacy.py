"""``clawdesk forget``, ``export``, ``import`` and ``logs exclude|include``: the user's control
over their data (see ``clawdesk.privacy`` for what each promise means and how it is kept)."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import click

from .. import privacy
from ..errors import StoreError
from ..export.atomic import atomic_output
from ..store import transfer
from .context import AppContext, pass_app
from .logs import logs


@click.command()
@click.argument("conversations", nargs=-1, type=int)
@click.option("--all", "everything", is_flag=True, help="Forget every conversation.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--rollback", is_flag=True,
              help="Also serve the newest adapter not trained on forgotten turns (or the base model) and "
                   "re-queue the other turns those versions learned, for `clawdesk train --now`.")
@click.option("--compact", is_flag=True, help="Only scrub the database files again (after a busy first try).")
@pass_app
def forget(app: AppContext, conversations: tuple[int, ...], everything: bool, yes: bool, rollback: bool,
           compact: bool) -> None:
    """Delete CONVERSATIONS (ids from `clawdesk logs list`) or --all, for good.

    Messages, feedback and training samples are deleted and the database is scrubbed so the text
    is not left in its files. Adapter versions trained on those turns are flagged."""
    store = app.store
    if compact:
        store.scrub()
        click.echo("Database compacted; deleted text is no longer in its files.")
        return
    if everything and conversations:
        raise click.UsageError("Give conversation ids or --all, not both.")
    if not everything and not conversations and not rollback:
        raise click.UsageError("Name the conversations to forget (`clawdesk logs list` shows ids), or --all.")
    if everything or conversations:
        ids = None if everything else list(conversations)
        for cid in ids or []:
            store.get_conversation(cid)  # unknown ids fail before the question
        what = "EVERY conversation" if everything else f"conversation{'s' * (len(conversations) > 1)} " + \
            ", ".join(map(str, conversations))
        if not yes:
            click.confirm(f"Delete {what} with its messages, feedback and training samples? This cannot be undone",
                          abort=True)
        report = privacy.forget(store, ids)
        click.echo(f"Forgot {report.conversations} conversations: {report.messages} messages, {report.feedback} "
                   f"feedback, {report.samples} samples. The database was scrubbed: the deleted text is no longer "
                   f"in its files.")
        if report.flagged_versions:
            click.secho(f"Adapter version(s) {', '.join(map(str, report.flagged_versions))} learned from forgotten "
                        f"turns and are now flagged (`clawdesk adapters list`).", fg="yellow")
    flagged, clean = privacy.served_taint(store)
    if not flagged:
        if rollback:
            click.echo("The served version did not learn from forgotten turns; nothing to roll back.")
        return
    target = f"version {clean}" if clean is not None else "the base model"
    if not rollback and sys.stdin.isatty() and not yes:
        rollback = click.confirm(f"The served adapter learned from forgotten turns. Serve {target} instead and "
                                 f"queue your other turns for retraining?", default=False)
    if rollback:
        version, requeued = privacy.rollback_to_clean(store)
        click.echo(f"Now serving {target}; {requeued} samples re-queued. Retrain without the forgotten turns: "
                   f"clawdesk train --now")
    else:
        click.echo("The served adapter still carries what it learned from them. To retrain without them:\n"
                   "  clawdesk forget --rollback   # serve " + target + ", re-queue the other turns\n"
                   "  clawdesk train --now")


@click.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (created 0600, appears only when complete); default: standard output.")
@pass_app
def export_(app: AppContext, output: Path | None) -> None:
    """Export the whole store as JSON lines (backup, or moving to another machine).

    One typed record per line: conversations, messages (with token ids), feedback, samples,
    training runs and adapter metadata. Adapter weights are files: copy the adapters folder too."""
    if output is None:
        counts = transfer.write_export(app.store, sys.stdout)
    else:
        try:
            with atomic_output(output) as tmp, tmp.open("w", encoding="utf-8") as fh:
                counts = transfer.write_export(app.store, fh)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise StoreError(f"The disk holding {output} is full; nothing was written. Free some space "
                                 f"or export elsewhere.") from None
            raise StoreError(f"Cannot write {output}: {e.strerror}.") from None
    summary = ", ".join(f"{n} {kind}s" for kind, n in counts.items())
    click.echo(f"Exported {summary or 'nothing'}{f' to {output}' if output else ''}.", err=True)


@click.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def import_(app: AppContext, source: Path) -> None:
    """Import a `clawdesk export` file: all of it or nothing. Records already here are skipped."""
    with source.open("rb") as fh:
        records = transfer.read_records(fh, name=str(source))
    report = transfer.import_records(app.store, records, name=str(source))
    added = ", ".join(f"{n} {kind}s" for kind, n in report.added.items()) or "nothing new"
    skipped = sum(report.skipped.values())
    click.echo(f"Imported {added}" + (f"; {skipped} records were already here." if skipped else "."))


def _learning_switch(name: str, exclude: bool, help_: str, done: str) -> click.Command:
    """``logs exclude`` / ``logs include``: the same command with the flag the other way round."""
    @click.command(name, help=help_)
    @click.argument("cid", type=int)
    @pass_app
    def command(app: AppContext, cid: int) -> None:
        app.store.get_conversation(cid)  # an unknown CID is an error, not a silent no-op
        app.store.update_conversation(cid, exclude=exclude)
        click.echo(done.format(cid=cid))
    return command


exclude = _learning_switch("exclude", True, "Don't learn from conversation CID (its samples are dropped now; "
                           "it stays readable).", "Conversation {cid} will not be learned from.")
include = _learning_switch("include", False, "Learn from conversation CID again (the next judge pass picks it up).",
                           "Conversation {cid} will be learned from again.")


def register(cli: click.Group) -> None:
    for command in (forget, export_, import_):
        cli.add_command(command)
    logs.add_command(exclude)
    logs.add_command(include)
