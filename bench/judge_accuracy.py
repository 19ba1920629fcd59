"""How good is the configured judge? Valid-vote rate and accuracy on hand-labelled turns.

Runs the PRM judge (m votes, temperature 0.6, majority, ties → 0) over clawdesk/judge/labelled_cases.jsonl
— (request, response, next state, label) cases: clear praise, clear corrections, re-asks,
follow-ups that build on the answer (+1) and unrelated new questions (0) — once without and once
with the GBNF grammar, and prints per condition:

- valid-vote rate: votes that end in a parsable \\boxed{-1|0|1};
- accuracy: majority verdict == label (a case whose votes all failed counts as 0, as in the app);
- sign accuracy: on the ±1 cases only, the verdict has the right sign (0 counts as wrong);
- accuracy per category, and seconds per vote.

By default it measures the configured judge (``judge_model``, else the chat model). ``--model NAME``
(repeatable) measures those registered models instead, ``--all-models`` every model the catalog
knows (bundled and ``clawdesk models add``-ed): a bigger judge is the remedy docs/benchmarks.md
points to, so the table there should say which models were measured, and each gets a row. With one
model the JSON is that model's result (as before); with several, ``{"models": [result, ...]}``.

    .venv/bin/python bench/judge_accuracy.py [--limit N] [--every K] [--votes M] [--seed S]
        [--model NAME ... | --all-models] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clawdesk import catalog, locations  # noqa: E402
from clawdesk.engine import Engine  # noqa: E402
from clawdesk.judge import Judge  # noqa: E402
from clawdesk.judge.accuracy import load_cases  # noqa: E402 — the cases the app measures its judge on
from clawdesk.settings import load_settings  # noqa: E402
from clawdesk.store import open_store  # noqa: E402



def evaluate(judge: Judge, cases: list[dict]) -> dict:
    per_cat: dict[str, list[int]] = defaultdict(list)
    n_votes = n_valid = correct = sign_ok = sign_n = 0
    confusion: dict[str, int] = defaultdict(int)
    start = time.perf_counter()
    for i, case in enumerate(cases, 1):
        j = judge.reward(case["request"], case["response"], case["next_state"], case.get("role", "user"))
        n_votes += len(j.votes)
        n_valid += j.valid
        ok = int(j.value == case["label"])
        correct += ok
        per_cat[case["category"]].append(ok)
        confusion[f"{case['label']:+d}→{j.value:+d}"] += 1
        if case["label"] != 0:
            sign_n += 1
            sign_ok += int(j.value == case["label"])
        print(f"  [{i:>2}/{len(cases)}] {case['category']:<10} label {case['label']:+d} got {j.value:+d} "
              f"valid {j.valid}/{len(j.votes)}", file=sys.stderr)
    elapsed = time.perf_counter() - start
    return {
        "cases": len(cases), "votes": n_votes, "valid_vote_rate": n_valid / max(1, n_votes),
        "accuracy": correct / max(1, len(cases)), "sign_accuracy": sign_ok / max(1, sign_n),
        "per_category": {k: sum(v) / len(v) for k, v in sorted(per_cat.items())},
        "confusion": dict(sorted(confusion.items())), "s_per_vote": elapsed / max(1, n_votes),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, help="Only the first N cases.")
    ap.add_argument("--every", type=int, default=1, help="Every K-th case only (a subset spread over all categories).")
    ap.add_argument("--votes", type=int, help="Votes per case (default: the judge_votes setting).")
    ap.add_argument("--seed", type=int, default=0, help="Seed of the vote sampler (repeatable runs).")
    ap.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0 = setting).")
    ap.add_argument("--only", choices=("grammar", "free"), help="Run one condition only.")
    ap.add_argument("--json", help="Also write the results to this file.")
    ap.add_argument("--model", action="append", default=[], help="Measure this registered model (repeatable).")
    ap.add_argument("--all-models", action="store_true", help="Measure every model in the catalog.")
    args = ap.parse_args()

    settings = load_settings()
    store = open_store(locations.db_path())
    if args.all_models:
        entries = [m for m in catalog.all_models(store) if m.path and Path(m.path).exists()]
    elif args.model:
        entries = [catalog.resolve(store, name) for name in args.model]
    else:
        entries = [catalog.resolve(store, settings.judge_model) if settings.judge_model
                   else catalog.current_model(store, settings)]
    cases = load_cases()[:: args.every]
    cases = cases[: args.limit] if args.limit else cases
    results = [measure(entry, cases, settings, args) for entry in entries]
    if len(results) > 1:
        print("\n| judge | condition | valid votes | accuracy | sign accuracy on ±1 cases | s/vote |")
        print("|---|---|---|---|---|---|")
        for r in results:
            for name, c in r["conditions"].items():
                print(f"| {r['judge_model']} | {name} | {c['valid_vote_rate']:.1%} | {c['accuracy']:.1%} | "
                      f"{c['sign_accuracy']:.1%} | {c['s_per_vote']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results[0] if len(results) == 1 else {"models": results}, indent=2))


def measure(entry, cases: list[dict], settings, args: argparse.Namespace) -> dict:
    """Both conditions (or ``--only`` one) for one judge model."""
    engine = Engine(entry.path, n_ctx=settings.n_ctx, n_threads=args.threads or settings.n_threads)
    labels = defaultdict(int)
    for c in cases:
        labels[c["label"]] += 1
    print(f"judge model: {entry.name}  cases: {len(cases)} (labels {dict(labels)})  "
          f"votes: {args.votes or settings.judge_votes}  temperature: {settings.judge_temperature}")
    results = {"judge_model": entry.name, "conditions": {}}
    for name, grammar in (("free", False), ("grammar", True)):
        if args.only and args.only != name:
            continue
        judge = Judge.from_settings(engine, settings, grammar=grammar, seed=args.seed,
                                    **({"votes": args.votes} if args.votes else {}))
        print(f"\n{name}: running…", file=sys.stderr)
        r = evaluate(judge, cases)
        results["conditions"][name] = r
        print(f"\n{name:<8} valid votes {r['valid_vote_rate']:.1%}  accuracy {r['accuracy']:.1%}  "
              f"sign accuracy (±1 cases) {r['sign_accuracy']:.1%}  {r['s_per_vote']:.2f} s/vote")
        print("         per category: " + "  ".join(f"{k} {v:.0%}" for k, v in r["per_category"].items()))
        print("         label→verdict: " + "  ".join(f"{k}: {v}" for k, v in r["confusion"].items()))
    engine.close()
    return results


if __name__ == "__main__":
    main()
