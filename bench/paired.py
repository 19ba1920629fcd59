"""Paired, interleaved ratios with a confidence interval: "B is 0.97× A", and how sure we are.

Why: on a shared machine the speed of *both* sides drifts by ±10–30% within minutes, so a ratio
of two medians measured one after the other is mostly noise (bench/serving.py at 3 repetitions
gave Engine/raw 0.91 on one quiet run and 1.02 on another). Here each round measures A and B
back to back — in alternating order (AB, BA, AB, …) so that neither side always runs on the
warmer machine — and keeps the round's ratio B/A. Drift that is slow compared to a round cancels
within it. Rounds go on until the 95% confidence interval of the mean log-ratio is narrower than
``rel_halfwidth`` (or ``max_rounds`` is reached, which the result says). Ratios are averaged in
log space (a geometric mean): 0.5× and 2× average to 1×, as they should.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Two-sided 95% Student t quantiles, df = 1..30 (beyond 30 the normal 1.96 is close enough).
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042]


def t95(df: int) -> float:
    return _T95[df - 1] if 1 <= df <= len(_T95) else 1.96


@dataclass
class Ratio:
    """The geometric-mean ratio B/A of one measure over paired rounds, with its 95% CI."""

    name: str
    ratios: list[float] = field(default_factory=list)
    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)

    def add(self, a: float, b: float) -> None:
        if a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b):
            self.a.append(a)
            self.b.append(b)
            self.ratios.append(b / a)

    @property
    def n(self) -> int:
        return len(self.ratios)

    def interval(self) -> tuple[float, float, float]:
        """(ratio, low, high): the geometric mean and its 95% confidence interval."""
        logs = [math.log(r) for r in self.ratios]
        if not logs:
            return float("nan"), float("nan"), float("nan")
        mean = statistics.fmean(logs)
        if len(logs) < 2:
            return math.exp(mean), float("nan"), float("nan")
        half = t95(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
        return math.exp(mean), math.exp(mean - half), math.exp(mean + half)

    def rel_halfwidth(self) -> float:
        ratio, low, high = self.interval()
        return (high - low) / 2 / ratio if self.n >= 2 else float("inf")

    def summary(self) -> dict[str, Any]:
        ratio, low, high = self.interval()
        return {"ratio": ratio, "ci95": [low, high], "rounds": self.n,
                "spread": {"min": min(self.ratios, default=float("nan")), "max": max(self.ratios, default=float("nan")),
                           "sd_log": statistics.stdev([math.log(r) for r in self.ratios]) if self.n > 1 else float("nan")},
                "a_median": statistics.median(self.a) if self.a else float("nan"),
                "b_median": statistics.median(self.b) if self.b else float("nan")}

    def text(self) -> str:
        ratio, low, high = self.interval()
        return f"{ratio:.3f} (95% CI {low:.3f}–{high:.3f}, {self.n} rounds)"


def interleave(measure_a: Callable[[int], dict[str, float]], measure_b: Callable[[int], dict[str, float]],
               names: list[str], min_rounds: int = 5, max_rounds: int = 40, rel_halfwidth: float = 0.02,
               on_round: Callable[[int, dict[str, Ratio]], None] | None = None) -> dict[str, Any]:
    """Run rounds of A and B (order alternating) until every measure in ``names`` has a 95% CI
    within ±``rel_halfwidth`` of its ratio, or ``max_rounds``. Each ``measure_*(round)`` returns
    a dict of measures (higher or lower is better, the ratio does not care)."""
    ratios = {name: Ratio(name) for name in names}
    rounds = 0
    while rounds < max_rounds:
        if rounds % 2 == 0:
            a, b = measure_a(rounds), measure_b(rounds)
        else:
            b, a = measure_b(rounds), measure_a(rounds)
        for name in names:
            ratios[name].add(a.get(name, float("nan")), b.get(name, float("nan")))
        rounds += 1
        if on_round:
            on_round(rounds, ratios)
        if rounds >= min_rounds and all(r.rel_halfwidth() <= rel_halfwidth for r in ratios.values()):
            break
    converged = all(r.rel_halfwidth() <= rel_halfwidth for r in ratios.values())
    return {"rounds": rounds, "converged": converged, "target_rel_halfwidth": rel_halfwidth,
            "measures": {name: r.summary() for name, r in ratios.items()},
            "text": {name: r.text() for name, r in ratios.items()}}
