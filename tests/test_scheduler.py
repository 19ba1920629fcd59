"""The nightly scheduler with a real APScheduler and a real SQLite job store. Time is moved by
the test (a fake clock patched into APScheduler and into clawdesk.scheduler), never slept."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import pytest
from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers.base import BaseScheduler

from clawdesk import locations, scheduler
from clawdesk.errors import PipelineBusy
from clawdesk.lifecycle.lock import pipeline_lock
from clawdesk.settings import load_settings
from clawdesk.store import open_store

UTC = dt.timezone.utc


class FakeClock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def advance(self, **kw: float) -> None:
        self.now += dt.timedelta(**kw)


@pytest.fixture
def fake_clock(monkeypatch):
    start = (dt.datetime.now(UTC) + dt.timedelta(days=1)).replace(hour=2, minute=0, second=0, microsecond=0)
    clock = FakeClock(start)

    class FakeDatetime(dt.datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: D401 — the patched clock
            return clock.now.astimezone(tz) if tz else clock.now.replace(tzinfo=None)

    import apscheduler.executors.base as exec_base
    import apscheduler.schedulers.base as sched_base

    monkeypatch.setattr(sched_base, "datetime", FakeDatetime)
    monkeypatch.setattr(exec_base, "datetime", FakeDatetime)
    monkeypatch.setattr(scheduler, "clock", lambda: clock.now)
    return clock


class ManualScheduler(BaseScheduler):
    """APScheduler's own job processing, woken by the test instead of a timer thread."""

    def wakeup(self) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)

    def tick(self) -> None:
        self._process_jobs()


def make(settings) -> ManualScheduler:
    s = scheduler.make_scheduler(settings, ManualScheduler, executors={"default": DebugExecutor()},
                                 timezone=UTC)
    s.resume()
    return s


def decisions(store) -> list[tuple[str, str]]:
    return [(r["decision"], r["detail"]) for r in reversed(store.pipeline_log())]


def test_runs_when_due_skips_when_busy_and_catches_up_after_restart(fake_clock, monkeypatch, store):
    monkeypatch.setenv("CLAWDESK_TRAIN_MIN_SAMPLES", "1")
    settings = load_settings()
    s = make(settings)
    fake_clock.advance(minutes=30)  # 02:30: not due yet
    s.tick()
    assert decisions(store) == []

    fake_clock.advance(minutes=31)  # 03:01: due; nothing logged yet → skipped for lack of signal
    s.tick()
    assert decisions(store) == [("skipped", "0 new turns < train_min_samples=1")]

    # The user is chatting at 03:00 the next night: one turn, two minutes before the run.
    conv = store.new_conversation("late night")
    ts = (fake_clock.now + dt.timedelta(days=1) - dt.timedelta(minutes=3)).isoformat(timespec="seconds")
    u = store.add_message(conv.id, "user", "still up?", created_at=ts)
    store.add_message(conv.id, "assistant", "yes", parent_id=u.id, created_at=ts)
    fake_clock.advance(days=1)
    s.tick()
    assert decisions(store)[-1][0] == "skipped" and "chat in use" in decisions(store)[-1][1]
    s.shutdown(wait=False)

    # The machine is off for the next night and comes back at 08:00: the missed run happens once.
    fake_clock.advance(days=1, hours=5)
    monkeypatch.setenv("CLAWDESK_TRAIN_MIN_SAMPLES", "5")
    s2 = make(load_settings())
    before = len(decisions(store))
    s2.tick()
    assert len(decisions(store)) == before + 1
    assert decisions(store)[-1] == ("skipped", "1 new turn < train_min_samples=5")
    s2.tick()  # coalesced: not run a second time
    assert len(decisions(store)) == before + 1
    assert scheduler.next_run_time(settings) > fake_clock.now
    s2.shutdown(wait=False)


def test_pipeline_lock_is_exclusive_and_survives_kill_9(clawdesk_home):
    code = ("import time; from clawdesk.lifecycle.lock import pipeline_lock\n"
            "with pipeline_lock():\n    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=os.environ.copy())
    assert proc.stdout.readline().strip() == b"held"
    with pytest.raises(PipelineBusy, match=f"pid {proc.pid}"):
        with pipeline_lock():
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with pipeline_lock():  # no stale lock after kill -9
        assert (locations.data_dir() / "pipeline.lock").read_text() == str(os.getpid())
