"""``clawdesk daemon``: run the nightly pipeline on its schedule (systemd/launchd start this)."""

from __future__ import annotations

import signal
import threading

import click

from .. import scheduler
from .context import AppContext, pass_app


@click.group(invoke_without_command=True)
@click.pass_context
def daemon(ctx: click.Context) -> None:
    """Run the scheduler in the foreground until stopped (Ctrl-C / SIGTERM)."""
    if ctx.invoked_subcommand is not None:
        return
    app: AppContext = ctx.obj
    settings = app.settings
    sched = scheduler.make_scheduler(settings)
    sched.resume()
    job = sched.get_job(scheduler.JOB_ID)
    click.echo(f"clawdesk daemon: next pipeline run {job.next_run_time:%Y-%m-%d %H:%M %Z} "
               f"(cron '{settings.schedule_cron}'); Ctrl-C to stop.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sched.shutdown(wait=True)
        click.echo("clawdesk daemon stopped.")


@daemon.command()
@click.option("-n", "--count", default=10, show_default=True)
@pass_app
def status(app: AppContext, count: int) -> None:
    """When the pipeline runs next, and what it decided the last times."""
    nxt = scheduler.next_run_time(app.settings)
    click.echo(f"Next run: {nxt:%Y-%m-%d %H:%M %Z}" if nxt else "Next run: the daemon has never started "
               "(`clawdesk daemon`, or install packaging/clawdesk-daemon.service)")
    for row in app.store.pipeline_log(count):
        click.echo(f"  {row['at']}  {row['trigger']:8} {row['decision']:9} {row['detail']}")


def register(cli: click.Group) -> None:
    cli.add_command(daemon)
