"""The personalisation benchmark's report: per-scenario means, the Markdown table, the plot.

Kept apart from ``bench/personalize.py`` (which runs the simulated sessions and the pipeline) so
that merging workers' result files (``--merge``) and re-rendering a table read as what they are:
arithmetic over the stored points, with no model anywhere.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import markdown_table, say, write_results

if TYPE_CHECKING:
    from bench.personalize import Config


def aggregate(runs: list[dict[str, Any]], cfg: Config) -> dict[str, Any]:
    """Mean over seeds per (scenario, method), and over scenarios per method ('overall')."""
    def mean(xs: list[float]) -> float | None:
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs) if xs else None

    table: dict[str, dict[str, dict[str, Any]]] = {}
    scenario_names = sorted({r["scenario"] for r in runs})
    for name in scenario_names + ["overall"]:
        for method in cfg.labels():
            chosen = [r for r in runs if r["method"] == method and (name == "overall" or r["scenario"] == name)]
            if not chosen:
                continue
            n = len(chosen[0]["points"])
            row = {key: [mean([r["points"][i].get(key) for r in chosen]) for i in range(n)]
                   for key in ("score", "compliance", "answers", "delta_nll", "delta_nll_rest", "feedback_turns",
                               "mean_words", "memory_score", "memory_answers")}
            row["promoted"] = sum(1 for r in chosen for p in r["points"] if p["promoted"])
            row["decisions"] = [((p["pipeline"] or {}).get("report") or {}).get("decision", "failed")
                                for r in chosen for p in r["points"][1:]]
            row["runs"] = len(chosen)
            row["timings"] = {k: mean([p["timings"].get(k) for r in chosen for p in r["points"][1:]])
                              for k in ("simulate_s", "pipeline_s", "heldout_s", "nll_s")}
            stage_keys = sorted({k for r in chosen for p in r["points"] for k in p["timings"] if k.startswith("pipeline.")})
            row["timings"].update({k: mean([p["timings"].get(k) for r in chosen for p in r["points"][1:]])
                                   for k in stage_keys})
            table.setdefault(name, {})[method] = row
    return table


def render_table(result: dict[str, Any]) -> str:
    rows = []
    for name, methods in result["aggregate"].items():
        for method, row in methods.items():
            curve = " → ".join("–" if s is None else f"{s:.2f}" for s in row["score"])
            t = row["timings"]
            decisions = row["decisions"]
            gate = f"{row['promoted']}/{len(decisions)}" + (f" ({decisions.count('refused')} refused)"
                                                           if "refused" in decisions else "")
            memory = row.get("memory_score") or [None]
            rows.append([name, method, curve, memory[-1], (row.get("memory_answers") or [None])[-1],
                         row["compliance"][0], row["compliance"][-1], row["answers"][-1],
                         row["delta_nll"][-1], row["delta_nll_rest"][-1], row["feedback_turns"][-1], gate,
                         t.get("simulate_s"), t.get("pipeline_s"), t.get("heldout_s")])
    headers = ["scenario", "method", "score by update (0 = base), weights only", "score last, memory in prompt",
               "answers last, memory in prompt", "compliance base", "compliance last",
               "answers last", "ΔNLL last", "ΔNLL last, after opening", "feedback turns", "promotions", "sim s/upd", "pipeline s/upd",
               "held-out s/upd"]
    stages = sorted({k for m in result["aggregate"].get("overall", {}).values() for k in m["timings"]
                     if k.startswith("pipeline.")})
    text = markdown_table(headers, rows)
    if stages:
        stage_rows = [[method, *[row["timings"].get(k) for k in stages]]
                      for method, row in result["aggregate"]["overall"].items()]
        text += "\n\nPipeline stage seconds per update (overall mean):\n\n" + \
            markdown_table(["method", *[k.removeprefix("pipeline.") for k in stages]], stage_rows)
    return text


def plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    panels = list(result["aggregate"].items())
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), sharey=True, squeeze=False)
    for ax, (name, methods) in zip(axes[0], panels):
        for method, row in methods.items():
            xs = list(range(len(row["score"])))
            line, = ax.plot(xs, row["score"], marker="o", label=f"{method} score")
            ax.plot(xs, row["compliance"], linestyle=":", color=line.get_color(), label=f"{method} compliance")
        ax.set_title(name)
        ax.set_xlabel("update")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("held-out score (0–1)")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle("ClawDesk personalisation: score (solid) and compliance only (dotted) vs updates", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(result: dict[str, Any], args: argparse.Namespace) -> int:
    """Write the JSON (and the plot), print the table."""
    path = write_results("personalize", result, args.out)
    table = render_table(result)
    if not args.no_plot:
        png = plot(result, path.with_suffix(".png"))
        shutil.copyfile(png, args.out / "personalize-latest.png")
        say(f"plot: {png}")
    print(table)
    say(f"results: {path}  (wall time {result['wall_s']:.0f} s)")
    return 0


SPLIT = ("scenarios", "seeds", "methods")  # what workers may divide between them


def merge(paths: list[Path]) -> dict[str, Any]:
    """One result from several workers' files. The protocol (everything in the config but the
    scenarios, seeds and methods a worker took) must match, or the merged table would compare
    unlike runs."""
    import json
    from dataclasses import asdict

    from bench.personalize import METHODS, Config

    parts = [json.loads(p.read_text()) for p in paths]
    protocol = {k: v for k, v in parts[0]["config"].items() if k not in SPLIT}
    for path, part in zip(paths[1:], parts[1:]):
        other = {k: v for k, v in part["config"].items() if k not in SPLIT}
        if other != protocol:
            diff = sorted(k for k in protocol.keys() | other.keys() if protocol.get(k) != other.get(k))
            raise SystemExit(f"{path} was run with a different protocol ({', '.join(diff)}); not merging it.")
    runs = [r for part in parts for r in part["runs"]]
    cfg = Config(**{**parts[0]["config"],
                    "scenarios": sorted({r["scenario"] for r in runs}),
                    "seeds": sorted({r["seed"] for r in runs}),
                    "methods": [m for m in METHODS if any(r["method"] == m for r in runs)]})
    return {"config": asdict(cfg), "runs": runs, "aggregate": aggregate(runs, cfg),
            "nll_prompts": parts[0]["nll_prompts"], "wall_s": round(sum(p["wall_s"] for p in parts), 1),
            "merged_from": [str(p) for p in paths], "machine": parts[0].get("machine")}
