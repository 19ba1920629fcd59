"""The headline table: a grid's results per scenario, mean ± s.e. over seeds, checked against the bar.

``bench/grid.py`` leaves one result file per (scenario, seed); this reads them (no model) and
reports, per scenario, what a person gets after the last night — the **served** score (the
preference memory in the prompt and its quoted words written, ``memory_score``) — beside what the
**weights alone** learned (``score``), the drift on general prompts after each reply's opening
(``delta_nll_rest``) and the answer rate against the base model's. Seeds are the unit: each
scenario's s.e. is over its seeds, and the overall s.e. over the seeds' means across scenarios. The
tuned and held-back scenarios (``bench/grid.py``) also get an overall row each; the bar is checked
on all seven together, as issue 19 states it.

The answer rate is also read **paired**: per (scenario, seed), served minus base over the same
held-out prompts, with the count of replies lost and gained. With 12 replies per point one lost reply
is −0.08, so "≥ base" read literally asks for zero losses; the paired mean ± s.e. says whether a
loss is more than sampling noise. Both are printed; the bar's check is the literal one.

Two bars (issue 19), checked and printed:

- ``--bar headline`` (an ordinary user): served mean ≥ 0.75, every scenario ≥ 0.6, ΔNLL ≤ +0.10,
  served answer rate ≥ the base's;
- ``--bar thumbs`` (a thumbs-only user): never below base on score or answer rate, ΔNLL ≤ +0.10,
  and a gain on at least one scenario.

    .venv/bin/python bench/headline.py /tmp/grid [--bar thumbs] [--out bench/results --name headline]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import markdown_table, write_results  # noqa: E402
from bench.grid import HELDBACK  # noqa: E402

NLL_BAR = 0.10


def mean_se(xs: list[float]) -> tuple[float, float]:
    """Mean and standard error (0 for a single value: one seed is an anecdote, and says so by n)."""
    m = statistics.fmean(xs)
    return m, (statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else 0.0)


def job_results(folder: Path) -> list[Path]:
    """The finished jobs' files under a grid's ``jobs/`` (or the files given directly)."""
    if folder.is_file():
        return [folder]
    return [sorted(d.glob("personalize-2*.json"))[-1] for d in sorted((folder / "jobs").glob("*"))
            if d.is_dir() and list(d.glob("personalize-2*.json"))]


def seed_rows(paths: list[Path]) -> list[dict[str, Any]]:
    """One row per (scenario, seed): the base point and the last point of its first method."""
    rows = []
    for path in paths:
        record = json.loads(path.read_text())
        config = record.get("config", {})
        replies = int(config.get("heldout", 0)) * int(config.get("samples", 0))
        for run in record["runs"]:
            base, last = run["points"][0], run["points"][-1]
            served = last.get("memory_score")
            rows.append({
                "scenario": run["scenario"], "seed": run["seed"], "method": run["method"],
                "base": base["score"], "weights": last["score"],
                "served": last["score"] if served is None else served,
                "answers_base": base["answers"], "answers_weights": last["answers"],
                "answers_served": last.get("memory_answers", last["answers"]) or last["answers"],
                "nll_rest": last.get("delta_nll_rest", last["delta_nll"]), "nll": last["delta_nll"],
                "replies": replies, "refused_by": refused_by(run["points"][1:]),
                "promoted": sum(1 for p in run["points"][1:] if p.get("promoted")), "updates": len(run["points"]) - 1,
                "note": last.get("memory_note"), "literals": last.get("memory_literals"), "file": str(path),
            })
    return rows


def refused_by(points: list[dict[str, Any]]) -> list[list[str]]:
    """Per refused candidate, the gate checks it failed (the name before a reason's numbers)."""
    out = []
    for point in points:
        gate = (point.get("pipeline") or {}).get("gate") or {}
        if gate and not gate.get("accepted"):
            out.append([re.split(r"[(:]", r[len("FAIL"):].strip(), maxsplit=1)[0].strip()
                        for r in gate.get("reasons", []) if r.startswith("FAIL")])
    return out


def gate_tally(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How many candidates the gate refused, and which checks refused them (one may fail several):
    how strict each check is in practice, e.g. the own-prompts check that refuses on one reply of eight."""
    refused = [checks for r in rows for checks in r.get("refused_by", [])]
    return {"candidates": sum(r["updates"] for r in rows), "promoted": sum(r["promoted"] for r in rows),
            "refused": len(refused), "by_check": dict(Counter(c for checks in refused for c in checks).most_common())}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("base", "weights", "served", "answers_base", "answers_weights", "answers_served", "nll_rest")
    scenarios = {}
    for name in sorted({r["scenario"] for r in rows}):
        mine = [r for r in rows if r["scenario"] == name]
        scenarios[name] = {"seeds": sorted(r["seed"] for r in mine),
                           **{k: mean_se([r[k] for r in mine]) for k in keys},
                           "promoted": sum(r["promoted"] for r in mine), "updates": sum(r["updates"] for r in mine)}
    groups = {"tuned": [r for r in rows if r["scenario"] not in HELDBACK],
              "held back": [r for r in rows if r["scenario"] in HELDBACK]}
    return {"scenarios": scenarios, "overall": overall_of(rows, keys),
            "groups": {name: overall_of(mine, keys) for name, mine in groups.items() if mine and len(mine) < len(rows)},
            "answers_paired": paired_answers(rows), "gate": gate_tally(rows)}


def complete_seeds(rows: list[dict[str, Any]]) -> list[int]:
    """The seeds that have every scenario (all seeds when none has)."""
    names = {r["scenario"] for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    return [s for s in seeds if {r["scenario"] for r in rows if r["seed"] == s} == names] or seeds


def overall_of(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """Per seed, the mean over the scenarios; then mean ± s.e. over seeds. Only the seeds that have
    every scenario count (a grid still running has some seeds partly done, and a seed's mean over
    a few easy scenarios is not comparable); when none is complete, every seed counts."""
    seeds = complete_seeds(rows)
    rows = [r for r in rows if r["seed"] in seeds]
    per_seed = {k: [statistics.fmean(r[k] for r in rows if r["seed"] == s) for s in seeds] for k in keys}
    return {"seeds": seeds, **{k: mean_se(v) for k, v in per_seed.items()}}


def paired_answers(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Served minus base answer rate over the same prompts: per scenario (s.e. over seeds), overall
    (s.e. over the complete seeds' means across scenarios), and the replies lost and gained in all."""
    def diff(r: dict[str, Any]) -> float:
        return r["answers_served"] - r["answers_base"]

    def count(r: dict[str, Any]) -> int:
        return round(diff(r) * r["replies"]) if r.get("replies") else 0

    scenarios = {name: mean_se([diff(r) for r in rows if r["scenario"] == name])
                 for name in sorted({r["scenario"] for r in rows})}
    overall = mean_se([statistics.fmean(diff(r) for r in rows if r["seed"] == s) for s in complete_seeds(rows)])
    return {"scenarios": scenarios, "overall": overall,
            "lost": -sum(min(count(r), 0) for r in rows), "gained": sum(max(count(r), 0) for r in rows),
            "replies": sum(r.get("replies", 0) for r in rows)}


def check(summary: dict[str, Any], bar: str) -> list[tuple[str, bool]]:
    """The bar's points, each with whether it holds on these results."""
    sc, ov = summary["scenarios"], summary["overall"]
    drift = all(v["nll_rest"][0] <= NLL_BAR for v in sc.values())
    if bar == "headline":
        return [("served mean ≥ 0.75", ov["served"][0] >= 0.75),
                ("every scenario served ≥ 0.6", all(v["served"][0] >= 0.6 for v in sc.values())),
                (f"ΔNLL after the opening ≤ +{NLL_BAR:.2f} on every scenario", drift),
                ("served answer rate ≥ base on every scenario",
                 all(v["answers_served"][0] >= v["answers_base"][0] for v in sc.values()))]
    return [("never below base: served score", all(v["served"][0] >= v["base"][0] for v in sc.values())),
            ("never below base: served answer rate", all(v["answers_served"][0] >= v["answers_base"][0] for v in sc.values())),
            ("never below base: weights-only score", all(v["weights"][0] >= v["base"][0] for v in sc.values())),
            (f"ΔNLL after the opening ≤ +{NLL_BAR:.2f} on every scenario", drift),
            ("a gain on at least one scenario (served)", any(v["served"][0] > v["base"][0] for v in sc.values()))]


def table(summary: dict[str, Any]) -> str:
    def f(pair: tuple[float, float], signed: bool = False) -> str:
        m, se = pair
        return f"{m:+.3f} ± {se:.3f}" if signed else f"{m:.2f} ± {se:.2f}"

    rows = []
    groups = [(f"*{name}*", v) for name, v in summary.get("groups", {}).items()]
    for name, v in [*summary["scenarios"].items(), *groups, ("**overall**", summary["overall"])]:
        rows.append([name, len(v["seeds"]), f(v["base"]), f(v["served"]), f(v["weights"]), f(v["nll_rest"], True),
                     f"{v['answers_base'][0]:.2f}", f"{v['answers_served'][0]:.2f}", f"{v['answers_weights'][0]:.2f}",
                     f"{v['promoted']}/{v['updates']}" if "promoted" in v else ""])
    return markdown_table(["scenario", "seeds", "base", "served (memory + weights)", "weights only",
                           "ΔNLL after opening", "answers base", "answers served", "answers weights", "promoted"],
                          rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/headline.py", description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="+", type=Path, help="Grid output folders (their jobs/) or result files.")
    ap.add_argument("--bar", choices=("headline", "thumbs"), default="headline")
    ap.add_argument("--out", type=Path, help="Also write the JSON here (bench/results keeps *-latest.json).")
    ap.add_argument("--name", default="headline")
    args = ap.parse_args(argv)
    rows = seed_rows([p for src in args.sources for p in job_results(src)])
    if not rows:
        print("no finished jobs", file=sys.stderr)
        return 1
    summary = summarise(rows)
    print(table(summary))
    checks = check(summary, args.bar)
    paired = summary["answers_paired"]
    print()
    print("answer rate, served − base (paired, mean ± s.e. over seeds): "
          + ", ".join(f"{k} {m:+.3f} ± {se:.3f}" for k, (m, se) in paired["scenarios"].items())
          + f"; overall {paired['overall'][0]:+.3f} ± {paired['overall'][1]:.3f}"
          + f" ({paired['lost']} replies lost, {paired['gained']} gained, of {paired['replies']})")
    tally = summary["gate"]
    print(f"gate: {tally['promoted']} of {tally['candidates']} candidates promoted; "
          f"{tally['refused']} refused — by check: "
          + (", ".join(f"{k} {v}" for k, v in tally["by_check"].items()) or "none"))
    print()
    for what, ok in checks:
        print(f"- [{'x' if ok else ' '}] {what}")
    if args.out:
        write_results(args.name, {"benchmark": "headline", "bar": args.bar, "rows": rows, "summary": summary,
                                  "checks": checks}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
