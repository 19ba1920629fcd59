"""``clawdesk train --now`` (one training pass) and ``clawdesk runs list|show`` (its records)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .context import AppContext, pass_app
from .progress import console, progress_bar

PHASES = {"load": "Loading model", "score": "Scoring π_old and teachers", "train": "Training", "save": "Saving"}
CURVE_COLUMNS = ("step", "epoch", "loss", "rl_loss", "opd_loss", "demo_loss", "context_loss", "reward_mean",
                 "opd_adv_mean", "clip_frac", "kl_old", "grad_norm", "tokens_per_s")


@click.command()
@click.option("--now", is_flag=True, required=True, help="Run now, in the foreground (the daemon runs it nightly).")
@click.option("--method", type=click.Choice(["combined", "rl", "opd"]), help="Objective (default: train_method).")
@click.option("--train-only", is_flag=True, help="Only train a candidate on the ready samples: no judging, gate or promotion.")
@click.option("--if-due", is_flag=True, help="Run only if the nightly conditions hold (enough new turns, idle, on AC).")
@click.option("--limit", type=int, help="With --train-only: use at most N ready samples (oldest first).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--launcher", type=click.Choice(["none", "accelerate"]), default="none", show_default=True,
              help="accelerate: train in several processes (one per GPU, DDP); process 0 alone judges, gates and "
                   "promotes.")
@click.option("--num-processes", type=click.IntRange(1, 64), default=None,
              help="With --launcher accelerate: how many processes (default: one per CUDA GPU, 2 on the CPU).")
@pass_app
def train(app: AppContext, now: bool, method: str | None, train_only: bool, if_due: bool, limit: int | None,
          as_json: bool, launcher: str, num_processes: int | None) -> None:
    """Learn from your feedback now: judge → train → gate → promote.

    The running chat picks up a promoted version between turns; `clawdesk adapters rollback`
    undoes it."""
    from ..train import distributed

    if launcher == "accelerate" and not distributed.launched():
        _relaunch(app, num_processes, method, train_only, if_due, limit, as_json)
        return
    if distributed.is_follower():  # a process other than 0: train its shard of process 0's pass
        plan = distributed.receive_plan()  # the store is opened only then: process 0 may be creating it
        result = distributed.follow(app.store, app.settings, plan) if plan is not None else None
        if result is not None:
            click.echo(f"Process {distributed.accelerator().process_index}: trained its shard of run "
                       f"{result.run_id} ({len(result.steps)} steps).", err=True)
        distributed.finish()
        return
    try:
        _lead(app, method, train_only, if_due, limit, as_json)
    finally:
        distributed.release()  # the others exit if no pass ran here
    distributed.finish()


def _relaunch(app: AppContext, num_processes: int | None, method: str | None, train_only: bool, if_due: bool,
              limit: int | None, as_json: bool) -> None:
    """Run this same command in several processes (train/distributed.py) and wait for them."""
    import subprocess

    import torch

    from ..train import distributed

    n = num_processes or (torch.cuda.device_count() if torch.cuda.is_available() else 2)
    args = (["--debug"] if app.debug else []) + ["train", "--now"]
    args += (["--method", method] if method else []) + (["--train-only"] if train_only else [])
    args += (["--if-due"] if if_due else []) + (["--limit", str(limit)] if limit else [])
    args += ["--json"] if as_json else []
    command = distributed.launch_command(n, args)
    if not as_json:
        click.echo(f"Training in {n} processes: python {' '.join(command[1:])}", err=True)
    code = subprocess.run(command).returncode
    if code:
        sys.exit(code)


def _lead(app: AppContext, method: str | None, train_only: bool, if_due: bool, limit: int | None,
          as_json: bool) -> None:
    """The whole command in one process, or process 0's part under the launcher."""
    if train_only:
        _train_only(app, method, limit, as_json)
        return
    from .. import scheduler
    from ..lifecycle.pipeline import run_pipeline

    if if_due:
        go, why = scheduler.should_run(app.store, app.settings, scheduler.clock())
        if not go:
            app.store.log_pipeline("timer", "skipped", why)
            click.echo(f"Not running: {why}.")
            return
    tasks: dict[str, Any] = {}
    with progress_bar() as bar:
        def on_progress(stage: str, done: int, total: int, message: str) -> None:
            label = PIPELINE_STAGES.get(stage, stage)
            if stage not in tasks:
                tasks[stage] = bar.add_task(label, total=max(1, total), info="")
            bar.update(tasks[stage], completed=done, total=max(1, total), info=message[:48])

        report = run_pipeline(app.store, app.settings, trigger="manual", method=method, progress=on_progress)
    if as_json:
        click.echo(json.dumps(report.__dict__, indent=2, default=str))
        return
    colour = {"promoted": "green", "refused": "yellow", "skipped": "yellow"}.get(report.decision, "red")
    click.secho(report.summary, fg=colour, bold=True)
    j = report.judge
    if j:
        click.echo(f"Judged {j.get('examined', 0)} turns: {j.get('explicit', 0)} explicit, {j.get('judged', 0)} by "
                   f"the judge ({j.get('failed_votes', 0)}/{j.get('votes', 0)} votes failed), {j.get('demos', 0)} "
                   f"demonstrations, {j.get('ready', 0)} ready, {j.get('dropped', 0)} dropped.")
        if j.get("implicit_rewards") is False:
            click.echo(f"Implicit rewards off: the judge is below judge_min_accuracy ({j.get('implicit_off', 0)} turns "
                       "kept only their hints; `clawdesk status` says why).")
    for line in report.gate.get("reasons", []):
        click.echo(f"  gate {line}")
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in report.seconds.items())
    if timing:
        click.echo(f"Time: {timing}.")
    if report.run_id:
        click.echo(f"Curves: `clawdesk runs show {report.run_id}`.")
    if report.decision == "promoted":
        previous = app.store.get_adapter(report.version).parent_version or "base"
        click.echo("A running `clawdesk chat` switches to it before its next answer; "
                   f"`clawdesk adapters rollback {previous}` undoes it.")


PIPELINE_STAGES = {"resume": "Resuming a stopped run", "judge-check": "Measuring the judge (once per model)",
                   "judge": "Judging turns", "train:load": "Loading model", "train:score": "Scoring π_old and teachers",
                   "train:train": "Training", "train:save": "Saving candidate", "gate": "Gate", "promote": "Promoting",
                   "memory": "Reading remarks for lasting wishes"}


def _train_only(app: AppContext, method: str | None, limit: int | None, as_json: bool) -> None:
    from ..train import train_pass

    tasks: dict[str, Any] = {}
    with progress_bar() as bar:
        def on_progress(p) -> None:
            if p.phase not in tasks:
                tasks[p.phase] = bar.add_task(PHASES.get(p.phase, p.phase), total=max(1, p.total), info="")
                if p.phase == "load" and p.message:
                    console.print(f"[dim]{p.message}[/dim]")
            bar.update(tasks[p.phase], completed=p.done, total=max(1, p.total), info=_info(p))

        result = train_pass(app.store, app.settings, progress=on_progress, method=method, limit=limit)
    if as_json:
        click.echo(json.dumps(result.__dict__, indent=2))
        return
    s = result.summary
    click.echo(f"Run {result.run_id} ({result.method}, {result.backend}): {s['n_train']} samples trained in "
               f"{s['steps']} steps, {s['n_heldout']} held out for the gate, {s['n_skipped']} skipped; "
               f"{result.duration_s:.0f} s.")
    first, last = result.steps[0], result.steps[-1]
    click.echo(f"Loss {first['loss']:+.4f} → {last['loss']:+.4f}; hinted samples {s['hinted_samples']}, "
               f"rewarded {s['rewarded_samples']}, demonstrations {s['demo_samples']}.")
    if s.get("truncated_samples"):
        click.echo(f"{s['truncated_samples']} contexts were cut from the left to {app.settings.train_context_tokens} "
                   f"tokens (train_context_tokens).")
    click.echo(f"Candidate adapter: {result.candidate_path} (not served; `clawdesk train --now` gates and promotes)")


def _info(p) -> str:
    if p.phase == "train" and p.metrics:
        m = p.metrics
        reward = f" r̄ {m['reward_mean']:+.2f}" if m.get("reward_mean") is not None else ""
        return f"loss {m['loss']:+.4f}{reward} {m['tokens_per_s'] or 0:.0f} tok/s"
    return ""


@click.group()
def runs() -> None:
    """Training runs and their curves."""


@runs.command("list")
@click.option("-n", "--count", default=20, show_default=True, help="How many runs.")
@click.option("--json", "as_json", is_flag=True, help="Output as JSON.")
@pass_app
def runs_list(app: AppContext, count: int, as_json: bool) -> None:
    """List recent training runs, newest first."""
    items = app.store.runs(limit=count or None)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in items], indent=2))
        return
    if not items:
        click.echo("No training runs yet; `clawdesk train --now` starts one.")
        return
    for r in items:
        steps = r.metrics.get("steps", [])
        loss = f"loss {steps[0]['loss']:+.3f} → {steps[-1]['loss']:+.3f}" if steps else ""
        note = f"  ({r.error})" if r.error else ""
        click.echo(f"{r.id:>4}  {r.started_at}  {r.status:<8} {r.method:<8} {r.n_samples:>4} samples  "
                   f"{len(steps):>3} steps  {loss}{note}")


@runs.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Output as JSON.")
@click.option("--png", type=click.Path(dir_okay=False), help="Also write the curves as a PNG image.")
@click.option("--no-plot", is_flag=True, help="Tables only, no terminal plot.")
@pass_app
def runs_show(app: AppContext, run_id: int, as_json: bool, png: str | None, no_plot: bool) -> None:
    """Show one run: settings summary and per-step curves."""
    r = app.store.get_run(run_id)
    if as_json:
        click.echo(json.dumps(r.__dict__, indent=2))
        return
    click.secho(f"Run {r.id}: {r.status}, method {r.method}, {r.n_samples} samples", bold=True)
    click.echo(f"started {r.started_at}  finished {r.finished_at or '-'}  back end {r.settings.get('backend', '?')}"
               f"  lr {r.settings.get('train_lr', '?')}  from adapter {r.settings.get('parent_version') or 'base'}")
    if r.error:
        click.secho(f"error: {r.error}", fg="red")
    if r.candidate_path:
        click.echo(f"candidate: {r.candidate_path}")
    summary = r.metrics.get("summary", {})
    if summary:
        click.echo("  ".join(f"{k}={v}" for k, v in summary.items()))
    steps = r.metrics.get("steps", [])
    if not steps:
        return
    click.echo()
    click.echo("  ".join(f"{c:>12}" for c in CURVE_COLUMNS))
    for m in steps:
        click.echo("  ".join(f"{_fmt(m.get(c)):>12}" for c in CURVE_COLUMNS))
    if not no_plot:
        from .plots import terminal_plot

        drawing = terminal_plot(steps)
        if drawing:
            click.echo()
            click.echo(drawing)
    if png:
        from .plots import png_plot

        click.echo(f"Wrote {png_plot(steps, Path(png), title=f'run {r.id} ({r.method})')}")
    if r.gate:
        click.echo("\ngate: " + ("accepted" if r.gate.get("accepted") else "refused"))
        for line in r.gate.get("reasons", []):
            click.echo(f"  {line}")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def register(cli: click.Group) -> None:
    cli.add_command(train)
    cli.add_command(runs)
