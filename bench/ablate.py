"""Ablations of the learning method on the personalisation scenarios (issue #9): which training
settings make the bundled 135M model learn a person's wish from ≤ 32 feedback-bearing turns and ONE
training pass, without forgetting how to answer everything else.

Protocol, per (scenario, seed):

1. the base model is scored on the held-out prompts (as in bench/personalize.py);
2. the simulated user has ``--turns`` turns with ClawDesk (the TUI's code path);
3. the judge runs once on those turns (rewards, hints, demonstrations) in that shared home, so
   every arm trains on exactly the same samples — the judge is slow and noisy, and judging per arm
   would add its noise to the comparison;
4. for each arm: a copy of that home, the arm's settings and ONE training pass (ClawDesk's real
   ``train_pass``); then its *candidate* adapter, exported to GGUF and served by llama.cpp straight
   from the run folder, gets the held-out score and ΔNLL on general prompts.

Neither the gate nor the promotion runs, so every table and plot here reports **candidates, not
served versions**: a candidate the gate would refuse is in the table like any other. That is
deliberate — the ablation measures what training does, and the numbers a gate looks at (ΔNLL on
general prompts, whether replies still answer) are columns of the row. What a user would actually
be served after the whole judge → train → gate → promote pipeline is bench/personalize.py's number.

Arms are settings overrides on top of the shipped defaults (``ARMS``); ``--arms`` picks some.
Positive mixing (``train_mix_positives``) is not an arm: it draws on turns an *earlier* pass
trained on, and a one-pass ablation has none; tests/test_anti_collapse.py measures it.
Results are merged across invocations with ``--merge`` (two workers on two cores each take some
scenarios or seeds):

    .venv/bin/python bench/ablate.py --scenarios plain,brief --seeds 0,1 --threads 1 --out /tmp/a
    .venv/bin/python bench/ablate.py --merge /tmp/a/ablate-*.json /tmp/b/ablate-*.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (RESULTS, fmt_delta, isolated_home, markdown_table, parse_overrides, say,  # noqa: E402
                          write_results)
from bench.evaluate import adapter_nll_check, served_nll  # noqa: E402
from bench.personalize import Config, Point, ScenarioRun, home_settings  # noqa: E402
from bench.scenarios import load_scenarios  # noqa: E402

# The paper's combined method as docs/method.md states it: no demonstrations, no KL, no mixing,
# the student's top-k support. Every other arm changes one thing relative to the row it names.
# The arms were measured with one epoch per pass, so the schedule is pinned here, not inherited
# from the defaults (which became 4 epochs and w_rl 0.25 because of these arms).
REFERENCE = {"train_w_demo": 0.0, "train_kl_coef": 0.0, "train_mix_positives": 0, "train_support": "student",
             "train_epochs": 1, "train_w_rl": 1.0}
DEMO = {**REFERENCE, "train_w_demo": 1.0}
# One epoch in batches of 16 is ~3 AdamW steps on a scenario's 30–50 samples.
# "3×8" is the prototype's schedule (docs/platform.md): 3 epochs in batches of 8, ~12 steps.
STEPS = {"train_epochs": 3, "train_batch_size": 8}
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "reference": ("combined", REFERENCE),
    "+demo": ("combined", DEMO),
    "+demo copy0.1": ("combined", {**DEMO, "train_demo_copy_weight": 0.1}),
    "+demo 3×8 lr3e-4": ("combined", {**DEMO, **STEPS, "train_lr": 3e-4}),
    "reference 3×8 lr3e-4": ("combined", {**REFERENCE, **STEPS, "train_lr": 3e-4}),
    "+demo 3×8 lr1e-4": ("combined", {**DEMO, **STEPS, "train_lr": 1e-4}),
    "+demo 3×8 lr5e-4": ("combined", {**DEMO, **STEPS, "train_lr": 5e-4}),
    "+demo 3×8 lr3e-4 union": ("combined", {**DEMO, **STEPS, "train_lr": 3e-4, "train_support": "union"}),
    "+demo 3×8 lr3e-4 +kl0.1": ("combined", {**DEMO, **STEPS, "train_lr": 3e-4, "train_kl_coef": 0.1}),
    "+demo +kl0.1": ("combined", {**DEMO, "train_kl_coef": 0.1}),
    "+demo lr3e-4": ("combined", {**DEMO, "train_lr": 3e-4}),
    "+demo lr1e-4": ("combined", {**DEMO, "train_lr": 1e-4}),
    "+demo support=union": ("combined", {**DEMO, "train_support": "union"}),
    "+demo support=teacher": ("combined", {**DEMO, "train_support": "teacher"}),
    "opd +demo": ("opd", DEMO),
    "opd +demo 4 epochs": ("opd", {**DEMO, "train_epochs": 4}),
    "+demo 4 epochs": ("combined", {**DEMO, "train_epochs": 4}),
    # opd +demo beat combined +demo at 4 epochs: is it the RL term's share of each step?
    "+demo 4 epochs rl0.25": ("combined", {**DEMO, "train_epochs": 4, "train_w_rl": 0.25}),
    "rl +demo 3×8 lr3e-4": ("rl", {**DEMO, **STEPS, "train_lr": 3e-4}),
    "opd +demo 3×8 lr3e-4": ("opd", {**DEMO, **STEPS, "train_lr": 3e-4}),
    "defaults": ("combined", {}),
    # the multi-update run's regressions (brief +12%, greet +11% after the opening): does a k3 KL
    # to the base weights on the model's own replies hold them back, and at what cost in score?
    "defaults +kl0.1": ("combined", {"train_kl_coef": 0.1}),
    "defaults +kl0.3": ("combined", {"train_kl_coef": 0.3}),
}


def prejudge(run: ScenarioRun) -> dict[str, Any]:
    """Judge the shared home's turns once; every arm's pipeline then finds nothing to judge."""
    from clawdesk import locations
    from clawdesk.judge.pipeline import judge_pending
    from clawdesk.store import open_store

    with isolated_home(run.root / "start") as home:
        settings = home_settings(home, run.cfg, run.seed)
        store = open_store(locations.db_path())
        try:
            start = time.perf_counter()
            report = judge_pending(store, settings)
            samples = store.samples(status="ready")
        finally:
            store.close()
    rewarded = [s for s in samples if s.reward and s.source != "demo"]
    return {"judge_s": round(time.perf_counter() - start, 1), "samples": len(samples),
            "demos": sum(1 for s in samples if s.source == "demo"),
            "hinted": sum(1 for s in samples if s.hints),
            "reward_plus": sum(1 for s in rewarded if s.reward > 0),
            "reward_minus": sum(1 for s in rewarded if s.reward < 0),
            "judge_samples": sum(1 for s in samples if s.source == "judge"),
            "failed_votes": getattr(report, "failed_votes", None)}


def run_arm(run: ScenarioRun, arm: str, base: Point) -> dict[str, Any]:
    """One arm: copy the judged home, ONE training pass with the arm's settings, then score the
    candidate served by llama.cpp from its run folder. The gate and the promotion are not run: the
    ablation measures what training does (the gate is judged by its own tests and by
    bench/personalize.py, which runs the whole pipeline); the numbers a gate would look at —
    ΔNLL on general prompts and whether replies still answer — are in the row."""
    from clawdesk import locations
    from clawdesk.store import open_store
    from clawdesk.train.run import train_pass

    method, overrides = ARMS[arm]
    home = run.root / _slug(arm)
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(run.root / "start", home, symlinks=True)
    cfg = Config(**{**asdict(run.cfg), "overrides": {**(run.cfg.overrides or {}), **overrides}})
    arm_run = ScenarioRun(run.scenario, run.seed, cfg, run.root.parent, run.nll_pairs, run.base_nll)
    with isolated_home(home):
        settings = home_settings(home, cfg, run.seed)
        store = open_store(locations.db_path())
        try:
            start = time.perf_counter()
            result = train_pass(store, settings, method=method)
            train_s = time.perf_counter() - start
            start = time.perf_counter()
            scored = score_candidate(arm_run, store, settings, result.run_id)
            eval_s = time.perf_counter() - start
        finally:
            store.close()
        shutil.rmtree(home, ignore_errors=True)
    return {"arm": arm, "method": method, "overrides": overrides, "scenario": run.scenario.name, "seed": run.seed,
            "base": base.score, "base_compliance": base.compliance, **scored,
            "train": {k: result.summary.get(k) for k in (
                "n_train", "n_heldout", "n_mixed_positives", "steps", "final_loss", "hinted_samples",
                "rewarded_samples", "demo_samples", "mean_topk_overlap", "template_mismatches")},
            "timings": {"train_s": round(train_s, 1), "eval_s": round(eval_s, 1)}}


def score_candidate(run: ScenarioRun, store, settings, run_id: int) -> dict[str, Any]:
    """Held-out score and ΔNLL of a candidate served from its run folder (never promoted)."""
    from clawdesk import catalog
    from clawdesk.engine import Engine
    from clawdesk.export import peft_to_gguf_lora

    record = store.get_run(run_id)
    base_gguf = catalog.current_model(store, settings).path
    gguf = peft_to_gguf_lora(Path(record.candidate_path), base_gguf, Path(record.candidate_path).parent / "adapter.gguf")
    engine = Engine(base_gguf, n_ctx=settings.n_ctx, n_threads=settings.n_threads, adapter_path=gguf)
    try:
        held = run._heldout(engine, settings)
    finally:
        engine.close()
    nll = adapter_nll_check(base_gguf, record.candidate_path, run.nll_pairs or [], settings.gate_skip_opening_tokens)
    delta, delta_rest = nll.minus(run.base_nll)
    return {"score": held.score, "compliance": held.compliance, "answers": held.answers,
            "mean_words": held.mean_words, "delta_nll": delta, "delta_nll_rest": delta_rest,
            "examples": held.examples}


def _slug(arm: str) -> str:
    return "arm-" + "".join(c if c.isalnum() else "_" for c in arm)


# --- the whole ablation -------------------------------------------------------------------------

def setup(sr: ScenarioRun) -> tuple[Point, dict[str, Any]]:
    """The shared start of one (scenario, seed): base score, simulated turns, judged once. Kept in
    ``start/setup.json`` so that an interrupted ablation resumes without redoing it (~6 min)."""
    from bench.evaluate import GENERAL_PROMPTS, base_greedy_replies
    from clawdesk.engine import Engine

    saved = sr.root / "start" / "setup.json"
    if saved.exists():
        data = json.loads(saved.read_text())
        base = Point(**data["base"])
        if sr.nll_pairs is None or sr.base_nll is None:  # the base model's reference replies and NLL
            from bench.common import bundled_model_path

            engine = Engine(bundled_model_path(), n_ctx=2048, n_threads=sr.cfg.overrides.get("n_threads", 1))
            try:
                sr.nll_pairs = base_greedy_replies(engine, sr.cfg.nll_max_tokens, GENERAL_PROMPTS[: sr.cfg.nll_prompts])
            finally:
                engine.close()
            with isolated_home(sr.root / "start"):
                from clawdesk import locations
                from clawdesk.settings import load_settings
                from clawdesk.store import open_store

                store = open_store(locations.db_path())
                try:
                    skip = load_settings(env={}).gate_skip_opening_tokens  # the start home's settings file
                    sr.base_nll = served_nll(store, bundled_model_path(), sr.nll_pairs, skip)
                finally:
                    store.close()
        say(f"[{sr.scenario.name} seed {sr.seed}] reusing the judged start in {sr.root}")
        return base, data
    base, stats, sim_s = sr.start()
    say(f"[{sr.scenario.name} seed {sr.seed}] judging the {stats.turns} turns once for every arm")
    judged = prejudge(sr)
    data = {"scenario": sr.scenario.name, "seed": sr.seed, "base": asdict(base), "session": stats.to_dict(),
            "simulate_s": round(sim_s, 1), "judged": judged}
    saved.write_text(json.dumps(data, default=str))
    say(f"[{sr.scenario.name} seed {sr.seed}] base {base.score:.2f}; {stats.feedback_turns} feedback turns; "
        f"judged {judged}")
    return base, data


def run(cfg: Config, arms: list[str], workdir: Path, rows_file: Path,
        scenario_dir: Path | None = None) -> dict[str, Any]:
    """Every arm on every (scenario, seed); each finished row is appended to ``rows_file`` at once,
    and rows already there are not redone (resume after an interruption)."""
    done = {(r["scenario"], r["seed"], r["arm"]) for r in _read_rows(rows_file)}
    started = time.perf_counter()
    # All setups first, then arm by arm across them: if the run is cut short, every finished arm
    # has been measured on every (scenario, seed), so its mean ± spread is complete.
    starts: list[tuple[ScenarioRun, Point, dict[str, Any]]] = []
    nll_pairs, base_nll = None, None
    for seed in cfg.seeds:
        for scenario in load_scenarios(cfg.scenarios or None, **({'folder': scenario_dir} if scenario_dir else {})):
            if all((scenario.name, seed, a) in done for a in arms):
                continue
            sr = ScenarioRun(scenario, seed, cfg, workdir, nll_pairs, base_nll)
            base, data = setup(sr)
            nll_pairs, base_nll = sr.nll_pairs, sr.base_nll
            starts.append((sr, base, data))
    for arm in arms:
        for sr, base, _ in starts:
            if (sr.scenario.name, sr.seed, arm) in done:
                continue
            sr.nll_pairs, sr.base_nll = nll_pairs, base_nll
            row = run_arm(sr, arm, base)
            with rows_file.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row, default=str) + "\n")
            say(f"[{sr.scenario.name} seed {sr.seed}] {arm}: score {base.score:.2f} → {row['score']:.2f} "
                f"(compliance {row['compliance']:.2f}, answers {row['answers']:.2f}, "
                f"ΔNLL {fmt_delta(row['delta_nll'])}; train {row['timings']['train_s']:.0f} s)")
    setups = [data for _, _, data in starts]
    return {"config": asdict(cfg), "arms": {a: {"method": ARMS[a][0], "overrides": ARMS[a][1]} for a in arms},
            "setups": setups, "rows": [r for r in _read_rows(rows_file) if r["arm"] in arms],
            "wall_s": round(time.perf_counter() - started, 1)}


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def summarise(rows: list[dict[str, Any]], max_delta_nll: float = 0.10) -> list[dict[str, Any]]:
    """Per arm: mean ± spread (population sd over the scenario × seed runs) of the held-out score
    after the pass, its gain over the base, compliance, answering, ΔNLL, and per-scenario means."""
    def ms(xs: list[float]) -> tuple[float | None, float | None]:
        xs = [x for x in xs if x is not None]
        if not xs:
            return None, None
        return statistics.fmean(xs), statistics.pstdev(xs) if len(xs) > 1 else 0.0

    out = []
    for arm in dict.fromkeys(r["arm"] for r in rows):
        chosen = [r for r in rows if r["arm"] == arm]
        by_scenario = {name: ms([r["score"] for r in chosen if r["scenario"] == name])
                       for name in dict.fromkeys(r["scenario"] for r in chosen)}
        score, spread = ms([r["score"] for r in chosen])
        gain, gain_sd = ms([r["score"] - r["base"] for r in chosen])
        dnll, dnll_sd = ms([r["delta_nll"] for r in chosen])
        rest, rest_sd = ms([r.get("delta_nll_rest") for r in chosen])  # None in rows from before it was measured
        out.append({"arm": arm, "runs": len(chosen), "base": ms([r["base"] for r in chosen])[0],
                    "score": score, "score_sd": spread, "gain": gain, "gain_sd": gain_sd,
                    "compliance": ms([r["compliance"] for r in chosen])[0],
                    "answers": ms([r["answers"] for r in chosen])[0], "delta_nll": dnll, "delta_nll_sd": dnll_sd,
                    "delta_nll_rest": rest, "delta_nll_rest_sd": rest_sd,
                    "max_delta_nll": max((r["delta_nll"] or 0) for r in chosen),
                    "within_nll_bound": all((r["delta_nll"] or 0) <= max_delta_nll for r in chosen),
                    "by_scenario": {k: v[0] for k, v in by_scenario.items()},
                    "by_scenario_sd": {k: v[1] for k, v in by_scenario.items()}})
    return out


CANDIDATES_NOTE = ("Candidates, not served versions: each arm's adapter after one training pass, scored from its "
                   "run folder; the gate and the promotion were not run.")


def render(summary: list[dict[str, Any]]) -> str:
    """The Markdown table, under a line saying what its rows are (candidates, never gated)."""
    scenarios = list(dict.fromkeys(s for row in summary for s in row["by_scenario"]))
    rows = [[r["arm"], r["runs"], r["base"], _pm(r["score"], r["score_sd"]), _pm(r["gain"], r["gain_sd"]),
             r["compliance"], r["answers"], _pm(r["delta_nll"], r["delta_nll_sd"], signed=True),
             _pm(r.get("delta_nll_rest"), r.get("delta_nll_rest_sd"), signed=True),
             "yes" if r["within_nll_bound"] else f"NO (max {r['max_delta_nll']:+.2f})",
             *[_pm(r["by_scenario"].get(s), r["by_scenario_sd"].get(s)) for s in scenarios]] for r in summary]
    headers = ["arm", "runs", "base", "candidate score after 1 pass", "gain", "compliance", "answers", "ΔNLL",
               "ΔNLL after opening", "every ΔNLL ≤ +0.10", *scenarios]
    return CANDIDATES_NOTE + "\n\n" + markdown_table(headers, rows)


def plot(summary: list[dict[str, Any]], path: Path) -> Path:
    """Held-out score of each arm's candidate after one pass, per scenario (bars: mean over seeds,
    whiskers: sd); the dotted line is the issue's target, 0.8. Candidates, never gated or promoted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(s for row in summary for s in row["by_scenario"]))
    width = 0.8 / max(1, len(summary))
    fig, ax = plt.subplots(figsize=(1.6 + 1.9 * len(scenarios), 3.6))
    for i, row in enumerate(summary):
        xs = [j + (i - (len(summary) - 1) / 2) * width for j in range(len(scenarios))]
        # an arm not run on a scenario gets no bar (NaN), so it cannot pass for a measured 0.00
        ys = [row["by_scenario"].get(s) if row["by_scenario"].get(s) is not None else float("nan") for s in scenarios]
        err = [row["by_scenario_sd"].get(s) or 0.0 for s in scenarios]
        colour = plt.get_cmap("tab20")(i % 20)  # more arms than tab10's 10 colours: no two alike
        ax.bar(xs, ys, width, yerr=err, capsize=2, label=row["arm"], color=colour)
    ax.set_xticks(range(len(scenarios)), scenarios)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("candidate's held-out score, one pass")
    ax.axhline(0.8, color="grey", linestyle=":", linewidth=1)
    ax.legend(fontsize=6, loc="upper right", ncol=2)
    ax.set_title("ClawDesk ablations — candidates, not gated or promoted: compliant AND answering, "
                 "mean ± sd over seeds", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pm(mean: float | None, sd: float | None, signed: bool = False) -> str:
    if mean is None:
        return "–"
    return f"{mean:+.3f} ± {sd or 0:.3f}" if signed else f"{mean:.2f} ± {sd or 0:.2f}"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bench/ablate.py", description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", help="Comma-separated scenario names (default all).")
    ap.add_argument("--scenario-dir", dest="scenario_dir", type=Path,
                    help="Folder of scenario files (default bench/scenarios; bench/scenarios/heldback holds the "
                    "scenarios written after the defaults were frozen).")
    ap.add_argument("--seeds", default="0", help="Comma-separated seeds (default 0).")
    ap.add_argument("--arms", help=f"Comma-separated arms (default all): {', '.join(ARMS)}.")
    ap.add_argument("--turns", type=int, default=32, help="Simulated turns before the one training pass (default 32).")
    ap.add_argument("--heldout", type=int, default=8, help="Held-out prompts per scenario (default 8).")
    ap.add_argument("--samples", type=int, default=2, help="Replies per held-out prompt (default 2).")
    ap.add_argument("--max-tokens", dest="max_tokens", type=int, default=160, help="Longest reply (default 160).")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for llama.cpp and torch (default 1).")
    ap.add_argument("--explicit-fraction", dest="explicit_fraction", type=float, default=0.5,
                    help="Unsatisfied replies answered with thumbs down; the rest get a complaint (default 0.5).")
    ap.add_argument("--correction-fraction", dest="correction_fraction", type=float, default=1.0,
                    help="Thumbs down that also carry a correction (default 1.0); with --explicit-fraction 1 and "
                    "0 here the simulated user only ever presses thumbs. Use a separate --workdir: the judged "
                    "start homes depend on the user.")
    ap.add_argument("--set", action="append", metavar="NAME=VALUE", help="Override a setting in every arm.")
    ap.add_argument("--out", type=Path, default=RESULTS, help="Where the JSON goes.")
    ap.add_argument("--name", default="ablate", help="Results file name prefix (default ablate).")
    ap.add_argument("--workdir", type=Path, help="Keep the judged start homes here; a later run with the same "
                    "workdir and --out resumes (default: a temp dir, deleted).")
    ap.add_argument("--merge", nargs="+", type=Path, help="Only merge these result files (.json or -rows.jsonl) "
                    "and print the table.")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.merge:
        rows = [row for path in args.merge for row in (
            _read_rows(path) if path.suffix == ".jsonl" else json.loads(path.read_text())["rows"])]
        setups = [s for path in args.merge if path.suffix == ".json" for s in json.loads(path.read_text())["setups"]]
        summary = summarise(rows)
        path = write_results(args.name, {"merged_from": [str(p) for p in args.merge], "setups": setups,
                                         "rows": rows, "summary": summary}, args.out)
        print(render(summary))
        say(f"results: {path}; plot: {plot(summary, path.with_suffix('.png'))}")
        return 0
    arms = [a.strip() for a in (args.arms.split(",") if args.arms else ARMS) if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"unknown arm(s): {', '.join(unknown)}; choose from: {', '.join(ARMS)}")
    import torch

    torch.set_num_threads(args.threads)
    overrides = {"n_threads": args.threads, "train_threads": args.threads, **parse_overrides(args.set or [])}
    cfg = Config(scenarios=[s for s in (args.scenarios or "").split(",") if s], methods=["combined"],
                 seeds=[int(s) for s in args.seeds.split(",")], updates=1, turns=args.turns, heldout=args.heldout,
                 samples=args.samples, max_tokens=args.max_tokens, explicit_fraction=args.explicit_fraction,
                 correction_fraction=args.correction_fraction, overrides=overrides)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="clawdesk-ablate-"))
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        result = run(cfg, arms, workdir, args.out / f"{args.name}-rows.jsonl", args.scenario_dir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    result["summary"] = summarise(result["rows"])
    path = write_results(args.name, result, args.out)
    print(render(result["summary"]))
    say(f"results: {path}  (wall time {result['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
