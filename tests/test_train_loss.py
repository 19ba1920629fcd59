"""The objective on hand-computed tensors (small vocab, 3-token responses): every number below is
worked out in the comment next to it, not read back from the code."""

from __future__ import annotations

import math

import pytest
import torch

from clawdesk.train.loss import (
    LossBatch, LossConfig, batch_loss, build_support, combined_loss, demo_nll, k3_kl, ppo_clip, rl_token_loss,
    sampled_opd_token_loss, sample_means, select_hint, topk_opd_token_loss, topk_overlap)

EPS, EPS_HIGH = 0.2, 0.28
ln = math.log


def test_rl_term_positive_negative_zero_reward_inside_and_outside_the_clip():
    old = torch.full((3, 3), ln(0.5))
    # ratios per token: 1.0 (inside), 1.5 (above 1 + 0.28), 0.5 (below 1 - 0.2)
    new = (old + torch.tensor([0.0, ln(1.5), ln(0.5)])).expand(3, 3).clone().requires_grad_(True)
    rewards = torch.tensor([1.0, -1.0, 0.0])
    out = rl_token_loss(new, old, rewards, EPS, EPS_HIGH)
    expected = torch.tensor([
        # r=+1: max(-ρ, -clip ρ): ρ=1 → -1; ρ=1.5 → max(-1.5, -1.28) = -1.28; ρ=0.5 → max(-0.5, -0.8) = -0.5
        [-1.0, -1.28, -0.5],
        # r=-1: ρ=1 → 1; ρ=1.5 → max(1.5, 1.28) = 1.5; ρ=0.5 → max(0.5, 0.8) = 0.8
        [1.0, 1.5, 0.8],
        [0.0, 0.0, 0.0],  # r=0: no RL term
    ])
    torch.testing.assert_close(out.loss, expected)
    assert out.clipped.tolist() == [[False, True, False], [False, False, True], [False, False, False]]
    out.loss.sum().backward()
    # d/dlogp (−A·ρ) = −A·ρ where unclipped; 0 where the clipped branch won
    torch.testing.assert_close(new.grad, torch.tensor([[-1.0, 0.0, -0.5], [1.0, 1.5, 0.0], [0.0, 0.0, 0.0]]))


def test_ppo_log_ratio_is_clamped():
    out = ppo_clip(torch.tensor([0.0]), torch.tensor([-100.0]), torch.tensor([-1.0]), EPS, EPS_HIGH)
    assert torch.isfinite(out.loss).all()
    assert out.loss.item() == pytest.approx(math.exp(20.0), rel=1e-5)  # log-ratio 100 → clamped at 20


def test_hint_selection_overlap_and_ties():
    student = torch.tensor([[0, 1], [1, 2], [2, 3]])  # S^q_i, K = 2, T = 3
    teachers = torch.tensor([
        [[0, 1], [2, 1], [2, 4]],  # overlaps 2, 2, 1 = 5
        [[3, 4], [0, 4], [3, 0]],  # overlaps 0, 0, 1 = 1
        [[1, 0], [1, 2], [4, 2]],  # overlaps 2, 2, 1 = 5 (ties with the first)
    ])
    overlap = topk_overlap(student, teachers)
    assert overlap.tolist() == [[2, 2, 1], [0, 0, 1], [2, 2, 1]]
    assert select_hint(overlap, [30, 5, 30]) == 0  # the overlapping hint wins although it is longer
    assert select_hint(overlap, [30, 5, 12]) == 2  # a tie goes to the shorter hint
    assert select_hint(overlap, [12, 5, 12]) == 0  # equal length too: the earlier one
    assert select_hint(overlap[1:2], [7]) == 0  # one hint that barely overlaps is still the only one


def test_topk_opd_hand_computed():
    # One sample, 3 positions, a 2-token support each.
    old = torch.log(torch.tensor([[[0.6, 0.2], [0.6, 0.2], [0.5, 0.5]]]))
    teacher = torch.log(torch.tensor([[[0.3, 0.5], [0.05, 0.2], [0.5, 0.5]]]))
    mask = torch.tensor([[[True, True], [True, True], [False, False]]])  # position 3: empty support
    new = old.clone().requires_grad_(True)  # θ = π_old: every ratio is 1
    out = topk_opd_token_loss(new, old, teacher, mask, diff_clip=1.0, eps=EPS, eps_high=EPS_HIGH)
    # w = π_old renormalised on the support = [0.75, 0.25] at positions 1 and 2.
    # Position 1: diffs ln(.3/.6) = -0.6931, ln(.5/.2) = 0.9163 (inside ±1)
    #   A = [-0.6931·0.75, 0.9163·0.25] = [-0.5199, 0.2291]; loss = -ΣA = 0.2908
    # Position 2: diffs ln(.05/.6) = -2.4849 → clipped to -1, ln(1) = 0
    #   A = [-0.75, 0]; loss = 0.75
    a1 = [ln(0.5) * 0.75, ln(2.5) * 0.25]
    torch.testing.assert_close(out.advantage, torch.tensor([[sum(a1), -0.75, 0.0]]))
    torch.testing.assert_close(out.loss, torch.tensor([[-sum(a1), 0.75, 0.0]]))
    assert out.diff_clipped.tolist() == [[[False, False], [True, False], [False, False]]]
    out.loss.sum().backward()
    assert torch.isfinite(new.grad).all()
    assert new.grad[0, 2].abs().sum() == 0  # the empty support position contributes nothing
    # ratio 1 is inside the clip: d loss / d logp_v = -A_v
    torch.testing.assert_close(new.grad[0, 0], -torch.tensor(a1))


def test_topk_opd_ratio_clip():
    old = torch.log(torch.tensor([[[0.5, 0.5]]]))
    teacher = torch.log(torch.tensor([[[0.9, 0.1]]]))
    mask = torch.ones(1, 1, 2, dtype=torch.bool)
    # Token 1 already moved up (ρ = 1.5 > 1.28) — its positive advantage is clipped;
    # token 2 moved down (ρ = 0.5 < 0.8) — its negative advantage is clipped too.
    new = (old + torch.log(torch.tensor([[[1.5, 0.5]]]))).requires_grad_(True)
    out = topk_opd_token_loss(new, old, teacher, mask, 1.0, EPS, EPS_HIGH)
    a = [min(ln(1.8), 1.0) * 0.5, max(ln(0.2), -1.0) * 0.5]  # [0.2939, -0.5]
    torch.testing.assert_close(out.loss, torch.tensor([[-a[0] * 1.28 + -a[1] * 0.8]]))
    assert out.clipped.tolist() == [[[True, True]]]
    out.loss.sum().backward()
    assert new.grad.abs().sum() == 0


def test_support_subsets():
    s = torch.tensor([[0, 1], [2, 3]])
    t = torch.tensor([[1, 4], [5, 6]])
    ids, mask = build_support(s, t, "student")
    assert ids.tolist() == s.tolist() and mask.all()
    ids, mask = build_support(s, t, "teacher")
    assert ids.tolist() == t.tolist() and mask.all()
    ids, mask = build_support(s, t, "union")
    assert ids.tolist() == [[0, 1, 1, 4], [2, 3, 5, 6]]
    assert mask.tolist() == [[True, True, False, True], [True, True, True, True]]  # token 1 counted once


def test_sampled_token_opd_v1():
    old = torch.log(torch.tensor([[0.5, 0.5, 0.5]]))
    teacher = torch.log(torch.tensor([[0.25, 0.5, 1.0]]))
    new = old.clone().requires_grad_(True)
    out = sampled_opd_token_loss(new, old, teacher, EPS, EPS_HIGH)
    torch.testing.assert_close(out.loss, torch.tensor([[ln(2), 0.0, -ln(2)]]))  # −A·1, A = ln(π_T/π_old)


def test_k3_and_nll():
    assert k3_kl(torch.tensor([ln(0.5)]), torch.tensor([ln(0.5)])).item() == pytest.approx(0.0)
    # δ = ln(π_ref/π_θ) = ln 2: e^δ − δ − 1 = 2 − 0.6931 − 1
    assert k3_kl(torch.tensor([ln(0.25)]), torch.tensor([ln(0.5)])).item() == pytest.approx(1 - ln(2), abs=1e-6)
    assert demo_nll(torch.tensor([ln(0.25)])).item() == pytest.approx(ln(4))


def test_aggregation_weighs_samples_equally():
    token_loss = torch.tensor([[1.0, 0.0, 0.0], [3.0, 3.0, 3.0]])
    mask = torch.tensor([[True, False, False], [True, True, True]])
    per_sample = sample_means(token_loss, mask)
    torch.testing.assert_close(per_sample, torch.tensor([1.0, 3.0]))
    assert batch_loss(per_sample, 2).item() == pytest.approx(2.0)  # a token mean would give 10/4 = 2.5
    assert batch_loss(per_sample[:1], 4).item() == pytest.approx(0.25)  # a micro-batch's share of a batch of 4


def _batch(**overrides) -> LossBatch:
    """Two 3-token samples with ratio 1 everywhere; sample 2 is one token shorter."""
    old = torch.log(torch.full((2, 3), 0.5))
    sup_old = torch.log(torch.tensor([0.6, 0.2])).expand(2, 3, 2).clone()
    fields = dict(
        mask=torch.tensor([[True, True, True], [True, True, False]]),
        logp=old.clone().requires_grad_(True), old_logp=old,
        rewards=torch.tensor([-1.0, 0.0]), has_hint=torch.tensor([True, True]),
        is_demo=torch.tensor([False, False]), teacher_logp=old.clone(),
        support_logp=sup_old.clone().requires_grad_(True), support_old_logp=sup_old,
        support_teacher_logp=torch.log(torch.tensor([0.3, 0.5])).expand(2, 3, 2).clone(),
        support_mask=torch.ones(2, 3, 2, dtype=torch.bool))
    fields.update(overrides)
    return LossBatch(**fields)


def test_combined_loss_weights_terms_and_samples():
    opd = -(ln(0.5) * 0.75 + ln(2.5) * 0.25)  # per-position OPD loss at ratio 1 (see test above) = 0.2908
    per_sample, stats = combined_loss(_batch(), LossConfig())
    # sample 1: RL (r=-1, ρ=1 → +1 per token) + OPD; sample 2: OPD only (r=0)
    torch.testing.assert_close(per_sample, torch.tensor([1.0 + opd, opd]))
    assert stats["rl_tokens"] == 3 and stats["opd_positions"] == 5 and stats["reward_sum"] == -1.0
    per_sample, _ = combined_loss(_batch(), LossConfig(w_rl=0.0))  # the 'opd' ablation
    torch.testing.assert_close(per_sample, torch.tensor([opd, opd]))
    per_sample, _ = combined_loss(_batch(), LossConfig(w_opd=0.0))  # the 'rl' ablation
    torch.testing.assert_close(per_sample, torch.tensor([1.0, 0.0]))
    per_sample, _ = combined_loss(_batch(has_hint=torch.tensor([False, True])), LossConfig())
    torch.testing.assert_close(per_sample, torch.tensor([1.0, opd]))  # reward but no hint: no OPD term


def test_combined_loss_demo_and_kl():
    b = _batch(is_demo=torch.tensor([True, False]), rewards=torch.tensor([0.0, 1.0]))
    per_sample, stats = combined_loss(b, LossConfig(w_demo=0.5))
    opd = -(ln(0.5) * 0.75 + ln(2.5) * 0.25)
    # demo: only 0.5 · NLL = 0.5 · ln 2 per token; sample 2: RL (r=+1 → -1) + OPD
    torch.testing.assert_close(per_sample, torch.tensor([0.5 * ln(2), -1.0 + opd]))
    assert stats["demo_samples"] == 1
    # KL to a reference at 0.25 where π_θ = 0.5: k3 = e^{ln .5} − ln .5 − 1 = 0.1931 per token
    ref = torch.log(torch.full((2, 3), 0.25))
    per_sample, stats = combined_loss(_batch(ref_logp=ref), LossConfig(kl_coef=0.1))
    k3 = 0.5 - ln(0.5) - 1
    torch.testing.assert_close(per_sample, torch.tensor([1.0 + opd + 0.1 * k3, opd + 0.1 * k3]))
    assert stats["kl_ref"] == pytest.approx(5 * k3, rel=1e-5)


def test_demo_weights_shift_the_nll_toward_the_edit():
    """Per-token demonstration weights (mean 1) move the sample's NLL onto the weighted tokens."""
    logp = torch.log(torch.tensor([[0.5, 0.25, 0.5], [0.5, 0.5, 0.5]]))
    b = _batch(is_demo=torch.tensor([True, False]), rewards=torch.tensor([0.0, 1.0]),
               logp=logp.clone().requires_grad_(True), demo_weights=torch.tensor([[0.5, 2.0, 0.5], [1.0, 1.0, 1.0]]))
    per_sample, _ = combined_loss(b, LossConfig(w_demo=1.0))
    # (0.5·ln2 + 2·ln4 + 0.5·ln2) / 3 = 5·ln2 / 3, against (ln2 + ln4 + ln2) / 3 = 4·ln2 / 3 unweighted
    assert float(per_sample[0]) == pytest.approx(5 * ln(2) / 3, rel=1e-6)


def test_edit_weights_mark_what_the_user_changed():
    from clawdesk.train.scoring import edit_weights

    reply = [5, 6, 7, 8, 9, 2]  # the model's own tokens, 2 = end of turn
    # a greeting put in front: 3 new tokens + the first copied token (its context changed) weigh 1,
    # the 5 copied ones 0.1; sum 4 + 0.5 = 4.5 over 9 tokens → rescaled by 9 / 4.5 = 2
    assert edit_weights(reply, [1, 3, 4, 5, 6, 7, 8, 9, 2], 0.1) == pytest.approx([2.0] * 4 + [0.2] * 5)
    # a reply cut short: the end-of-turn token after the cut is the edit; 3·0.1 + 1 = 1.3 over 4
    assert edit_weights(reply, [5, 6, 7, 2], 0.1) == pytest.approx([0.4 / 1.3] * 3 + [4 / 1.3])
    assert edit_weights(reply, reply, 0.1) == pytest.approx([1.0] * 6)  # nothing changed: plain NLL
    assert edit_weights(reply, [1, 2], 1.0) is None and edit_weights([], [1, 2], 0.1) is None


def test_opd_gradient_raises_the_teacher_preferred_token():
    """A few SGD steps on the OPD term alone move π_θ toward what the hinted teacher prefers."""
    torch.manual_seed(0)
    logits = torch.randn(3, 6)  # T = 3 positions, vocab 6
    old_logp = torch.log_softmax(logits, -1)
    teacher_logits = logits.clone()
    support = old_logp.topk(4, -1).indices  # S^q_i
    preferred = support[:, 2]  # the teacher likes the student's 3rd choice more than the student does
    teacher_logits[torch.arange(3), preferred] += 2.0
    teacher_logp = torch.log_softmax(teacher_logits, -1)
    theta = logits.clone().requires_grad_(True)
    opt = torch.optim.SGD([theta], lr=0.5)
    for _ in range(5):
        logp = torch.log_softmax(theta, -1)
        out = topk_opd_token_loss(logp.gather(-1, support)[None], old_logp.gather(-1, support)[None],
                                  teacher_logp.gather(-1, support)[None], torch.ones(1, 3, 4, dtype=torch.bool),
                                  1.0, EPS, EPS_HIGH)
        opt.zero_grad()
        out.loss.mean().backward()
        opt.step()
    after = torch.log_softmax(theta.detach(), -1)
    gain = after.gather(-1, preferred[:, None]) - old_logp.gather(-1, preferred[:, None])
    assert (gain > 0.05).all(), gain
