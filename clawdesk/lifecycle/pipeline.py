"""The learning pipeline: judge → train → gate → promote, one at a time.

The same function runs from ``clawdesk train --now`` (foreground, progress bars), from the
nightly daemon and from the personalisation benchmark, so what is measured is what ships.

Order of events and what survives a crash at each point:
- the pipeline lock is taken (flock: released by the kernel if we die);
- leftovers of a crashed earlier run are cleared (failed run records, staging dirs);
- judging writes samples idempotently (re-running redoes nothing that is done);
- training writes a candidate under runs/<id>/ and marks its samples used only at the end;
- the gate's decision is stored with the run before anything is promoted;
- promotion is atomic (see ``promote``); the served version changes in one transaction.

A pass stopped between training and its decision leaves a trained candidate whose samples are
already 'used'; the next pass settles it before anything else (``recover``): it gates that
candidate again (and promotes it) instead of training, or hands its samples back to 'ready'.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TrainingError
from ..records import TrainProgress, TrainResult
from ..settings import Settings
from ..store import Store
from .lock import pipeline_lock
from .promote import promote, sweep
from .recover import settle

log = logging.getLogger("clawdesk.pipeline")
Progress = Callable[[str, int, int, str], None]  # (stage, done, total, message)


@dataclass
class PipelineReport:
    """One run of judge → train → gate → promote (what ``train --now`` and the daemon print)."""

    trigger: str
    decision: str  # promoted | refused | skipped | failed
    summary: str
    run_id: int | None = None
    version: int | None = None  # the version now served when promoted
    judge: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage


def run_pipeline(store: Store, settings: Settings, trigger: str = "manual", method: str | None = None,
                 progress: Progress | None = None, judge_engine=None) -> PipelineReport:
    """Run the whole pipeline once; returns what happened (also logged in the store)."""
    from ..judge.pipeline import judge_pending
    from ..train.run import fail_stale_runs, train_pass

    say = progress or (lambda *_: None)
    seconds: dict[str, float] = {}
    with pipeline_lock():
        fail_stale_runs(store)
        sweep(store)
        resume, settled = settle(store, trigger)
        for r in settled:
            log.info("%s: %s", r.action, r.detail)
        if resume is not None:
            say("resume", 1, 1, f"run {resume.run_id}: gating the candidate a stopped pass left")
            report = _decide(store, settings, resume, trigger, say, {}, _train_info(resume), seconds)
            outcome = (f"promoted as version {report.version}" if report.decision == "promoted"
                       else "refused by the gate")
            store.log_pipeline(trigger, "resumed", f"run {resume.run_id} was stopped before its gate decision; "
                                                   f"gated again: {outcome}", run_id=resume.run_id)
            report.summary = report.summary.replace(f"run {resume.run_id}:", f"run {resume.run_id} (resumed — "
                                                    "its pass was stopped before the gate decided):", 1)
            return report

        t = time.perf_counter()
        judged = judge_pending(store, settings, judge_engine=judge_engine,
                               progress=lambda done, total, msg="": say("judge", done, total, msg),
                               check_progress=lambda done, total, msg="": say("judge-check", done, total, msg))
        seconds["judge"] = round(time.perf_counter() - t, 2)
        judge_info = {k: v for k, v in asdict(judged).items() if k != "samples"}
        t = time.perf_counter()
        judge_info["wishes_learned"] = _learn_wishes(store, settings, judge_engine, say)
        seconds["memory"] = round(time.perf_counter() - t, 2)
        ready = store.samples(status="ready")
        if not ready:
            report = PipelineReport(trigger, "skipped", "no ready samples after judging", judge=judge_info,
                                    seconds=seconds)
            store.log_pipeline(trigger, report.decision, report.summary)
            return report

        t = time.perf_counter()
        context = _context_samples(store, settings, say)
        seconds["context"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()

        def on_train(p: TrainProgress) -> None:
            say(f"train:{p.phase}", p.done, p.total, p.message)

        try:
            result = train_pass(store, settings, progress=on_train, method=method, context=context)
        except TrainingError as e:
            seconds["train"] = round(time.perf_counter() - t, 2)
            report = PipelineReport(trigger, "skipped", str(e), judge=judge_info, seconds=seconds)
            store.log_pipeline(trigger, "skipped", str(e))
            return report
        seconds["train"] = round(time.perf_counter() - t, 2)
        return _decide(store, settings, result, trigger, say, judge_info, _train_info(result), seconds)


def _learn_wishes(store: Store, settings: Settings, judge_engine, say: Progress) -> int:
    """The preference memory's nightly half: remarks the rules found no wish in go to the judge
    (grammar-bound to the person's own clauses). A failure here must not cost the night's
    training, so it is logged and the pass goes on."""
    from ..errors import ClawDeskError
    from ..judge.pipeline import open_judge_engine
    from ..memory.judge import WishJudge, extract_pending

    opened = []

    def make_judge() -> WishJudge:
        engine = judge_engine
        if engine is None:
            engine = open_judge_engine(store, settings)
            opened.append(engine)
        return WishJudge.from_settings(engine, settings)

    try:
        learned = extract_pending(store, settings, make_judge,
                                  progress=lambda done, total: say("memory", done, total, "reading remarks for lasting wishes"))
    except ClawDeskError as e:
        log.warning("preference memory: the judge could not read remarks: %s", e)
        return 0
    finally:
        for engine in opened:
            engine.close()
    return len(learned)


def _context_samples(store: Store, settings: Settings, say: Progress) -> list:
    """The memory's context-distillation samples (train/context.py): the served model answers the
    recent prompts afresh, without the memory. Like the memory's judge, a failure here must not
    cost the night's training on the feedback."""
    from ..errors import ClawDeskError
    from ..train.context import context_samples

    try:
        return context_samples(store, settings, progress=lambda done, total: say(
            "context", done, total, "answering recent prompts without the memory (context distillation)"))
    except ClawDeskError as e:
        log.warning("context distillation skipped: %s", e)
        return []


def _train_info(result: TrainResult) -> dict[str, Any]:
    return {"method": result.method, "backend": result.backend, "steps": len(result.steps),
            "trained": len(result.trained_ids), "heldout": len(result.heldout_ids), **result.summary}


def _decide(store: Store, settings: Settings, result: TrainResult, trigger: str, say: Progress,
            judge_info: dict[str, Any], train_info: dict[str, Any], seconds: dict[str, float]) -> PipelineReport:
    """Gate ``result``'s candidate, store the decision, promote it if accepted — for a fresh
    candidate and for one a stopped pass left (``recover``) alike."""
    from ..train.gate import gate

    t = time.perf_counter()
    say("gate", 0, 1, "checking the candidate")
    decision, cases = gate(store, settings, result, progress=lambda m: say("gate", 0, 1, m))
    seconds["gate"] = round(time.perf_counter() - t, 2)
    gate_info = asdict(decision)
    store.update_run(result.run_id, gate=gate_info)
    say("gate", 1, 1, "accepted" if decision.accepted else "refused")
    if not decision.accepted:
        store.update_run(result.run_id, status="refused")
        failed = "; ".join(r[6:] for r in decision.reasons if r.startswith("FAIL"))
        report = PipelineReport(trigger, "refused", f"run {result.run_id}: candidate refused ({failed})",
                                run_id=result.run_id, judge=judge_info, train=train_info, gate=gate_info,
                                seconds=seconds)
        store.log_pipeline(trigger, "refused", failed, run_id=result.run_id)
        return report

    t = time.perf_counter()
    trained_on = [store.get_sample(i).message_id for i in result.trained_ids]
    trained_on += result.summary.get("context_message_ids") or []  # forgetting them flags this version too
    adapter = promote(store, settings, Path(result.candidate_path), _base_gguf(store, settings),
                      cases, run_id=result.run_id, metrics={"gate": gate_info, "train": train_info},
                      trained_on=trained_on, progress=lambda m: say("promote", 0, 1, m))
    seconds["promote"] = round(time.perf_counter() - t, 2)
    store.update_run(result.run_id, status="promoted")
    say("promote", 1, 1, f"version {adapter.version} is now served")
    report = PipelineReport(trigger, "promoted", f"run {result.run_id}: version {adapter.version} promoted",
                            run_id=result.run_id, version=adapter.version, judge=judge_info, train=train_info,
                            gate=gate_info, seconds=seconds)
    store.log_pipeline(trigger, "promoted", f"version {adapter.version}", run_id=result.run_id)
    return report


def _base_gguf(store: Store, settings: Settings) -> str:
    from .. import catalog

    return catalog.current_model(store, settings).path
