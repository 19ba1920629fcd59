"""``clawdesk judge`` and ``clawdesk samples``: turn logged turns into judged samples, inspect them."""

from __future__ import annotations

import json

import click

from .. import catalog
from ..judge.accuracy import status_line
from ..judge.pipeline import judge_pending, open_judge_engine
from ..records import Sample
from .context import AppContext, pass_app
from .progress import progress_bar


@click.command()
@click.option("-n", "--limit", type=int, help="Judge at most N turns this time.")
@click.option("--dry-run", is_flag=True, help="Show what would be produced; load no model, write nothing.")
@click.option("--rejudge", is_flag=True, help="Judge again turns that already have a sample.")
@click.option("--check", is_flag=True,
              help="Measure the judge on the labelled cases now (all of them, cached); judge no turns.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_app
def judge(app: AppContext, limit: int | None, dry_run: bool, rejudge: bool, check: bool, as_json: bool) -> None:
    """Judge new turns: find each reply's next state, score it, extract hints, write samples."""
    if check:
        _check(app, as_json)
        return
    with progress_bar() as bar:
        task = bar.add_task("Judging", total=None, info="")
        checking: list = []

        def progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, info=what)

        def check_progress(done: int, total: int, what: str) -> None:
            if not checking:
                checking.append(bar.add_task("Measuring the judge (once per model)", total=total, info=""))
            bar.update(checking[0], completed=done, total=total, info=what)

        report = judge_pending(app.store, app.settings, limit=limit, dry_run=dry_run, rejudge=rejudge,
                               progress=progress, check_progress=check_progress)
    if as_json:
        data = {k: v for k, v in report.__dict__.items() if k != "samples"}
        data["samples"] = [_brief(s) for s in report.samples]
        click.echo(json.dumps(data, indent=2))
        return
    for s in report.samples:
        click.echo(_line(s))
    verb = "would write" if dry_run else "wrote"
    click.echo(f"{report.examined} turns examined; {verb} {report.ready} ready and {report.dropped} dropped samples "
               f"({report.explicit} explicit, {report.judged} judged, {report.demos} demonstrations), "
               f"and {report.transfers} corrections' edits repeated on other replies.")
    if report.votes:
        click.echo(f"Judge {report.judge_model}: {report.votes} votes, {report.failed_votes} failed "
                   f"({report.failed_votes / report.votes:.0%}) — failed votes never become rewards.")
    if report.purged:
        click.echo(f"Removed {report.purged} samples of excluded messages.")
    if report.implicit_rewards is False:
        click.echo(f"Implicit rewards off for {report.implicit_off} turns: {status_line(app.store, app.settings)}.")


def _check(app: AppContext, as_json: bool) -> None:
    """``judge --check``: every labelled case, no early stop, so the number is the full one."""
    from ..judge import Judge
    from ..judge.accuracy import SEED, measure, save

    engine = open_judge_engine(app.store, app.settings)
    try:
        with progress_bar() as bar:
            task = bar.add_task("Measuring the judge", total=None, info="")
            result = measure(Judge.from_settings(engine, app.settings, seed=SEED), None,
                             lambda done, total, what: bar.update(task, completed=done, total=total, info=what))
    finally:
        engine.close()
    save(app.store, app.settings, result)
    if as_json:
        click.echo(json.dumps({**result.__dict__, "sign_accuracy": result.sign_accuracy,
                               "implicit_rewards": bool(result.passes(app.settings.judge_min_accuracy))
                               or app.settings.judge_min_accuracy <= 0}, indent=2))
        return
    click.echo(f"Judge {status_line(app.store, app.settings)}; {result.judged * result.votes} votes in "
               f"{result.seconds:.0f} s.")


@click.group()
def samples() -> None:
    """Inspect judged samples."""


@samples.command("list")
@click.option("--status", type=click.Choice(["ready", "dropped", "used"]), help="Only this status.")
@click.option("-n", "--count", type=int, default=50, show_default=True, help="How many (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="Output as JSON.")
@pass_app
def list_(app: AppContext, status: str | None, count: int, as_json: bool) -> None:
    """List samples, oldest first."""
    rows = app.store.samples(status=status, limit=count or None)
    if as_json:
        click.echo(json.dumps([_brief(s) for s in rows], indent=2))
        return
    for s in rows:
        click.echo(_line(s))


@samples.command()
@click.argument("sid", type=int)
@click.option("--json", "as_json", is_flag=True, help="Output as JSON (token ids and raw votes included).")
@pass_app
def show(app: AppContext, sid: int, as_json: bool) -> None:
    """Show one sample: the turn, its next state, reward, hints and every raw vote."""
    s = app.store.get_sample(sid)
    if as_json:
        click.echo(json.dumps(s.__dict__, indent=2, ensure_ascii=False))
        return
    msg = app.store.get_message(s.message_id)
    click.secho(f"# sample {s.id}  ({s.source}, {s.status}{': ' + s.drop_reason if s.drop_reason else ''})", bold=True)
    click.echo(f"message {s.message_id} in conversation {s.conversation_id}; reward {_reward(s)}; "
               f"{len(s.prompt_token_ids)} prompt / {len(s.response_token_ids)} response tokens"
               + (f"; judge {s.judge_model}" if s.judge_model else ""))
    last_user = next((m["content"] for m in reversed(s.prompt_messages) if m["role"] == "user"), "")
    click.secho("\n## request", fg="cyan")
    click.echo(last_user)
    label = {"demo": " (the user's correction)", "transfer": " (this reply with another correction's edit)"}
    click.secho("\n## response" + label.get(s.source, ""), fg="cyan")
    click.echo(_correction(app, s) if s.source == "demo" else _tokens(app, s, msg) if s.source == "transfer"
               else msg.content)
    click.secho("\n## next state", fg="cyan")
    click.echo(s.next_state or "(none)")
    if s.hints:
        click.secho("\n## hints", fg="cyan")
        for h in s.hints:
            click.echo(f"- {h}")
    if s.votes:
        click.secho(f"\n## votes ({s.failed_votes} failed)", fg="cyan")
        for v in s.votes:
            value = "FAILED" if v.get("value") is None else f"{v['value']:+d}" if isinstance(v["value"], int) else v["value"]
            click.echo(f"[{v.get('kind')} {value}] {' '.join(str(v.get('text', '')).split())}")


def _tokens(app: AppContext, s: Sample, msg) -> str:
    """A transfer trains on token ids no message holds (the logged reply with the edit in new
    tokens): read them back with the tokenizer of the model that wrote the reply."""
    from ..engine import Vocab

    vocab = Vocab(catalog.written_with(app.store, app.settings, msg.model))
    try:
        return vocab.detokenize(s.response_token_ids)
    finally:
        vocab.close()


def _correction(app: AppContext, s: Sample) -> str:
    fb = [f.correction for f in app.store.feedback_for(s.message_id) if f.kind == "correction"]
    return fb[-1] if fb else "(correction withdrawn)"


def _reward(s: Sample) -> str:
    return "—" if s.reward is None else f"{s.reward:+g}"


def _line(s: Sample) -> str:
    reason = f" ({s.drop_reason})" if s.drop_reason else ""
    hints = f"  hints {len(s.hints)}" if s.hints else ""
    failed = f"  failed votes {s.failed_votes}" if s.failed_votes else ""
    ident = f"{s.id:>5}" if s.id else "    ·"
    return f"{ident}  msg {s.message_id:>5}  {s.source:<8} {s.status:<11} reward {_reward(s):>2}{hints}{failed}{reason}"


def _brief(s: Sample) -> dict:
    d = dict(s.__dict__)
    d.pop("prompt_token_ids")
    d["prompt_tokens"] = len(s.prompt_token_ids)
    d["response_tokens"] = len(s.response_token_ids)
    d.pop("response_token_ids")
    return d


def register(cli: click.Group) -> None:
    cli.add_command(judge)
    cli.add_command(samples)
