"""The gate's objective rule on hand-computed numbers: a candidate is refused only when its
held-out objective is worse than the served one by more than the noise of the paired
per-sample differences (the whole gate runs on the real model in test_lifecycle.py)."""

import math

import pytest

from clawdesk.settings import Settings
from clawdesk.train.answers import answers
from clawdesk.train.gate import after_opening, answer_rate, objective_verdict, still_answers

SERVED = [1.0, 1.0, 1.0, 1.0]


def test_a_difference_within_one_standard_error_is_not_a_refusal():
    # d = [.1, -.1, .2, -.1]: mean .025, sd .15, se .075 → allowed Δ < .075
    v = objective_verdict(SERVED, [1.1, 0.9, 1.2, 0.9], Settings())
    assert v.ok and v.se == pytest.approx(0.075) and v.candidate == pytest.approx(1.025)
    assert "Δ +0.0250 ± 0.0750" in v.text


def test_noise_zero_is_the_strict_must_be_lower_rule():
    v = objective_verdict(SERVED, [1.1, 0.9, 1.2, 0.9], Settings(gate_objective_noise=0.0))
    assert not v.ok
    assert objective_verdict(SERVED, [0.9, 1.0, 0.95, 1.0], Settings(gate_objective_noise=0.0)).ok


def test_a_consistently_worse_candidate_is_refused():
    # d = [.3, .2, .3, .2]: mean .25, se .0289 — worse by ~8.7 standard errors
    v = objective_verdict(SERVED, [1.3, 1.2, 1.3, 1.2], Settings())
    assert not v.ok and v.se == pytest.approx(0.05773503 / 2)


def test_the_margin_demands_a_real_improvement():
    # d = [-.05, -.05, -.05, -.05]: se 0, so only the margin decides
    better = [0.95] * 4
    assert objective_verdict(SERVED, better, Settings()).ok
    assert not objective_verdict(SERVED, better, Settings(gate_objective_margin=0.1)).ok


def test_too_few_samples_only_advise():
    v = objective_verdict([1.0, 1.0], [1.5, 1.6], Settings())  # worse, but 2 < gate_min_heldout (3)
    assert v.ok and "advisory" in v.text
    one = objective_verdict([1.0], [2.0], Settings())
    assert one.ok and math.isinf(one.se)


def test_the_general_nll_check_starts_after_the_opening():
    # a greeting wish: the candidate finds the base reply's first token very unlikely, the rest as before
    base = [0.7, 0.4, 0.5, 0.6, 0.5, 0.3]
    greeting = [9.0, 1.2, 0.5, 0.6, 0.5, 0.3]
    assert after_opening(greeting, 0) - after_opening(base, 0) == pytest.approx(9.1 / 6)
    assert after_opening(greeting, 2) == pytest.approx(after_opening(base, 2)) == pytest.approx(0.475)
    # forgetting shows along the whole reply, so the check still sees it
    forgot = [x + 0.5 for x in base]
    assert after_opening(forgot, 2) - after_opening(base, 2) == pytest.approx(0.5)


def test_a_reply_shorter_than_the_opening_is_measured_whole():
    assert after_opening([0.2, 0.4], 2) == pytest.approx(0.3)
    assert after_opening([], 2) == 0.0
    assert Settings().gate_skip_opening_tokens == 2


# --- "still answers": the benchmarks' check, now the gate's too ------------------------------------

GOOD_REPLIES = [
    "The capital of France is Paris, a city on the Seine.",
    "Sunlight scatters off the air, and blue light scatters the most, so the sky looks blue.",
    "Keep a regular bedtime and avoid screens for an hour before sleeping.",
    "Put the egg in boiling water for about nine minutes, then cool it in cold water.",
    "Photosynthesis is how plants turn light, water and carbon dioxide into sugar and oxygen.",
    "Seasons happen because the Earth's axis is tilted as it orbits the Sun.",
    "The CPU runs a computer's instructions: it does the arithmetic and the decisions.",
    "Plan your meals, write a list and buy store brands to save money on groceries.",
]


def test_the_gate_answer_check_rejects_non_words_the_old_check_accepted():
    # Words with a topic match ("photosynthesis") among non-words: the gate's old check counted
    # three regex words, no loop and one shared stem, and said "answers".
    reply = "xq zzkt bpkr 7h7h photosynthesis qqq"
    assert not still_answers("What is photosynthesis?", reply)
    assert answers(reply, "What is photosynthesis?").reason == "non-words"
    assert still_answers("What is photosynthesis?", GOOD_REPLIES[4])


def test_the_gate_answer_rate_uses_that_check():
    assert answer_rate(GOOD_REPLIES) == 1.0
    collapsed = GOOD_REPLIES[:5] + ["zzkt bpkr qqq xq vvv", "7h7h ;;; %%% kkk", "france paris zzkt xq pq rr ww"]
    assert answer_rate(collapsed) == pytest.approx(5 / 8)  # under gate_min_answer_rate (1.0, the base's rate if lower): refused
    assert answer_rate(collapsed) < Settings().gate_min_answer_rate
