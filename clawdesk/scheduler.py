"""The nightly pipeline, scheduled with APScheduler.

- The job store is a SQLite file next to the database (SQLAlchemyJobStore), so the schedule and
  the time of the next run survive restarts; a night missed because the machine was off runs at
  the next start (``misfire_grace_time``; ``coalesce`` folds several missed nights into one run).
- The job itself decides whether to train: only with enough new signal, only when the user has
  not chatted for a while (training takes both cores), only on AC power where a battery exists.
  Every decision, including "skipped because…", goes to the store's pipeline log.
- ``clock`` is the one place the job reads the time, so tests can move time instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from . import locations
from .errors import ClawDeskError
from .settings import Settings, load_settings
from .store import Store, open_store

log = logging.getLogger("clawdesk.scheduler")
JOB_ID = "nightly-pipeline"
MISFIRE_GRACE_S = 18 * 3600  # a night missed by up to 18 h still runs at the next start


def clock() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def jobstore_url() -> str:
    return f"sqlite:///{locations.data_dir() / 'scheduler.db'}"


def on_ac_power() -> bool:
    """True on a desktop (no battery) or a plugged-in laptop; psutil can't tell on some systems."""
    import psutil

    try:
        battery = psutil.sensors_battery()
    except (NotImplementedError, OSError):
        return True
    return battery is None or bool(battery.power_plugged)


def pending_signal(store: Store) -> int:
    """Turns that could become samples: ready samples plus assistant turns not yet judged."""
    return store.pending_signal()


def should_run(store: Store, settings: Settings, now: dt.datetime) -> tuple[bool, str]:
    """Whether the nightly job should train now, and why (the reason is logged either way).

    A candidate that a stopped pass left ungated (``lifecycle.recover``) is due work on its own:
    its samples are already consumed, so waiting for ``train_min_samples`` new ones would leave
    that feedback unlearned for nights."""
    from .lifecycle.recover import orphans

    waiting = orphans(store)
    n = pending_signal(store)
    if not waiting and n < settings.train_min_samples:
        return False, f"{n} new turn{'s' if n != 1 else ''} < train_min_samples={settings.train_min_samples}"
    last = store.last_user_activity()
    if last:
        idle = now - dt.datetime.fromisoformat(last)
        if idle < dt.timedelta(minutes=settings.schedule_idle_minutes):
            return False, f"chat in use ({int(idle.total_seconds() // 60)} min ago < {settings.schedule_idle_minutes})"
    if settings.schedule_require_ac and not on_ac_power():
        return False, "on battery"
    if waiting:
        return True, f"run {waiting[0].id}'s candidate was never gated (its pass was stopped)"
    return True, f"{n} new turn{'s' if n != 1 else ''}"


def nightly_job() -> str:
    """The scheduled job (referenced by name in the persistent job store, so it takes no args)."""
    settings = load_settings()
    store = open_store(locations.db_path(), settings.db_busy_timeout_ms)
    now = clock()
    try:
        go, why = should_run(store, settings, now)
        if not go:
            store.log_pipeline("schedule", "skipped", why, at=now.isoformat(timespec="seconds"))
            return "skipped: " + why
        from .lifecycle.pipeline import run_pipeline

        try:
            report = run_pipeline(store, settings, trigger="schedule")
        except ClawDeskError as e:
            store.log_pipeline("schedule", "failed", str(e), at=now.isoformat(timespec="seconds"))
            return f"failed: {e}"
        return report.summary
    finally:
        store.close()


def make_scheduler(settings: Settings, scheduler_cls: Any = None, **kwargs: Any):
    """Start a scheduler on the persistent job store and make sure the nightly job is in it.

    The job is added only if the store lacks it, and rescheduled only if the cron expression
    changed: replacing it on every start would recompute its next run time from *now* and so
    silently drop a night that was missed while the machine was off.
    """
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    cls = scheduler_cls or BackgroundScheduler
    scheduler = cls(jobstores={"default": SQLAlchemyJobStore(url=jobstore_url())}, **kwargs)
    trigger = CronTrigger.from_crontab(settings.schedule_cron, timezone=scheduler.timezone)
    scheduler.start(paused=True)
    job = scheduler.get_job(JOB_ID)
    if job is None:
        scheduler.add_job("clawdesk.scheduler:nightly_job", trigger, id=JOB_ID,
                          name="judge → train → gate → promote", coalesce=True, max_instances=1,
                          misfire_grace_time=MISFIRE_GRACE_S)
    elif str(job.trigger) != str(trigger):
        scheduler.reschedule_job(JOB_ID, trigger=trigger)
    return scheduler


def next_run_time(settings: Settings) -> dt.datetime | None:
    """When the daemon would next run (read from the persistent job store)."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    if not Path(locations.data_dir() / "scheduler.db").exists():
        return None
    store = SQLAlchemyJobStore(url=jobstore_url())
    store.start(None, "default")  # type: ignore[arg-type]
    job = store.lookup_job(JOB_ID)
    return job.next_run_time if job else None
