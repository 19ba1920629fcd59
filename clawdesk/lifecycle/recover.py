"""A night is never lost: what a pass does with a candidate that an earlier, stopped pass left.

Training marks its samples 'used' as soon as the candidate is saved (``train/run.py`` step 5), but
the decision about that candidate — the gate, then promotion — comes minutes later. A pass stopped
in between (kill -9, Ctrl-C, a power cut, a laptop lid) left a run 'done' with no decision and its
samples consumed; the next pass found "no ready samples", and the user's feedback silently never
reached the model. (A ``train --train-only`` run leaves the same state on purpose: a candidate that
the next ``train --now`` gates.)

Such a run is an *orphan*: status 'done', no promotion, no refusal. Under the pipeline lock, before
judging, every orphan is settled one of two ways, and the pipeline log says which (``clawdesk
status`` shows it):

- **resumed** — the newest orphan whose candidate can still be judged fairly is gated again and, if
  accepted, promoted: the training minutes are not lost. "Fairly" means: its candidate folder is
  there, the version it was trained from is still the one served (the gate compares against the
  served version and promotion replaces it), and every sample it consumed is still 'used' by it
  (none forgotten, none handed back).
- **requeued** — any other orphan: its samples go back to 'ready' and the run is marked failed
  with the reason, so the next training pass learns from them afresh.

A pass killed between its promotion and the run's last status write needs neither: the adapter row
already names the run, so the record is only completed ("finished"); likewise a stored refusal.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..records import TrainingRun, TrainResult
from ..store import Store


@dataclass(frozen=True)
class Recovery:
    """What happened to one orphaned run (also written to the pipeline log)."""

    run_id: int
    action: str  # resumed | requeued | finished
    detail: str
    samples: int = 0  # samples returned to 'ready' (requeued)


def orphans(store: Store) -> list[TrainingRun]:
    """Runs that trained a candidate but never got a final decision, newest first.

    A 'done' run whose process is still alive (and is not this one) is left alone: that is a
    concurrent ``train --train-only`` finishing its bookkeeping, not a stopped pass."""
    return [run for run in store.runs() if run.status == "done" and not _still_running(run)]


def _still_running(run: TrainingRun) -> bool:
    """The run's own process is alive and is not this one. A process started after the run is a
    later one that reuses the pid, not the run's (pids wrap around)."""
    if not run.pid or run.pid == os.getpid():
        return False
    try:
        created = psutil.Process(run.pid).create_time()
    except psutil.Error:
        return False
    return created <= dt.datetime.fromisoformat(run.started_at).timestamp() + 1


def blocker(store: Store, run: TrainingRun) -> str | None:
    """Why ``run``'s candidate cannot be gated now (None: it can be resumed)."""
    trained = run.metrics.get("trained_ids")
    if not trained:
        return "its record lacks the list of samples it trained on"
    if not run.candidate_path or not (Path(run.candidate_path) / "adapter_config.json").exists():
        return "its candidate adapter is gone"
    served, parent = store.served_version(), run.settings.get("parent_version")
    if served != parent:
        return (f"it was trained from {_name(parent)} but {_name(served)} is served now "
                "(a rollback or another promotion came in between)")
    used = {s.id for s in store.samples(status="used", run_id=run.id)}
    if not set(trained) <= used:
        return "some of its samples were forgotten or handed back since"
    return None


def settle(store: Store, trigger: str) -> tuple[TrainResult | None, list[Recovery]]:
    """Settle every orphan (see the module docstring): returns the one to gate again, if any, as
    the ``TrainResult`` the gate reads, and what was done with the others."""
    done: list[Recovery] = []
    resume: TrainResult | None = None
    for run in orphans(store):
        finished = _finish(store, run)
        if finished:
            done.append(finished)
            continue
        why = blocker(store, run) if resume is None else "a newer stopped candidate is gated instead"
        if why is None:
            resume = as_result(run)
            continue
        done.append(requeue(store, run, why, trigger))
    return resume, done


def requeue(store: Store, run: TrainingRun, why: str, trigger: str) -> Recovery:
    """Hand ``run``'s samples back to 'ready' and close the run as failed, saying why."""
    n = store.requeue_samples([run.id])
    detail = (f"run {run.id} was stopped before its gate decision and cannot be gated now ({why}); "
              f"its {n} sample{'s' if n != 1 else ''} went back to ready for the next training pass")
    store.update_run(run.id, status="failed", error=f"stopped before its gate decision; {why}; "
                                                    f"{n} samples returned to ready")
    store.log_pipeline(trigger, "requeued", detail, run_id=run.id)
    return Recovery(run.id, "requeued", detail, n)


def as_result(run: TrainingRun) -> TrainResult:
    """The stored run as the ``TrainResult`` the gate and promotion read (everything they need is
    in the run record: written by ``train_pass`` together with status 'done')."""
    summary = run.metrics.get("summary", {})
    return TrainResult(run_id=run.id, method=run.method, backend=summary.get("backend", run.settings.get("backend", "")),
                       candidate_path=run.candidate_path, trained_ids=list(run.metrics.get("trained_ids", [])),
                       heldout_ids=list(run.metrics.get("heldout_ids", [])),
                       parent_version=run.settings.get("parent_version"), steps=run.metrics.get("steps", []),
                       summary=summary, duration_s=float(summary.get("duration_s") or 0.0))


def _finish(store: Store, run: TrainingRun) -> Recovery | None:
    """Complete the record of a run whose decision was already made (killed just after it)."""
    promoted = [a.version for a in store.adapters() if a.run_id == run.id]
    if promoted:
        store.update_run(run.id, status="promoted")
        return Recovery(run.id, "finished", f"run {run.id} had been promoted as version {promoted[0]}")
    if run.gate and run.gate.get("accepted") is False:
        store.update_run(run.id, status="refused")
        return Recovery(run.id, "finished", f"run {run.id} had been refused by the gate")
    return None


def _name(version: int | None) -> str:
    return "the base model" if version is None else f"version {version}"
