"""One training pass: ready samples → a candidate LoRA adapter and a run record.

The algorithm (docs/method.md §3–§5), top to bottom:

1. **Data.** Take the ready samples; hold out a seeded part for the promotion gate (by turn, so a
   turn and its demonstration stay together); keep those the method has a term for.
2. **Model.** Base weights (the served GGUF dequantised, or the manifest's HF checkpoint) with the
   currently promoted adapter loaded as the starting LoRA — learning accumulates across runs. The
   back end is chosen automatically (QLoRA on CUDA, LoRA on the CPU) and recorded.
3. **Score once under π_old.** Before any update, the model as loaded *is* π_old, the weights
   that produced the samples. For each sample: log π_old of the sampled tokens and their top-k;
   for each hint, the teacher (the same weights — or the base with ``train_teacher = base`` —
   with the hint appended to the last user message) on the same response tokens; pick the hint
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
import math
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import psutil

from .. import catalog, locations
from ..errors import PipelineBusy, StoreError, TrainingError
from ..records import Sample, TrainProgress, TrainResult
from ..settings import Settings
from ..store import Store
from .data import METHODS, MethodWeights, epoch_batches, method_weights, mix_positives, skip_reason, split_heldout
from .loss import LossBatch, LossConfig, batch_loss, combined_loss
from .scoring import ScoreConfig, Scored, render_prompt, response_logprobs, score_sample

log = logging.getLogger(__name__)

Progress = Callable[[TrainProgress], None]


def train_pass(store: Store, settings: Settings, progress: Progress | None = None, method: str | None = None,
               *, limit: int | None = None, samples: list[Sample] | None = None) -> TrainResult:
    """Run one training pass and return the candidate (see the module docstring).

    ``samples`` overrides the store's ready samples (benchmarks compare methods on the same set);
    ``limit`` caps how many ready samples are read.
    """
    import torch

    method = method or settings.train_method
    if method not in METHODS:
        raise TrainingError(f"Unknown training method {method!r}; use one of {', '.join(METHODS)}.")
    report = progress or (lambda p: None)
    started = time.perf_counter()
    fail_stale_runs(store)

    # 1. data
    pool = samples if samples is not None else store.samples(status="ready", limit=limit)
    if not pool:
        raise TrainingError("No ready samples to train on; rate some replies (thumbs, corrections) and judge them first.")
    train_pool, heldout = split_heldout(pool, settings.train_heldout_fraction, settings.train_seed)
    weights = method_weights(method, settings)
    usable = [s for s in train_pool if skip_reason(s, weights, settings.train_anchor_to_base) is None]
    skipped = [s for s in train_pool if s not in usable]
    mixed = [s for s in mix_positives(usable, store.samples(status="used") if samples is None else [],
                                      settings.train_mix_positives, {s.message_id for s in heldout})
             if skip_reason(s, weights, settings.train_anchor_to_base) is None]
    if not usable:
        raise TrainingError(f"None of the {len(train_pool)} training samples has a term under method '{method}' "
                            f"({len(heldout)} more are held out); collect more feedback or try --method combined.")

    # 2. model
    entry = catalog.current_model(store, settings)
    parent = store.served_version()
    adapter_dir = store.get_adapter(parent).path if parent is not None else None
    from .backend import choose_backend, load_trainable, trainable_parameters

    backend = choose_backend(settings.train_backend)
    run = store.start_run(method, _run_settings(settings, method, backend.name, entry.name, parent), len(usable))
    old_threads = torch.get_num_threads()
    try:
        if settings.train_threads:
            torch.set_num_threads(settings.train_threads)
        report(TrainProgress("load", 0, 1, f"back end: {backend.describe()}"))
        log.info("training run %d: %s, %d samples (+%d earlier positives mixed in, %d held out, %d skipped), "
                 "back end %s", run.id, method, len(usable), len(mixed), len(heldout), len(skipped), backend.name)
        model, tokenizer = load_trainable(_base_dir(entry), adapter_dir, settings, backend)
        report(TrainProgress("load", 1, 1, f"back end: {backend.describe()}"))

        # 3. score every sample once under π_old
        score_cfg = score_config(settings, weights, backend.device)
        score_start = time.perf_counter()
        scored: list[Scored] = []
        for i, sample in enumerate(usable + mixed):
            scored.append(score_sample(model, tokenizer, sample, score_cfg, _corrected_reply(store, sample)))
            report(TrainProgress("score", i + 1, len(usable) + len(mixed), "scoring student and teacher log-probs"))
        score_s = time.perf_counter() - score_start
        summary = _scoring_summary(scored, usable, tokenizer, settings)
        if summary["truncated_samples"]:
            log.info("%d samples' contexts were cut from the left to %d tokens (train_context_tokens)",
                     summary["truncated_samples"], settings.train_context_tokens)

        # 4. optimizer steps
        cfg = loss_config(settings, method)
        params = trainable_parameters(model)
        optimizer = torch.optim.AdamW(params, lr=settings.train_lr, weight_decay=0.0)
        batches = epoch_batches(scored, settings.train_batch_size, settings.train_epochs, settings.train_seed)
        per_epoch = math.ceil(len(scored) / max(1, settings.train_batch_size))
        steps: list[dict[str, Any]] = []
        train_start = time.perf_counter()
        for n, batch in enumerate(batches, start=1):
            metrics = train_step(model, optimizer, params, batch, cfg, settings, score_cfg.micro_batch)
            metrics.update(step=n, epoch=(n - 1) // per_epoch + 1)
            steps.append(metrics)
            store.update_run(run.id, metrics={"steps": steps})
            report(TrainProgress("train", n, len(batches), f"loss {metrics['loss']:+.4f}", metrics))
        train_s = time.perf_counter() - train_start

        # 5. save the candidate, then (only then) consume the samples
        report(TrainProgress("save", 0, 1, "writing the candidate adapter"))
        candidate = _save_candidate(model, run.id, {"run_id": run.id, "method": method, "parent_version": parent,
                                                    "base_model": entry.name, "backend": backend.name,
                                                    "trained_on": [s.message_id for s in usable]})
        duration = time.perf_counter() - started
        summary.update(backend=backend.name, n_train=len(usable), n_mixed_positives=len(mixed),
                       n_heldout=len(heldout), n_skipped=len(skipped),
                       steps=len(steps), score_s=round(score_s, 2), train_s=round(train_s, 2),
                       duration_s=round(duration, 2), parent_version=parent,
                       final_loss=steps[-1]["loss"] if steps else None)
        store.update_run(run.id, status="done", candidate_path=str(candidate),
                         metrics={"steps": steps, "summary": summary,
                                  "heldout_ids": [s.id for s in heldout], "trained_ids": [s.id for s in usable]})
        store.set_sample_status([s.id for s in usable], "used", run_id=run.id)
        report(TrainProgress("save", 1, 1, str(candidate)))
    except BaseException as e:
        reason = "interrupted" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {e}"
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


# --- one optimizer step -------------------------------------------------------------------------

def train_step(model: Any, optimizer: Any, params: list[Any], batch: list[Scored], cfg: LossConfig,
               settings: Settings, micro_batch: int) -> dict[str, Any]:
    """Forward/backward the batch in micro-batches (gradients accumulate), clip, step."""
    import torch

    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    totals: dict[str, float] = defaultdict(float)
    loss_value = 0.0
    for i in range(0, len(batch), micro_batch):
        per_sample, stats = combined_loss(loss_batch(model, batch[i:i + micro_batch]), cfg)
        loss = batch_loss(per_sample, len(batch))  # each micro-batch adds its share of Σ means / B
        loss.backward()
        loss_value += float(loss.detach())
        for k, v in stats.items():
            totals[k] += v
    max_norm = settings.train_max_grad_norm if settings.train_max_grad_norm > 0 else float("inf")
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    optimizer.step()
    seconds = time.perf_counter() - start
    return step_metrics(loss_value, totals, len(batch), grad_norm, seconds, settings.train_lr)


def loss_batch(model: Any, items: list[Scored]) -> LossBatch:
    """Run π_θ on the items (with grad) and pad everything the loss needs to [B, T(, K)]."""
    import torch
    from torch.nn.utils.rnn import pad_sequence

    device = next(model.parameters()).device
    logps = response_logprobs(model, [(s.prompt_ids, s.response_ids) for s in items])  # [T_i, V] each
    width = max((s.support_ids.shape[-1] for s in items if s.support_ids is not None), default=1)
    tok, old, teacher, ref, sup, sup_old, sup_teacher, sup_mask, demo_w = ([] for _ in range(9))
    for s, lp in zip(items, logps):
        targets = torch.tensor(s.response_ids, device=device)[:, None]  # [T, 1]
        t = len(s.response_ids)
        tok.append(lp.gather(-1, targets).squeeze(-1))
        # Demos have no π_old scores; unused inputs must still be finite (see LossBatch).
        o = s.old_logp.to(device) if s.old_logp is not None else torch.zeros(t, device=device)
        old.append(o)
        teacher.append(s.teacher_logp.to(device) if s.teacher_logp is not None else o)
        ref.append(s.ref_logp.to(device) if s.ref_logp is not None else o)
        demo_w.append(s.token_weights.to(device) if s.token_weights is not None else torch.ones(t, device=device))
        if s.support_ids is not None:
            ids = s.support_ids.to(device)
            sup.append(lp.gather(-1, ids))  # log π_θ on the support, [T, K], with grad
            sup_old.append(s.support_old_logp.to(device))
            sup_teacher.append(s.support_teacher_logp.to(device))
            sup_mask.append(s.support_mask.to(device))
        else:
            sup.append(torch.zeros(t, width, device=device))
            sup_old.append(torch.zeros(t, width, device=device))
            sup_teacher.append(torch.zeros(t, width, device=device))
            sup_mask.append(torch.zeros(t, width, dtype=torch.bool, device=device))

    def pad(xs: list[Any]) -> Any:  # ragged [T_i, ...] → [B, T_max, ...], zeros after the end
        return pad_sequence(xs, batch_first=True)

    lengths = torch.tensor([len(s.response_ids) for s in items], device=device)
    mask = torch.arange(int(lengths.max()), device=device)[None, :] < lengths[:, None]  # [B, T]
    return LossBatch(
        mask=mask, logp=pad(tok), old_logp=pad(old),
        rewards=torch.tensor([0.0 if s.is_demo else s.reward for s in items], device=device),
        has_hint=torch.tensor([s.has_hint for s in items], device=device),
        is_demo=torch.tensor([s.is_demo for s in items], device=device),
        teacher_logp=pad(teacher), support_logp=pad(sup), support_old_logp=pad(sup_old),
        support_teacher_logp=pad(sup_teacher), support_mask=pad(sup_mask),
        ref_logp=pad(ref),  # π_old where no reference was scored (demos, which get no KL term)
        demo_weights=pad(demo_w) if any(s.token_weights is not None for s in items) else None)


def sample_losses(model: Any, items: list[Scored], cfg: LossConfig) -> list[float]:
    """The objective of each item (a mean over its tokens) without updating anything: the gate
    compares candidate and served sample by sample, so it can tell a worse candidate from noise."""
    import torch

    with torch.no_grad():
        per_sample, _ = combined_loss(loss_batch(model, items), cfg)
    return [float(x) for x in per_sample]


def evaluate_loss(model: Any, items: list[Scored], cfg: LossConfig) -> float:
    """The objective on ``items`` (the batch loss) without updating anything."""
    return sum(sample_losses(model, items, cfg)) / len(items)


def score_config(settings: Settings, weights: MethodWeights, device: str) -> ScoreConfig:
    """What scoring under π_old needs from the settings (one place: train_pass and the benchmarks)."""
    return ScoreConfig(
        topk=settings.train_topk, support=settings.train_support, teacher=settings.train_teacher,
        context_tokens=settings.train_context_tokens, use_opd=weights.w_opd > 0,
        need_ref=settings.train_kl_coef > 0, anchor_to_base=settings.train_anchor_to_base,
        micro_batch=_micro_batch(settings, device), demo_copy_weight=settings.train_demo_copy_weight)


def loss_config(settings: Settings, method: str) -> LossConfig:
    w = method_weights(method, settings)
    return LossConfig(w_rl=w.w_rl, w_opd=w.w_opd, w_demo=w.w_demo, kl_coef=settings.train_kl_coef,
                      eps=settings.train_eps, eps_high=settings.train_eps_high,
                      diff_clip=settings.train_diff_clip, opd_variant=settings.train_opd_variant)


def step_metrics(loss: float, t: dict[str, float], batch_size: int, grad_norm: float, seconds: float,
                 lr: float) -> dict[str, Any]:
    """Turn summed diagnostics into the per-step curves stored with the run."""
    def ratio(a: str, b: str) -> float | None:
        return round(t[a] / t[b], 6) if t.get(b) else None

    clip_den = t["rl_tokens"] + t["opd_entries"]
    return {
        "loss": round(loss, 6),
        "rl_loss": round(t["rl_loss"] / batch_size, 6),
        "opd_loss": round(t["opd_loss"] / batch_size, 6),
        "demo_loss": round(t["demo_loss"] / batch_size, 6),
        "reward_mean": ratio("reward_sum", "rl_samples"),
        "opd_adv_mean": ratio("opd_adv_sum", "opd_positions"),
        "clip_frac": round((t["rl_clipped"] + t["opd_clipped"]) / clip_den, 6) if clip_den else None,
        "rl_clip_frac": ratio("rl_clipped", "rl_tokens"),
        "opd_clip_frac": ratio("opd_clipped", "opd_entries"),
        "diff_clip_frac": ratio("diff_clipped", "opd_entries"),
        "kl_old": ratio("kl_old", "on_policy_tokens"),
        "kl_ref": ratio("kl_ref", "on_policy_tokens") if t.get("kl_ref") else None,
        "grad_norm": round(grad_norm, 6),
        "tokens_per_s": round(t["tokens"] / seconds, 2) if seconds > 0 else None,
        "step_s": round(seconds, 3),
        "samples": batch_size,
        "tokens": int(t["tokens"]),
        "lr": lr,
    }


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


def _base_dir(entry: Any) -> Path:
    """The manifest's HF checkpoint when there is one, else the dequantised GGUF."""
    from ..engine.torch_model import hf_dir_for

    if entry.hf_checkpoint and Path(entry.hf_checkpoint).expanduser().is_dir():
        return Path(entry.hf_checkpoint).expanduser()
    return hf_dir_for(entry.path)


def _corrected_reply(store: Store, sample: Sample) -> list[int] | None:
    """The model's own reply a demonstration corrects (its logged token ids), for edit_weights;
    None for other samples or when the message is gone."""
    if sample.source != "demo":
        return None
    try:
        return list(store.get_message(sample.message_id).response_token_ids or [])
    except StoreError:
        return None


def _micro_batch(settings: Settings, device: str) -> int:
    if settings.train_micro_batch > 0:
        return settings.train_micro_batch
    return 8 if device == "cuda" else 1


def _run_settings(settings: Settings, method: str, backend: str, model: str, parent: int | None) -> dict[str, Any]:
    values = {f.name: getattr(settings, f.name) for f in fields(settings) if f.name.startswith("train_")}
    return {**values, "method": method, "backend": backend, "model": model, "parent_version": parent}


def _scoring_summary(scored: list[Scored], samples: list[Sample], tokenizer: Any, settings: Settings) -> dict[str, Any]:
    """Hint selection and context statistics, plus a check that the HF chat template renders the
    logged prompt (the teacher's context is re-rendered from the messages).

    Only a different *text* is a problem (a differently formatted context for the teacher). Ids
    alone often differ in multi-turn conversations: the logged prompt keeps the exact tokens the
    model sampled in its earlier replies (e.g. one "\n\n" token), which re-tokenising the same text
    splits differently (two "\n"). That is counted, not warned about."""
    hinted = [s for s in scored if s.has_hint]
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


