"""Learning curve of one training configuration, step by step: how fast does a wish the model
never shows on its own become likely, and what does each step cost on general prompts?

Why this exists: the one-pass ablations (bench/ablate.py) give a yes/no per arm at the end of a
pass — "greet me as Sam" stayed at 0.00 in every arm. A held-out score cannot tell "moving, but
too slowly" from "not moving at all"; a teacher-forced log-probability can. Per optimizer step
this measures, in torch, on a judged home from ``bench/ablate.py --workdir``:

- ``target_logp``: log π("Hi Sam!" | held-out prompt), summed over the target's tokens and
  averaged over the scenario's held-out prompts (the wish made concrete with ``--target``);
- ``first_p``: the probability of the target's first token as the reply's first token;
- ``delta_nll``: the change in mean NLL per token of the base model's greedy replies to the
  general prompts (the regression check), and ``delta_nll_rest`` without each reply's first
  ``--skip`` tokens — the part of the drift that is not the reply's opening, which a wish about
  openings must change.

It trains exactly as a pass does (``clawdesk.train.step``: ``score_samples`` once under π_old,
then ``run_steps``), from a fresh LoRA, for ``train_epochs`` epochs; each ``--config`` is a JSON
object of settings overrides, optionally with ``"method"``:

    .venv/bin/python bench/ablate.py --scenarios greet --workdir /tmp/ablw --arms defaults
    .venv/bin/python bench/learning_curve.py --home /tmp/ablw/greet-seed0/start --scenario greet \\
        --target "Hi Sam!" --config '{"train_epochs": 4}' --config '{"train_epochs": 4, "method": "opd"}'

Outputs a table per configuration, ``bench/results/learning_curve-<time>.json`` and a PNG.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, isolated_home, markdown_table, parse_overrides, say, write_results  # noqa: E402
from bench.evaluate import GENERAL_PROMPTS  # noqa: E402
from bench.scenarios import load_scenarios  # noqa: E402


def curve(home: Path, scenario: Any, target: str, overrides: dict[str, Any], method: str, threads: int,
          skip: int, general_tokens: int) -> dict[str, Any]:
    """Train from a fresh LoRA on the home's ready samples; evaluate before and after every step."""
    import torch

    from clawdesk import catalog, locations
    from clawdesk.settings import load_settings
    from clawdesk.store import open_store
    from clawdesk.train.backend import base_weights_dir, choose_backend, load_trainable
    from clawdesk.train.data import method_weights, skip_reason, split_heldout
    from clawdesk.train.scoring import render_prompt, response_logprobs
    from clawdesk.train.step import run_steps, score_config, score_samples

    torch.set_num_threads(threads)
    with isolated_home(home):
        store = open_store(locations.db_path())
        try:
            settings = load_settings(env={}).replace(**overrides)
            entry = catalog.current_model(store, settings)
            train, _ = split_heldout(store.samples(status="ready"), settings.train_heldout_fraction,
                                     settings.train_seed)
            weights = method_weights(method, settings)
            usable = [s for s in train if skip_reason(s, weights, settings.train_anchor_to_base) is None]
            # The pass's back end on CUDA; fp32 LoRA on the CPU, where this script's eval()/train()
            # switches would repack NF4 weights into a layout that trains with zero gradients.
            backend = choose_backend(settings.train_backend if torch.cuda.is_available() else "lora")
            model, tok = load_trainable(base_weights_dir(entry), None, settings, backend)
            score_cfg = score_config(settings, weights, backend.device)
            scored = score_samples(model, tok, usable, score_cfg, store)
        finally:
            store.close()

    target_ids = tok.encode(target, add_special_tokens=False)
    heldout = [render_prompt(tok, [{"role": "user", "content": p.text}]) for p in scenario.heldout]
    general = [render_prompt(tok, [{"role": "user", "content": p}]) for p in GENERAL_PROMPTS]
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        greedy = [model.generate(torch.tensor([p], device=device), max_new_tokens=general_tokens,
                                 do_sample=False)[0, len(p):].tolist() for p in general]

    def column(ids: list[int]) -> Any:  # [T, 1] on the model's device, for gathering log-probs
        return torch.tensor(ids, device=device)[:, None]

    def nll(logps: list[Any], replies: list[list[int]], start: int) -> float:
        per = [-float(lp[start:].gather(-1, column(r[start:])).mean()) for lp, r in zip(logps, replies)]
        return sum(per) / len(per)

    def evaluate() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            lps = response_logprobs(model, [(p, target_ids) for p in heldout])
            tgt = [float(lp.gather(-1, column(target_ids)).sum()) for lp in lps]
            first = [float(lp[0].exp()[target_ids[0]]) for lp in lps]
            gen = response_logprobs(model, list(zip(general, greedy)))
        model.train()
        return {"target_logp": sum(tgt) / len(tgt), "first_p": sum(first) / len(first),
                "nll": nll(gen, greedy, 0), "nll_rest": nll(gen, greedy, skip)}

    base = evaluate()
    points = [{"step": 0, **base, "delta_nll": 0.0, "delta_nll_rest": 0.0, "seconds": 0.0}]

    def after_step(steps: list[dict[str, Any]], _total: int) -> None:
        now = evaluate()
        points.append({"step": len(steps), **now, "delta_nll": now["nll"] - base["nll"],
                       "delta_nll_rest": now["nll_rest"] - base["nll_rest"], "seconds": round(steps[-1]["step_s"], 1)})
        say(f"[{method} {overrides}] step {len(steps)}: log π(target) {now['target_logp']:.2f}, "
            f"P(first) {now['first_p']:.3f}, ΔNLL {points[-1]['delta_nll']:+.3f} "
            f"(rest {points[-1]['delta_nll_rest']:+.3f})")

    run_steps(model, scored, settings, method, score_cfg.micro_batch, after_step)  # exactly a pass's steps
    return {"method": method, "overrides": overrides, "samples": len(scored),
            "demos": sum(1 for s in scored if s.is_demo), "points": points}


def plot(curves: list[dict[str, Any]], target: str, path: Path) -> Path:
    """Left: log π(target) per step; right: ΔNLL on general prompts (solid) and without the
    replies' openings (dashed), with the +0.10 bound dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for c in curves:
        label = c["method"] + " " + ", ".join(f"{k}={v}" for k, v in c["overrides"].items() if k not in
                                               ("n_threads", "train_threads"))
        steps = [p["step"] for p in c["points"]]
        left.plot(steps, [p["target_logp"] for p in c["points"]], marker=".", label=label)
        line, = right.plot(steps, [p["delta_nll"] for p in c["points"]], marker=".")
        right.plot(steps, [p["delta_nll_rest"] for p in c["points"]], linestyle="--", color=line.get_color())
    left.set_xlabel("optimizer step")
    left.set_ylabel(f"log π({target!r} | held-out)")
    left.legend(fontsize=6)
    right.axhline(0.10, color="grey", linestyle=":", linewidth=1)
    right.set_xlabel("optimizer step")
    right.set_ylabel("ΔNLL on general prompts")
    right.set_title("solid: all tokens; dashed: openings left out", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, required=True, help="A judged ClawDesk home (bench/ablate.py --workdir "
                    "<dir> leaves one per scenario and seed in <dir>/<scenario>-seed<N>/start); it is copied, not changed.")
    ap.add_argument("--scenario", required=True, help="Whose held-out prompts to use.")
    ap.add_argument("--scenario-dir", dest="scenario_dir", type=Path, help="Scenario folder (default bench/scenarios).")
    ap.add_argument("--target", required=True, help="The text the wish asks for, e.g. 'Hi Sam!'.")
    ap.add_argument("--config", action="append", default=[], help="JSON settings overrides, optionally with "
                    "\"method\" (repeatable; default: the shipped settings).")
    ap.add_argument("--set", action="append", metavar="NAME=VALUE", help="Override a setting in every config.")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1).")
    ap.add_argument("--skip", type=int, default=4, help="Opening tokens left out of delta_nll_rest (default 4).")
    ap.add_argument("--general-tokens", dest="general_tokens", type=int, default=48,
                    help="Length of the base model's greedy general replies (default 48).")
    ap.add_argument("--out", type=Path, default=RESULTS, help="Where the JSON and the PNG go.")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenarios = {s.name: s for s in (load_scenarios(folder=args.scenario_dir) if args.scenario_dir else load_scenarios())}
    if args.scenario not in scenarios:
        raise SystemExit(f"unknown scenario {args.scenario!r}; choose from: {', '.join(scenarios)}")
    if not (args.home / "data").exists():
        raise SystemExit(f"{args.home} is not a ClawDesk home (no data/ folder); make one with bench/ablate.py --workdir.")
    common = {"n_threads": args.threads, "train_threads": args.threads, **parse_overrides(args.set or [])}
    curves = []
    started = time.perf_counter()
    for raw in args.config or ["{}"]:
        spec = json.loads(raw)
        method = spec.pop("method", "combined")
        overrides = {**common, **parse_overrides([f"{k}={v}" for k, v in spec.items()])}
        with tempfile.TemporaryDirectory(prefix="clawdesk-curve-") as tmp:
            home = Path(tmp) / "home"
            shutil.copytree(args.home, home, symlinks=True)
            curves.append(curve(home, scenarios[args.scenario], args.target, overrides, method, args.threads,
                                args.skip, args.general_tokens))
    for c in curves:
        print(f"\n{c['method']} {c['overrides']} — {c['samples']} samples ({c['demos']} demonstrations)")
        print(markdown_table(["step", "log π(target)", "P(first token)", "ΔNLL", "ΔNLL without openings"],
                             [[p["step"], f"{p['target_logp']:.2f}", f"{p['first_p']:.3f}", f"{p['delta_nll']:+.3f}",
                               f"{p['delta_nll_rest']:+.3f}"] for p in c["points"]]))
    path = write_results("learning_curve", {"scenario": args.scenario, "target": args.target, "home": str(args.home),
                                            "curves": curves, "wall_s": round(time.perf_counter() - started, 1)},
                         args.out)
    png = plot(curves, args.target, path.with_suffix(".png"))
    shutil.copyfile(png, args.out / "learning_curve-latest.png")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
