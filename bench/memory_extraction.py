"""How well does the preference memory tell a lasting wish from everything else people write?

Labelled remarks (``tests/data/memory_wishes.jsonl``: text, channel, lasting yes/no — written
before the extraction was first run on them) go through the rules alone, then through the rules
and the wish judge (``clawdesk.memory.judge``: the judge model picks a clause of the text, or
none, under a grammar built from the text). Reported per seed of the judge's votes: accuracy,
precision (how many learned wishes were real wishes — a false one sits in every prompt until
deleted) and recall.

    .venv/bin/python bench/memory_extraction.py [--seeds 0,1,2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, bundled_model_path, markdown_table, say, write_results  # noqa: E402

CASES = ROOT / "tests" / "data" / "memory_wishes.jsonl"


def scores(predicted: list[bool], truth: list[bool]) -> dict[str, float]:
    tp = sum(p and t for p, t in zip(predicted, truth))
    fp = sum(p and not t for p, t in zip(predicted, truth))
    fn = sum(t and not p for p, t in zip(predicted, truth))
    return {"accuracy": sum(p == t for p, t in zip(predicted, truth)) / len(truth),
            "precision": tp / (tp + fp) if tp + fp else float("nan"), "recall": tp / (tp + fn) if tp + fn else float("nan")}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="bench/memory_extraction.py", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2", help="Seeds of the judge's votes (default 0,1,2).")
    ap.add_argument("--votes", type=int, default=3, help="Votes per remark (default 3, the judge_votes default).")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    from clawdesk.engine import Engine
    from clawdesk.memory.judge import WishJudge
    from clawdesk.memory.rules import extract

    cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    truth = [c["lasting"] for c in cases]
    by_rules = [bool(extract(c["text"], c["channel"])) for c in cases]
    engine = Engine(bundled_model_path(), n_ctx=2048, n_threads=args.threads)
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        judge = WishJudge(engine, votes=args.votes, temperature=0.6, seed=seed)
        picks = [None if r else judge.pick(c["text"]) for c, r in zip(cases, by_rules)]
        predicted = [r or p is not None for r, p in zip(by_rules, picks)]
        runs.append({"seed": seed, **scores(predicted, truth), "picks": picks})
        say(f"seed {seed}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores(predicted, truth).items()))
    engine.close()
    rules = scores(by_rules, truth)
    mean = {k: statistics.fmean(r[k] for r in runs) for k in ("accuracy", "precision", "recall")}
    print(markdown_table(["extraction", "accuracy", "precision", "recall"],
                         [["rules only", rules["accuracy"], rules["precision"], rules["recall"]],
                          [f"rules + judge (mean of {len(runs)} seeds)", mean["accuracy"], mean["precision"], mean["recall"]]]))
    result = {"cases": cases, "rules": rules, "rules_by_case": by_rules, "judge_runs": runs, "judge_mean": mean}
    say(f"wrote {write_results('memory_extraction', result, args.out)}")
    return result


if __name__ == "__main__":
    main()
