"""The training objective as pure functions of tensors (docs/method.md §3–§4, §7).

Shapes: B samples, T response positions (padded; ``mask`` marks real tokens), K support entries
per position. ``logp`` is log π_θ (carries the gradient); ``old_logp`` is log π_old, the served
weights before this update; ``teacher_logp`` is log π_T, the same weights with the hint in
context. Everything except ``logp``-like arguments is treated as a constant (detached here, so a
caller cannot leak a gradient into the teacher by accident).

Per response token of an on-policy sample:

    L_t = w_rl · L^RL_t + w_opd · L^OPD_t (+ kl_coef · k3(π_θ, π_ref))

averaged over the sample's response tokens, then over the batch (``sum of sample means`` / B),
so a long answer weighs as much as a short one. A demonstration sample (a user's corrected
answer, off-policy) contributes only ``w_demo`` · NLL of its tokens, optionally weighted toward
the tokens the user changed (``demo_weights``, mean 1 per sample; scoring.edit_weights).
A context-distillation sample (train/context.py: the model's own reply to a logged prompt, the
teacher being the same weights with the preference memory in the prompt) is top-k OPD too, weighted
``w_context`` instead of ``w_opd`` and logged apart (``context_loss``), so a run shows what the
memory taught separately from what the night's hints did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

LOG_RATIO_LIMIT = 20.0  # exp(±20) is finite in fp32; beyond it a ratio only produces inf/nan


class Clipped(NamedTuple):
    loss: Tensor  # elementwise PPO loss
    clipped: Tensor  # bool: the clipped branch won (no gradient flows through that element)


def ppo_clip(logp: Tensor, old_logp: Tensor, advantage: Tensor, eps: float, eps_high: float) -> Clipped:
    """max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε_high)) elementwise, ρ = exp(logp − old_logp)."""
    log_ratio = (logp - old_logp.detach()).clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)
    ratio = torch.exp(log_ratio)
    advantage = advantage.detach()
    unclipped = -advantage * ratio
    clipped = -advantage * ratio.clamp(1.0 - eps, 1.0 + eps_high)
    return Clipped(torch.maximum(unclipped, clipped), clipped > unclipped)


def rl_token_loss(logp: Tensor, old_logp: Tensor, rewards: Tensor, eps: float, eps_high: float) -> Clipped:
    """Binary RL: the sample's reward r ∈ {−1, 0, +1} broadcast to every token (A_t = r, no group
    normalisation). [B, T] in, [B, T] out; r = 0 gives exactly zero loss and gradient."""
    advantage = rewards.detach()[:, None].expand_as(logp)  # [B] → [B, T]
    return ppo_clip(logp, old_logp, advantage, eps, eps_high)


class OPDTerm(NamedTuple):
    loss: Tensor  # [B, T]: Σ_{v∈S_i} L_v per position
    advantage: Tensor  # [B, T]: Σ_{v∈S_i} A_v per position (a diagnostic)
    clipped: Tensor  # [B, T, K] bool: ratio clip active on a support entry
    diff_clipped: Tensor  # [B, T, K] bool: |log π_T − log π_old| exceeded the diff clip


def topk_opd_token_loss(support_logp: Tensor, support_old_logp: Tensor, support_teacher_logp: Tensor,
                        support_mask: Tensor, diff_clip: float, eps: float, eps_high: float) -> OPDTerm:
    """Top-k OPD on a support S_i (docs/method.md §3): inputs [B, T, K], entries outside the support
    masked. A position whose support is empty contributes exactly zero."""
    old = support_old_logp.detach()
    # w_v = softmax over S_i of log π_old(v) = π_old renormalised on the support. Masked entries
    # get −inf; an all-masked row gives NaN, which becomes weight 0.
    w = torch.softmax(old.masked_fill(~support_mask, float("-inf")), dim=-1).nan_to_num(0.0)
    raw_diff = support_teacher_logp.detach() - old
    diff = raw_diff.clamp(-diff_clip, diff_clip)  # the stabilising diff clip, c = 1.0 by default
    advantage = torch.where(support_mask, diff * w, torch.zeros_like(diff))
    term = ppo_clip(support_logp, old, advantage, eps, eps_high)
    loss = torch.where(support_mask, term.loss, torch.zeros_like(term.loss))  # where(): no grad leaks in
    return OPDTerm(loss.sum(-1), advantage.sum(-1), term.clipped & support_mask,
                   (raw_diff.abs() > diff_clip) & support_mask)


def sampled_opd_token_loss(logp: Tensor, old_logp: Tensor, teacher_logp: Tensor, eps: float,
                           eps_high: float) -> Clipped:
    """OPD v1 (for comparison): A_t = log π_T(a_t) − log π_old(a_t) on the sampled token only,
    PPO-clipped. [B, T] in and out."""
    advantage = teacher_logp.detach() - old_logp.detach()
    return ppo_clip(logp, old_logp, advantage, eps, eps_high)


def k3_kl(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Per-token k3 estimator of KL(π_θ ‖ π_ref) on tokens sampled from the policy:
    exp(δ) − δ − 1 with δ = log π_ref − log π_θ; non-negative, unbiased, low variance."""
    delta = (ref_logp.detach() - logp).clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)
    return torch.exp(delta) - delta - 1.0


def demo_nll(logp: Tensor) -> Tensor:
    """Demonstration term: token-level negative log-likelihood of the user's corrected answer."""
    return -logp


def sample_means(token_loss: Tensor, mask: Tensor) -> Tensor:
    """[B, T] → [B]: each sample's mean over its own response tokens (padding excluded)."""
    mask = mask.to(token_loss.dtype)
    return (token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def batch_loss(per_sample: Tensor, batch_size: int) -> Tensor:
    """Sum of sample means / batch size. ``batch_size`` is the optimizer batch, which may span
    several micro-batches whose losses are back-propagated one after the other."""
    return per_sample.sum() / batch_size


# --- hint selection and the OPD support ---------------------------------------------------------

def topk_overlap(student_topk: Tensor, teacher_topk: Tensor) -> Tensor:
    """O[h, i] = |S^q_i ∩ S^p_{i,h}|. student_topk [T, K], teacher_topk [H, T, K] → [H, T]."""
    # [1, T, K, 1] == [H, T, 1, K] → [H, T, K, K]: does student token k appear in the teacher's set?
    same = student_topk[None, :, :, None] == teacher_topk[:, :, None, :]
    return same.any(-1).sum(-1)


def select_hint(overlap: Tensor, hint_lengths: list[int]) -> int:
    """h* = argmax_h Σ_i O[h, i]; ties go to the shorter hint (then the earlier one)."""
    totals = overlap.sum(-1).tolist()
    return min(range(len(totals)), key=lambda h: (-totals[h], hint_lengths[h], h))


def build_support(student_topk: Tensor, teacher_topk: Tensor, kind: str) -> tuple[Tensor, Tensor]:
    """The token ids each position's OPD loss sums over, and a mask of valid entries.

    'student' (the reference recipe): S^q_i. 'teacher': S^p_{i,h*} — may hold tokens the student
    does not consider. 'union': both, [T, 2K] with the teacher's duplicates of student tokens masked.
    """
    if kind == "student":
        return student_topk, torch.ones_like(student_topk, dtype=torch.bool)
    if kind == "teacher":
        return teacher_topk, torch.ones_like(teacher_topk, dtype=torch.bool)
    if kind == "union":
        # [T, K, 1] == [T, 1, K] → a teacher token already in the student's set is a duplicate
        duplicate = (teacher_topk[:, :, None] == student_topk[:, None, :]).any(-1)
        mask = torch.cat([torch.ones_like(duplicate), ~duplicate], dim=-1)
        return torch.cat([student_topk, teacher_topk], dim=-1), mask
    raise ValueError(f"unknown support {kind!r}")


# --- the combined objective ---------------------------------------------------------------------

@dataclass(frozen=True)
class LossConfig:
    """Weights and clips of the objective (the train_* settings; docs/method.md §5 defaults)."""

    w_rl: float = 1.0
    w_opd: float = 1.0
    w_demo: float = 0.0
    w_context: float = 0.0
    kl_coef: float = 0.0
    eps: float = 0.2
    eps_high: float = 0.28
    diff_clip: float = 1.0
    opd_variant: str = "topk"  # topk | v1


@dataclass
class LossBatch:
    """A padded micro-batch. [B, T] unless noted; K = support width."""

    mask: Tensor  # bool, real response tokens
    logp: Tensor  # log π_θ(a_t), with grad
    old_logp: Tensor  # log π_old(a_t)
    rewards: Tensor  # [B]; 0 = no RL term
    has_hint: Tensor  # [B] bool; False = no OPD term
    is_demo: Tensor  # [B] bool; demos get only the NLL term
    # log π_T(a_t) for v1 OPD. All inputs must be finite even where unused (use old_logp there):
    # a NaN in a branch torch.where discards still poisons the gradient (0 · NaN = NaN).
    teacher_logp: Tensor
    support_logp: Tensor  # [B, T, K] log π_θ on the support, with grad
    support_old_logp: Tensor  # [B, T, K]
    support_teacher_logp: Tensor  # [B, T, K]
    support_mask: Tensor  # [B, T, K] bool
    ref_logp: Tensor | None = None  # log π_ref(a_t), needed when kl_coef > 0
    demo_weights: Tensor | None = None  # [B, T] per-token demonstration weights (1 = plain NLL)
    is_context: Tensor | None = None  # [B] bool: context distillation (OPD weighted w_context); None = none


def combined_loss(b: LossBatch, cfg: LossConfig) -> tuple[Tensor, dict[str, float]]:
    """Per-sample losses [B] (each a mean over its tokens) and summed diagnostics.

    The diagnostics are sums and counts, so the caller can aggregate them over micro-batches.
    """
    mask = b.mask
    on_policy = (~b.is_demo)[:, None] & mask  # [B, T]
    has_reward = (b.rewards != 0) & ~b.is_demo  # [B]
    opd_on = b.has_hint & ~b.is_demo  # [B]
    zero = torch.zeros_like(b.logp)

    rl = rl_token_loss(b.logp, b.old_logp, b.rewards, cfg.eps, cfg.eps_high)
    rl_loss = torch.where(has_reward[:, None] & mask, rl.loss, zero)

    if cfg.opd_variant == "topk":
        # [B, T, K]: support entries of real tokens of hinted on-policy samples
        opd_entries = b.support_mask & (opd_on[:, None] & mask)[:, :, None]
        opd = topk_opd_token_loss(b.support_logp, b.support_old_logp, b.support_teacher_logp, opd_entries,
                                  cfg.diff_clip, cfg.eps, cfg.eps_high)
        opd_loss, opd_adv = opd.loss, opd.advantage
        opd_clipped, diff_clipped = opd.clipped, opd.diff_clipped
    elif cfg.opd_variant == "v1":
        v1 = sampled_opd_token_loss(b.logp, b.old_logp, b.teacher_logp, cfg.eps, cfg.eps_high)
        live = opd_on[:, None] & mask
        opd_loss = torch.where(live, v1.loss, zero)
        opd_adv = torch.where(live, (b.teacher_logp - b.old_logp).detach(), zero)
        opd_clipped, diff_clipped, opd_entries = v1.clipped & live, torch.zeros_like(live), live
    else:
        raise ValueError(f"unknown OPD variant {cfg.opd_variant!r}")

    is_context = b.is_context if b.is_context is not None else torch.zeros_like(b.is_demo)
    context_loss = torch.where(is_context[:, None], opd_loss, zero)
    feedback_opd = torch.where(is_context[:, None], zero, opd_loss)
    token = cfg.w_rl * rl_loss + cfg.w_opd * feedback_opd + cfg.w_context * context_loss
    kl_ref = zero
    if cfg.kl_coef > 0:
        if b.ref_logp is None:
            raise ValueError("kl_coef > 0 needs ref_logp")
        kl_ref = torch.where(on_policy, k3_kl(b.logp, b.ref_logp), zero)
        token = token + cfg.kl_coef * kl_ref
    demo_tok = demo_nll(b.logp) if b.demo_weights is None else demo_nll(b.logp) * b.demo_weights.detach()
    demo = torch.where(b.is_demo[:, None] & mask, demo_tok, zero)
    token = torch.where(b.is_demo[:, None], cfg.w_demo * demo, token)

    per_sample = sample_means(token, mask)
    with torch.no_grad():
        opd_positions = opd_on[:, None] & mask
        rl_tokens = has_reward[:, None] & mask
        stats = {
            "samples": float(b.mask.shape[0]),
            "tokens": float(mask.sum()),
            "rl_loss": float(sample_means(rl_loss, mask).sum()),
            "opd_loss": float(sample_means(feedback_opd, mask).sum()),
            "context_loss": float(sample_means(context_loss, mask).sum()),
            "context_samples": float(is_context.sum()),
            "demo_loss": float(sample_means(demo, mask).sum()),
            "kl_ref": float(kl_ref.sum()),
            "kl_old": float(torch.where(on_policy, k3_kl(b.logp, b.old_logp), zero).sum()),
            "on_policy_tokens": float(on_policy.sum()),
            "rl_samples": float(has_reward.sum()),
            "reward_sum": float(b.rewards[has_reward].sum()),
            "rl_tokens": float(rl_tokens.sum()),
            "rl_clipped": float((rl.clipped & rl_tokens).sum()),
            "opd_samples": float(opd_on.sum()),
            "opd_positions": float(opd_positions.sum()),
            "opd_adv_sum": float(opd_adv[opd_positions].sum()),
            "opd_entries": float(opd_entries.sum()),
            "opd_clipped": float(opd_clipped.sum()),
            "diff_clipped": float(diff_clipped.sum()),
            "demo_samples": float(b.is_demo.sum()),
        }
    return per_sample, stats
