"""One training pass: ready samples → a candidate LoRA adapter and a run record.

The algorithm (docs/method.md §3–§5), top to bottom:

1. **Data.** Take the ready samples; hold out a seeded part for the promotion gate (by turn, so a
   turn and its demonstration stay together); keep those the method has a term for. A 👎 without
   a correction has its RL term scaled by ``train_w_unguided_negative`` (data.guide_negatives).
   The context-distillation samples the caller made (train/context.py) join the training side only.
2. **Model.** Base weights (the served GGUF dequantised, or the manifest's HF checkpoint) with the
   currently promoted adapter loaded as the starting LoRA — learning accumulates across runs. The
   back end is chosen automatically (QLoRA on CUDA, LoRA on the CPU) and recorded.
3. **Score once under π_old.** Before any update, the model as loaded *is* π_old, the weights
   that produced the samples. For each sample: log π_old of the sampled tokens and their top-k;
   for each hint, the teacher (the same weights — or the base with ``train_teacher = base``, or
   another model sharing the tokenizer with ``teacher_model`` — with the hint appended to the
   last user message) on the same response tokens; pick the hint
   whose top-k overlaps the student's most (ties → shorter); keep the OPD support's log-probs.
4. **Steps.** Shuffled batches of ``train_batch_size`` samples, one AdamW step per batch, for
   ``train_epochs`` epochs. Loss = w_rl · PPO-clipped binary RL + w_opd · PPO-clipped top-k OPD
   (+ k3 KL to the base, + demonstration NLL), each sample averaged over its own tokens, then
   summed over the batch / batch size. The ratio ρ = π_θ/π_old is measured against the weights of
   step 3 for the whole pass, so the PPO clip bounds how far one night can move from what is served.
5. **Save.** The adapter (peft format) is written to a temp dir and renamed to
   ``runs/<run_id>/candidate``; the run record gets the per-step curves. Only then are the
   trained samples marked 'used'. A crash leaves the served adapter untouched, the samples
   'ready', and a 'running' record that the next pass marks failed.

What is simplified, and why: no rollouts (a live conversation has no group; samples come from the
chat), one optimizer step per batch (the reference's advice for stability), and on the CPU the
context is cut from the left to ``train_context_tokens`` (reported in the run's summary).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from .. import catalog, locations
from ..errors import PipelineBusy, TrainingError
from ..records import Sample, TrainProgress, TrainResult
from ..settings import Settings, describe
from ..store import Store
from .data import (METHODS, SILENT_NEGATIVE, guide_negatives, method_weights, mix_positives, silent_negatives,
                   skip_reason, split_heldout)
from . import distributed
from .device_plan import fit_to_device
from .teacher import load_teacher, release
from .scoring import Scored, render_prompt
from .step import run_steps, score_config, score_samples
from .student_context import served_ids, served_messages
from .step import (  # noqa: F401 — re-exported: tests/test_train_pass.py pins the loss trajectory through these names
    corrected_reply as _corrected_reply, evaluate_loss, loss_batch, loss_config, train_step)

log = logging.getLogger(__name__)

Progress = Callable[[TrainProgress], None]


def train_pass(store: Store, settings: Settings, progress: Progress | None = None, method: str | None = None,
               *, limit: int | None = None, samples: list[Sample] | None = None,
               plan: distributed.Plan | None = None, context: list[Sample] | None = None) -> TrainResult:
    """Run one training pass and return the candidate (see the module docstring).

    ``samples`` overrides the store's ready samples (benchmarks compare methods on the same set);
    ``limit`` caps how many ready samples are read; ``context``: context-distillation samples
    (``train.context.context_samples``), trained on but never stored, held out or marked used.
    Under several processes (train/distributed.py)
    process 0 picks the data and does every write; the others get ``plan`` from it, train their
    shards and write nothing.
    """
    import torch

    method = method or settings.train_method
    if method not in METHODS:
        raise TrainingError(f"Unknown training method {method!r}; use one of {', '.join(METHODS)}.")
    report = progress or (lambda p: None)
    started = time.perf_counter()
    dist = distributed.accelerator()
    if plan is None:
        fail_stale_runs(store)
    from .backend import base_weights_dir, check_trainable, choose_backend, load_trainable

    entry = catalog.current_model(store, settings)
    check_trainable(entry)  # an architecture we cannot train is refused first, never mid-pass

    # 1. data (process 0 picks it; the others get it in the plan)
    weights = method_weights(method, settings)
    context = [s for s in context or [] if skip_reason(s, weights) is None]
    if plan is None:
        pool = samples if samples is not None else store.samples(status="ready", limit=limit)
        if not pool and not context:
            raise TrainingError("No ready samples to train on; rate some replies (thumbs, corrections) and judge "
                                "them first.")
        pool = guide_negatives(pool, settings.train_w_unguided_negative)
        if samples is None and settings.train_w_unguided_negative == 0:
            silent = silent_negatives(pool)
            store.drop_samples([s.id for s in silent], SILENT_NEGATIVE)
            pool = [s for s in pool if s not in silent]
            if not pool and not context:
                raise TrainingError(f"Nothing to train on: {len(silent)} 👎 without a correction or comment "
                                    "(those teach through their reason, a comment, or a correction).")
        train_pool, heldout = split_heldout(pool, settings.train_heldout_fraction, settings.train_seed)
        usable = [s for s in train_pool if skip_reason(s, weights, settings.train_anchor_to_base) is None]
        skipped = [s for s in train_pool if s not in usable]
        mixed = [s for s in mix_positives(usable, store.samples(status="used") if samples is None else [],
                                          settings.train_mix_positives, {s.message_id for s in heldout})
                 if skip_reason(s, weights, settings.train_anchor_to_base) is None]
        if not usable and not context:
            raise TrainingError(f"None of the {len(train_pool)} training samples has a term under method '{method}' "
                                f"({len(heldout)} more are held out); collect more feedback or try --method combined.")
        if settings.train_student_context == "served":
            usable, mixed = served_messages(store, settings, usable), served_messages(store, settings, mixed)
        parent = store.served_version()
        adapter_dir = store.get_adapter(parent).path if parent is not None else None
    else:
        # the same list in the same order as process 0 scores it: usable + mixed, then context
        usable, mixed, heldout, skipped = [s for s in plan.samples if s.source != "context"], [], [], []
        context = [s for s in plan.samples if s.source == "context"]
        parent, adapter_dir = None, plan.adapter_dir

    # 2. model
    backend = choose_backend(settings.train_backend)
    base_dir = base_weights_dir(entry)
    settings, memory = fit_to_device(base_dir, backend.name, backend.device, settings)  # CUDA: what fits
    if plan is None:
        run = store.start_run(method, _run_settings(settings, method, backend.name, entry.name, parent), len(usable))
        distributed.send_plan(distributed.Plan(run.id, method, usable + mixed + context, adapter_dir))
    else:
        run = None
    old_threads = torch.get_num_threads()
    try:
        if settings.train_threads:
            torch.set_num_threads(settings.train_threads)
        report(TrainProgress("load", 0, 1, f"back end: {backend.describe()}"))
        log.info("training run %d: %s, %d samples (+%d earlier positives mixed in, %d held out, %d skipped), "
                 "back end %s", run.id if run else plan.run_id, method, len(usable), len(mixed), len(heldout), len(skipped), backend.name)
        if memory:
            log.info("GPU memory plan: %s", memory.note)
        model, tokenizer = load_trainable(base_dir, adapter_dir, settings, backend)
        if settings.train_student_context == "served":  # every process re-renders the plan's messages
            usable, mixed = served_ids(tokenizer, usable), served_ids(tokenizer, mixed)
        report(TrainProgress("load", 1, 1, f"back end: {backend.describe()}"))

        # 3. score every sample once under π_old
        score_cfg = score_config(settings, weights, backend.device)
        score_start = time.perf_counter()
        teacher = load_teacher(store, settings, tokenizer) if weights.w_opd > 0 or context else None  # teacher_model
        scored = score_samples(model, tokenizer, usable + mixed + context, score_cfg, store, lambda done, total: report(
            TrainProgress("score", done, total, "scoring student and teacher log-probs")), teacher)
        release(teacher)
        teacher = None
        score_s = time.perf_counter() - score_start
        summary = _scoring_summary(scored, usable, tokenizer, settings)
        if summary["truncated_samples"]:
            log.info("%d samples' contexts were cut from the left to %d tokens (train_context_tokens)",
                     summary["truncated_samples"], settings.train_context_tokens)

        # 4. optimizer steps
        def on_step(steps: list[dict[str, Any]], total: int) -> None:
            if run is not None:
                store.update_run(run.id, metrics={"steps": steps})
            report(TrainProgress("train", len(steps), total, f"loss {steps[-1]['loss']:+.4f}", steps[-1]))

        train_start = time.perf_counter()
        steps = run_steps(model, scored, settings, method, score_cfg.micro_batch, on_step, dist=dist)
        train_s = time.perf_counter() - train_start
        if run is None:  # another process's shard is trained; process 0 saves, gates and promotes
            return TrainResult(run_id=plan.run_id, method=method, backend=backend.name, candidate_path="",
                               trained_ids=[s.id for s in usable], heldout_ids=[], skipped_ids=[],
                               parent_version=None, steps=steps, summary={"processes": dist.num_processes},
                               duration_s=time.perf_counter() - started)

        # 5. save the candidate, then (only then) consume the samples
        report(TrainProgress("save", 0, 1, "writing the candidate adapter"))
        candidate = _save_candidate(model, run.id, {"run_id": run.id, "method": method, "parent_version": parent,
                                                    "base_model": entry.name, "base_sha256": entry.sha256,
                                                    "backend": backend.name,
                                                    "trained_on": [s.message_id for s in usable + context]})
        duration = time.perf_counter() - started
        summary.update(backend=backend.name, memory_plan=memory.note if memory else None,
                       teacher_model=settings.teacher_model or None,
                       n_train=len(usable), n_mixed_positives=len(mixed), n_context=len(context),
                       context_message_ids=sorted({s.message_id for s in context}),
                       n_heldout=len(heldout), n_skipped=len(skipped),
                       steps=len(steps), score_s=round(score_s, 2), train_s=round(train_s, 2),
                       duration_s=round(duration, 2), parent_version=parent,
                       processes=dist.num_processes if dist is not None else 1,
                       final_loss=steps[-1]["loss"] if steps else None)
        store.update_run(run.id, status="done", candidate_path=str(candidate),
                         metrics={"steps": steps, "summary": summary,
                                  "heldout_ids": [s.id for s in heldout], "trained_ids": [s.id for s in usable]})
        store.set_sample_status([s.id for s in usable], "used", run_id=run.id)
        report(TrainProgress("save", 1, 1, str(candidate)))
    except BaseException as e:
        reason = "interrupted" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {e}"
        if run is not None:
            store.update_run(run.id, status="failed", error=reason)
        if isinstance(e, torch.OutOfMemoryError):
            raise TrainingError("Out of memory while training; lower train_batch_size, train_micro_batch or "
                                "train_context_tokens.") from e
        raise
    finally:
        torch.set_num_threads(old_threads)
    return TrainResult(run_id=run.id, method=method, backend=backend.name, candidate_path=str(candidate),
                       trained_ids=[s.id for s in usable], heldout_ids=[s.id for s in heldout],
                       skipped_ids=[s.id for s in skipped], parent_version=parent, steps=steps,
                       summary=summary, duration_s=duration)


# --- bookkeeping --------------------------------------------------------------------------------

def fail_stale_runs(store: Store) -> list[int]:
    """Mark 'running' records whose process is gone as failed; refuse if one is really running."""
    failed = []
    for run in store.runs():
        if run.status != "running":
            continue
        if run.pid and run.pid != os.getpid() and psutil.pid_exists(run.pid):
            raise PipelineBusy(f"Training run {run.id} (process {run.pid}) is still running; wait for it to finish.")
        store.update_run(run.id, status="failed", error="interrupted: the process ended before the run finished")
        failed.append(run.id)
    return failed


def _run_settings(settings: Settings, method: str, backend: str, model: str, parent: int | None) -> dict[str, Any]:
    values = {name: value for name, value, _default, _help in describe(settings) if name.startswith("train_")}
    return {**values, "method": method, "backend": backend, "model": model, "parent_version": parent}


def _scoring_summary(scored: list[Scored], samples: list[Sample], tokenizer: Any, settings: Settings) -> dict[str, Any]:
    """Hint selection and context statistics, plus a check that the HF chat template renders the
    logged prompt (the teacher's context is re-rendered from the messages).

    Only a different *text* is a problem (a differently formatted context for the teacher). Ids
    alone often differ in multi-turn conversations: the logged prompt keeps the exact tokens the
    model sampled in its earlier replies (e.g. one "\n\n" token), which re-tokenising the same text
    splits differently (two "\n"). That is counted, not warned about."""
    hinted = [s for s in scored if s.has_hint and not s.is_context]
    chosen = [s.overlaps[s.hint_index] for s in hinted if s.hint_index is not None and s.overlaps]
    mismatch = retokenised = 0
    for s in samples:
        if not s.prompt_messages or s.source == "demo":
            continue
        rendered = render_prompt(tokenizer, s.prompt_messages)
        if rendered == s.prompt_token_ids:
            continue
        if tokenizer.decode(rendered) == tokenizer.decode(s.prompt_token_ids):
            retokenised += 1
        else:
            mismatch += 1
    if mismatch:
        log.warning("%d samples' prompts render to a different text with the HF chat template than llama.cpp "
                    "logged; the teacher sees a differently formatted context for them", mismatch)
    return {
        "hinted_samples": len(hinted),
        "rewarded_samples": sum(1 for s in scored if s.reward and not s.is_demo),
        "demo_samples": sum(1 for s in scored if s.is_demo),
        "context_samples": sum(1 for s in scored if s.is_context),
        "mean_topk_overlap": round(sum(chosen) / len(chosen), 4) if chosen else None,
        "truncated_samples": sum(1 for s in scored if s.truncated),
        "template_mismatches": mismatch,
        "retokenised_prompts": retokenised,
        "response_tokens": sum(len(s.response_ids) for s in scored),
    }


def _save_candidate(model: Any, run_id: int, info: dict[str, Any]) -> Path:
    """peft folder → runs/<id>/candidate, via a temp dir and an atomic rename: a crash while
    writing never leaves a half-written candidate behind."""
    run_dir = locations.runs_dir() / str(run_id)
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    final = run_dir / "candidate"
    tmp = run_dir / f"candidate.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(str(tmp))
        (tmp / "clawdesk_run.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


