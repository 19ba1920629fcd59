"""The pieces of a training pass that the trainer, the promotion gate and the benchmarks share.

One place turns ``Settings`` into the scoring and loss configurations (``score_config``,
``loss_config``), so the gate judges a candidate by the objective it was trained on and a
benchmark trains the way a pass does. Then, in the order a pass uses them:

- ``score_samples``: every sample scored once under π_old (``scoring.score_sample``), with the
  logged reply a demonstration corrects (``corrected_reply``) for its edit weights;
- ``run_steps``: seeded, shuffled batches for ``train_epochs`` epochs, one AdamW step each
  (``train_step``: micro-batched forward/backward, gradient clip, step, per-step metrics);
- ``sample_losses`` / ``evaluate_loss``: the objective without an update (the gate's check).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from ..errors import StoreError
from ..records import Sample
from ..settings import Settings
from ..store import Store
from .backend import trainable_parameters
from .data import MethodWeights, epoch_batches, method_weights
from .loss import LossBatch, LossConfig, batch_loss, combined_loss
from .scoring import ScoreConfig, Scored, response_logprobs, score_sample

StepHook = Callable[[list[dict[str, Any]], int], None]  # (steps so far, total steps) after each step


# --- settings → configurations -----------------------------------------------------------------

def score_config(settings: Settings, weights: MethodWeights, device: str) -> ScoreConfig:
    """What scoring under π_old needs from the settings: the one place the trainer, the gate and
    the benchmarks get it from (a hand-built copy in the gate once lost ``micro_batch`` and
    ``demo_copy_weight``)."""
    return ScoreConfig(
        topk=settings.train_topk, support=settings.train_support, teacher=settings.train_teacher,
        context_tokens=settings.train_context_tokens, use_opd=weights.w_opd > 0, use_context=weights.w_context > 0,
        need_ref=settings.train_kl_coef > 0, anchor_to_base=settings.train_anchor_to_base,
        micro_batch=micro_batch_size(settings, device), demo_copy_weight=settings.train_demo_copy_weight)


def micro_batch_size(settings: Settings, device: str) -> int:
    """Sequences per forward pass: the setting, else 1 on the CPU (one at a time is faster
    there) and 8 on CUDA."""
    if settings.train_micro_batch > 0:
        return settings.train_micro_batch
    return 8 if device == "cuda" else 1


def loss_config(settings: Settings, method: str) -> LossConfig:
    """The objective's weights and clips for ``method`` ('rl' and 'opd' zero the other term)."""
    w = method_weights(method, settings)
    return LossConfig(w_rl=w.w_rl, w_opd=w.w_opd, w_demo=w.w_demo, w_context=w.w_context,
                      kl_coef=settings.train_kl_coef,
                      eps=settings.train_eps, eps_high=settings.train_eps_high,
                      diff_clip=settings.train_diff_clip, opd_variant=settings.train_opd_variant)


# --- scoring under π_old ------------------------------------------------------------------------

def corrected_reply(store: Store, sample: Sample) -> list[int] | None:
    """The model's own reply a demonstration corrects (its logged token ids), for edit_weights;
    None for other samples or when the message is gone."""
    if sample.source not in ("demo", "transfer"):
        return None
    try:
        return list(store.get_message(sample.message_id).response_token_ids or [])
    except StoreError:
        return None


def forced_spans(store: Store | None, sample: Sample) -> list[list[int]]:
    """The response positions the engine wrote in the reply a sample trains on (the memory's
    quoted words, kept in the reply's sampling record); none for demonstrations and for samples
    whose ids are not the logged reply's."""
    if store is None or sample.source in ("demo", "transfer", "context"):
        return []
    try:
        message = store.get_message(sample.message_id)
    except StoreError:
        return []
    if list(message.response_token_ids or []) != list(sample.response_token_ids or []):
        return []
    return [list(span) for span in (message.sampling or {}).get("forced", [])]


def score_samples(model: Any, tokenizer: Any, samples: list[Sample], cfg: ScoreConfig, store: Store | None,
                  on_scored: Callable[[int, int], None] | None = None, teacher_model: Any = None) -> list[Scored]:
    """Score each sample once under the weights now active (π_old); ``on_scored(done, total)``
    after each, for a progress bar; ``teacher_model`` (train/teacher.py) scores the hints."""
    out: list[Scored] = []
    for sample in samples:
        out.append(score_sample(model, tokenizer, sample, cfg, corrected_reply(store, sample), teacher_model,
                                forced_spans(store, sample)))
        if on_scored:
            on_scored(len(out), len(samples))
    return out


# --- optimizer steps ----------------------------------------------------------------------------

def run_steps(model: Any, scored: list[Scored], settings: Settings, method: str, micro_batch: int,
              on_step: StepHook | None = None, dist: Any = None) -> list[dict[str, Any]]:
    """All of a pass's optimizer steps: AdamW on the LoRA parameters over seeded, shuffled
    batches of ``train_batch_size`` for ``train_epochs`` epochs. Returns the per-step metrics;
    ``on_step`` sees them after every step (the run record, a progress bar, a learning curve).
    ``dist``: accelerate's ``Accelerator`` under ``accelerate launch`` (train/distributed.py)."""
    import torch

    cfg = loss_config(settings, method)
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(params, lr=settings.train_lr, weight_decay=0.0)
    if dist is not None:
        model, optimizer = dist.prepare(model, optimizer)  # DDP: gradients averaged in backward
    batches = epoch_batches(scored, settings.train_batch_size, settings.train_epochs, settings.train_seed)
    per_epoch = math.ceil(len(scored) / max(1, settings.train_batch_size))
    steps: list[dict[str, Any]] = []
    for n, batch in enumerate(batches, start=1):
        metrics = train_step(model, optimizer, params, batch, cfg, settings, micro_batch, dist)
        metrics.update(step=n, epoch=(n - 1) // per_epoch + 1)
        steps.append(metrics)
        if on_step:
            on_step(steps, len(batches))
    return steps


def train_step(model: Any, optimizer: Any, params: list[Any], batch: list[Scored], cfg: LossConfig,
               settings: Settings, micro_batch: int, dist: Any = None) -> dict[str, Any]:
    """Forward/backward the batch in micro-batches (gradients accumulate), clip, step. Under
    ``dist`` (several processes) this process does its shard of the batch (distributed.shard)."""
    import torch

    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    totals: dict[str, float] = defaultdict(float)
    loss_value = 0.0
    if dist is not None:
        loss_value = _shard_backward(model, batch, cfg, micro_batch, dist, totals)
    for i in range(0, len(batch) if dist is None else 0, micro_batch):
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


def _shard_backward(model: Any, batch: list[Scored], cfg: LossConfig, micro_batch: int, dist: Any,
                    totals: dict[str, float]) -> float:
    """This process's shard: forward/backward each micro-batch (DDP syncs on the last one only);
    returns the step's loss and fills ``totals`` for the whole batch (what one process reports)."""
    import contextlib

    import torch

    from .distributed import shard

    chunks = shard(batch, dist.process_index, dist.num_processes, micro_batch)
    local = 0.0
    for n, (items, weight) in enumerate(chunks):
        sync = contextlib.nullcontext() if n == len(chunks) - 1 else dist.no_sync(model)
        with sync:
            per_sample, stats = combined_loss(loss_batch(model, items), cfg)
            loss = per_sample.sum() * weight  # Σ over this shard × N / B: DDP's mean is Σ / B
            loss.backward()
        local += float(loss.detach())
        for k, v in stats.items():  # every key on every process (the reduce below pairs them up)
            totals[k] += v if weight else 0.0
    keys = sorted(totals)
    summed = dist.reduce(torch.tensor([totals[k] for k in keys] + [local], device=dist.device), reduction="sum")
    totals.update(zip(keys, summed[:-1].tolist()))  # the diagnostics of the whole batch
    return float(summed[-1]) / dist.num_processes  # DDP's mean of N × (Σ/B)-scaled losses = Σ/B


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
    for i, s in enumerate(items):  # the engine's words are not the policy's: no term trains on them
        for a, b in s.forced:
            mask[i, a:b] = False
    return LossBatch(
        mask=mask, logp=pad(tok), old_logp=pad(old),
        rewards=torch.tensor([0.0 if s.is_demo else s.reward for s in items], device=device),
        has_hint=torch.tensor([s.has_hint for s in items], device=device),
        is_demo=torch.tensor([s.is_demo for s in items], device=device),
        teacher_logp=pad(teacher), support_logp=pad(sup), support_old_logp=pad(sup_old),
        support_teacher_logp=pad(sup_teacher), support_mask=pad(sup_mask),
        ref_logp=pad(ref),  # π_old where no reference was scored (demos, which get no KL term)
        demo_weights=pad(demo_w) if any(s.token_weights is not None for s in items) else None,
        is_context=torch.tensor([s.is_context for s in items], device=device))


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
        "context_loss": round(t.get("context_loss", 0.0) / batch_size, 6),
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


# --- the objective without an update -------------------------------------------------------------

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
