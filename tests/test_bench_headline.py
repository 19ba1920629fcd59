"""bench/headline.py's arithmetic: the paired answer-rate reading and the tuned / held-back rows.

These decide how a learning result is reported, so they are checked on hand-made rows whose
answers are known, not on a model run (tests/test_bench_grid.py runs the script end to end)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.headline import check, gate_tally, paired_answers, refused_by, summarise  # noqa: E402


def row(scenario: str, seed: int, base: float, served: float, replies: int = 12) -> dict:
    return {"scenario": scenario, "seed": seed, "base": 0.0, "weights": 0.2, "served": 0.9,
            "answers_base": base, "answers_weights": base, "answers_served": served, "nll_rest": 0.01,
            "replies": replies, "promoted": 1, "updates": 2}


def test_the_paired_reading_counts_lost_and_gained_replies_with_the_seed_spread():
    rows = [row("greet", 0, 1.0, 11 / 12), row("greet", 1, 1.0, 1.0), row("greet", 2, 11 / 12, 1.0),
            row("tldr", 0, 10 / 12, 11 / 12), row("tldr", 1, 1.0, 1.0), row("tldr", 2, 1.0, 10 / 12)]
    paired = paired_answers(rows)
    assert paired["lost"] == 3 and paired["gained"] == 2 and paired["replies"] == 72
    m, se = paired["scenarios"]["greet"]
    assert m == pytest.approx(0.0) and se == pytest.approx((1 / 12) / 3 ** 0.5)  # diffs −1, 0, +1 of 12
    # overall: per seed, the mean over scenarios; seed 0 (−1 + 1)/24 = 0, seed 1 0, seed 2 (+1 − 2)/24
    assert paired["overall"][0] == pytest.approx((-1 / 24) / 3)


def test_tuned_and_held_back_get_their_own_rows_but_the_bar_reads_all_seven():
    rows = [row("brief", 0, 1.0, 1.0), row("tldr", 0, 1.0, 11 / 12)]
    summary = summarise(rows)
    assert set(summary["groups"]) == {"tuned", "held back"}
    assert summary["groups"]["held back"]["answers_served"][0] == pytest.approx(11 / 12)
    verdict = dict(check(summary, "headline"))
    assert verdict["served answer rate ≥ base on every scenario"] is False  # tldr lost one reply
    assert "groups" in summarise([row("brief", 0, 1.0, 1.0)]) and not summarise([row("brief", 0, 1.0, 1.0)])["groups"]


def test_the_gate_tally_names_the_checks_that_refused():
    points = [{"pipeline": {"gate": {"accepted": True, "reasons": ["pass  objective (held-out): …"]}}},
              {"pipeline": {"gate": {"accepted": False, "reasons": [
                  "pass  objective (held-out, 3 samples): …",
                  "FAIL  answers your latest prompts, memory as served: 7/8 (served now: 8/8)"]}}},
              {"pipeline": None}]
    refused = refused_by(points)
    assert refused == [["answers your latest prompts, memory as served"]]
    rows = [dict(row("tldr", 0, 1.0, 1.0), refused_by=refused, promoted=1, updates=2)]
    assert gate_tally(rows) == {"candidates": 2, "promoted": 1, "refused": 1,
                                "by_check": {"answers your latest prompts, memory as served": 1}}


def test_the_overall_row_counts_only_the_seeds_that_have_every_scenario():
    rows = [row("brief", 0, 1.0, 1.0), row("greet", 0, 1.0, 1.0), row("brief", 1, 1.0, 0.5)]
    overall = summarise(rows)["overall"]
    assert overall["seeds"] == [0] and overall["answers_served"][0] == 1.0  # seed 1 has no greet yet
