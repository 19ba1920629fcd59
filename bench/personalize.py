"""Personalisation benchmark: does ClawDesk learn a person's preference from being used?

Modelled on the OpenClaw-RL paper's personal-agent evaluation (simulated users with a written
preference; the first reply scored 0–1; base 0.17 → combined 0.76 after 8 updates), scaled to one
machine. For each scenario (``bench/scenarios/*.toml``) and seed:

1. score the held-out prompts on the base model (``--samples`` first replies per prompt at the
   chat temperature, fixed seeds) — update 0;
2. a simulated user (bench/simuser.py) has ``--turns`` turns with ClawDesk through ChatService,
   the TUI's code path, reacting to each reply with thumbs, corrections or complaints;
3. ClawDesk's real pipeline runs (judge → train → gate → promote, ``--method``);
4. the held-out prompts are scored again on the promoted version (a fresh Engine), with the
   general-prompt regression check (ΔNLL of the base model's greedy replies, in torch; read over
   whole replies and after each reply's first ``gate_skip_opening_tokens`` tokens, as the gate does);
5. 2–4 repeat for ``--updates`` updates.

Every method starts from the same point: the base score and the first session's turns are made
once, then the whole ClawDesk home is copied for each method. Each home is a temp dir — never the
user's data. Settings can be overridden for ablations (``--set train_lr=3e-4``), for every method
or for one *arm* (``--arm ctx-off:train_w_context=0``: the first method with those settings, from
the same start — the fair comparison of one term on and off).

Held-out scores are read twice once the preference memory holds wishes: ``score`` with the weights
only (the memory removed: what training taught) and ``memory_score`` with the memory in the prompt
as the chat places it (what the user actually gets). At update 0 the memory is empty: they agree.

Scores: ``score`` counts a reply only when it follows the preference AND still answers the
question (a reply that complies by saying nothing scores 0); ``compliance`` is kept separately.

    .venv/bin/python bench/personalize.py --quick
    .venv/bin/python bench/personalize.py --methods combined,rl,opd --updates 4 --seeds 0,1
    .venv/bin/python bench/personalize.py --scenarios brief --set train_w_demo=1.0 --set train_lr=3e-4
    .venv/bin/python bench/personalize.py --scenarios brief,greet --method combined --arm ctx-off:train_w_context=0
    .venv/bin/python bench/personalize.py --merge /tmp/a/personalize-2*.json /tmp/b/personalize-2*.json

Outputs: a Markdown table on stdout, ``bench/results/personalize-<time>.json`` and a PNG plot of
score against updates per method.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, fmt_delta, isolated_home, parse_overrides, say  # noqa: E402
from bench.evaluate import GENERAL_PROMPTS, NllCheck, base_greedy_replies, score_heldout, served_nll  # noqa: E402
from bench.scenarios import Scenario, load_scenarios  # noqa: E402
from bench.simuser import SessionStats, SimulatedUser, UserPolicy  # noqa: E402
from bench.personalize_report import aggregate, merge, report  # noqa: E402
from bench.update import UpdateOutcome, pipeline_available, run_update  # noqa: E402

METHODS = ("combined", "rl", "opd")
# What the benchmark fixes regardless of the user's settings: it decides itself how much
# feedback there is, so the scheduled pass's minimum must not skip an update.
BENCH_SETTINGS = {"train_min_samples": 1}


@dataclass
class Config:
    scenarios: list[str]
    methods: list[str]
    seeds: list[int]
    updates: int = 3
    turns: int = 16
    heldout: int = 8  # held-out prompts per scenario
    samples: int = 4  # replies per held-out prompt
    max_tokens: int = 160
    nll_prompts: int = 8  # general prompts of the regression check
    nll_max_tokens: int = 64
    explicit_fraction: float = 0.5
    thumbs_up_fraction: float = 0.5
    correction_fraction: float = 1.0
    prompts_per_conversation: int = 3
    overrides: dict[str, Any] | None = None
    quick: bool = False
    arms: dict[str, dict[str, Any]] | None = None  # label → settings; run with the first method

    def labels(self) -> list[str]:
        """What the results are keyed by: the methods, then the arms."""
        return list(self.methods) + list(self.arms or {})

    def arm(self, label: str) -> tuple[str, dict[str, Any]]:
        """(method, extra settings) of a method or an arm."""
        if label in (self.arms or {}):
            return self.methods[0], dict(self.arms[label])
        return label, {}


QUICK = dict(scenarios=["plain", "brief"], methods=["combined"], updates=1, turns=8, heldout=4, samples=2,
             max_tokens=64, nll_max_tokens=32)
# --quick is a 15-minute check that the loop works end to end, not a measurement: one judge vote
# instead of m = 3 (the judge dominates the time on a CPU). --set judge_votes=3 restores it.
QUICK_SETTINGS = {"judge_votes": 1}


# --- settings -----------------------------------------------------------------------------------

def write_settings(home: Path, values: dict[str, Any]) -> None:
    """The home's settings.toml, so any code that loads settings itself sees the same values."""
    import tomli_w

    path = home / "config" / "settings.toml"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(tomli_w.dumps(values), encoding="utf-8")


def home_settings(home: Path, cfg: Config, seed: int, extra: dict[str, Any] | None = None):
    from clawdesk.settings import load_settings

    values = {**BENCH_SETTINGS, "train_seed": seed, "judge_seed": seed, **(cfg.overrides or {}), **(extra or {})}
    write_settings(home, values)
    return load_settings(env={})  # the user's CLAWDESK_* variables do not leak into a benchmark


# --- one scenario -------------------------------------------------------------------------------

@dataclass
class Point:
    """The state after one update (update 0 = the base model)."""

    update: int
    score: float
    compliance: float
    answers: float
    mean_words: float
    nll: float | None
    delta_nll: float | None  # over whole replies
    version: int | None
    promoted: bool | None
    feedback_turns: int  # cumulative
    turns: int  # cumulative simulated turns
    timings: dict[str, float]
    session: dict[str, Any] | None = None
    pipeline: dict[str, Any] | None = None
    examples: list[dict[str, Any]] | None = None
    # ΔNLL after each reply's first gate_skip_opening_tokens tokens: the gate's reading (None in
    # results from before it was measured)
    delta_nll_rest: float | None = None
    # The same held-out prompts with the preference memory in the prompt as served (None in
    # results from before it was measured); memory_note: its words (None: the memory was empty)
    memory_score: float | None = None
    memory_compliance: float | None = None
    memory_answers: float | None = None
    memory_note: str | None = None
    memory_literals: str | None = None  # the quoted opening … ending the chat wrote exactly (memory_literal)
    memory_examples: list[dict[str, Any]] | None = None  # a few served replies, with why a 0 scored 0


class ScenarioRun:
    """Everything for one (scenario, seed): the shared start, then each method's updates."""

    def __init__(self, scenario: Scenario, seed: int, cfg: Config, workdir: Path, nll_pairs: list | None,
                 base_nll: NllCheck | None) -> None:
        self.scenario, self.seed, self.cfg = scenario, seed, cfg
        self.root = workdir / f"{scenario.name}-seed{seed}"
        self.nll_pairs = nll_pairs
        self.base_nll = base_nll  # the base model's NLL is the same for every scenario: computed once
        self.policy = UserPolicy(explicit_fraction=cfg.explicit_fraction, thumbs_up_fraction=cfg.thumbs_up_fraction,
                                 correction_fraction=cfg.correction_fraction,
                                 prompts_per_conversation=cfg.prompts_per_conversation, max_tokens=cfg.max_tokens)

    def _session(self, store, settings, engine, update: int) -> tuple[SessionStats, float]:
        from clawdesk.chat import ChatService

        user = SimulatedUser(ChatService(store, engine, settings), self.scenario, self.policy,
                             seed=self.seed * 1000 + update)
        start = time.perf_counter()
        stats = user.session(self.cfg.turns)
        return stats, time.perf_counter() - start

    def _heldout(self, engine, settings, note=None, literals=None):
        prompts = self.scenario.heldout[: self.cfg.heldout]
        return score_heldout(engine, self.scenario, prompts, self.cfg.samples, self.seed, settings, self.cfg.max_tokens,
                             note, literals)

    def start(self) -> tuple[Point, SessionStats, float]:
        """Base score and the first session, in the shared home every method copies."""
        from clawdesk import locations
        from clawdesk.chat import open_engine
        from clawdesk.store import open_store

        base = self.root / "start"
        with isolated_home(base) as home:
            settings = home_settings(home, self.cfg, self.seed)
            store = open_store(locations.db_path())
            engine = open_engine(store, settings)
            try:
                say(f"[{self.scenario.name} seed {self.seed}] scoring the base model on "
                    f"{min(self.cfg.heldout, len(self.scenario.heldout))} held-out prompts × {self.cfg.samples}")
                held = self._heldout(engine, settings)
                nll_start = time.perf_counter()
                if self.nll_pairs is None:
                    self.nll_pairs = base_greedy_replies(engine, self.cfg.nll_max_tokens,
                                                         GENERAL_PROMPTS[: self.cfg.nll_prompts])
                if self.base_nll is None:
                    self.base_nll = served_nll(store, engine.model_path, self.nll_pairs,
                                               settings.gate_skip_opening_tokens)
                nll, nll_s = self.base_nll.whole, time.perf_counter() - nll_start
                say(f"[{self.scenario.name} seed {self.seed}] base score {held.score:.2f} "
                    f"(compliance {held.compliance:.2f})")
                stats, sim_s = SessionStats(), 0.0
                if self.cfg.updates > 0:
                    say(f"[{self.scenario.name} seed {self.seed}] simulated user: {self.cfg.turns} turns")
                    stats, sim_s = self._session(store, settings, engine, update=1)
            finally:
                engine.close()
                store.close()
        point = Point(0, held.score, held.compliance, held.answers, held.mean_words, nll, 0.0, None, None, 0, 0,
                      {"heldout_s": round(held.seconds, 2), "nll_s": round(nll_s, 2)}, examples=held.examples,
                      delta_nll_rest=0.0, memory_score=held.score, memory_compliance=held.compliance,
                      memory_answers=held.answers)
        return point, stats, sim_s

    def run_method(self, label: str, base: Point, first: SessionStats, first_s: float) -> list[Point]:
        from clawdesk import locations
        from clawdesk.chat import open_engine
        from clawdesk.store import open_store

        method, extra = self.cfg.arm(label)
        home = self.root / label
        shutil.copytree(self.root / "start", home, symlinks=True)
        points = [base]
        with isolated_home(home):
            settings = home_settings(home, self.cfg, self.seed, extra)
            store = open_store(locations.db_path())
            try:
                fb, turns = 0, 0
                for u in range(1, self.cfg.updates + 1):
                    if u == 1:
                        stats, sim_s = first, first_s
                    else:
                        engine = open_engine(store, settings)
                        try:
                            stats, sim_s = self._session(store, settings, engine, update=u)
                        finally:
                            engine.close()
                    fb, turns = fb + stats.feedback_turns, turns + stats.turns
                    say(f"[{self.scenario.name} seed {self.seed} {label}] update {u}/{self.cfg.updates}: "
                        f"{stats.turns} turns ({stats.feedback_turns} with feedback, online score "
                        f"{stats.to_dict()['mean_score'] or 0.0:.2f}); running the pipeline")
                    before = store.served_version()
                    outcome = run_update(store, settings, method, progress=_PipelineProgress())
                    point = self._after_update(u, store, settings, outcome, before, points[-1])
                    point.feedback_turns, point.turns = fb, turns
                    point.timings.update(simulate_s=round(sim_s, 2))
                    point.session = stats.to_dict()
                    points.append(point)
                    say(f"[{self.scenario.name} seed {self.seed} {label}] update {u}: "
                        f"{'promoted v' + str(point.version) if point.promoted else 'not promoted'}"
                        f"{' (' + outcome.error + ')' if outcome.error else ''}; score {point.score:.2f} "
                        f"(compliance {point.compliance:.2f}, ΔNLL {fmt_delta(point.delta_nll)}, "
                        f"after the opening {fmt_delta(point.delta_nll_rest)}; with the memory "
                        f"{point.memory_score:.2f})")
            finally:
                store.close()
        return points

    def _after_update(self, u: int, store, settings, outcome: UpdateOutcome, before: int | None, prev: Point) -> Point:
        from clawdesk.chat import open_engine
        from clawdesk.memory import Memory

        served = store.served_version()
        pipeline = asdict(outcome)
        timings = {"pipeline_s": round(outcome.seconds, 2), **{f"pipeline.{k}": v for k, v in outcome.stage_seconds.items()}}
        memory_now = Memory(store, settings)
        note, literals = memory_now.note(), memory_now.literals()
        engine = open_engine(store, settings)  # a fresh Engine: it loads the promoted version
        try:
            held = self._heldout(engine, settings) if served != before else None
            served_memory = note is not None or bool(literals)
            with_memory = self._heldout(engine, settings, note, literals) if served_memory else (held or prev)
            model_path = engine.model_path
        finally:
            engine.close()
        memory = dict(memory_score=with_memory.score, memory_compliance=with_memory.compliance,
                      memory_answers=with_memory.answers, memory_note=note.text if note else None,
                      memory_literals=(f"{literals.opening!r} … {literals.ending!r}"
                                       + (f" ≤{literals.max_words} words" if literals.max_words else "")
                                       + (" plain" if literals.plain else "")) if literals else None,
                      memory_examples=with_memory.examples if served_memory else None)
        if held is None:  # refused or failed: the same weights as before, so the same weights-only scores
            return Point(u, prev.score, prev.compliance, prev.answers, prev.mean_words, prev.nll, prev.delta_nll,
                         served, False, 0, 0, timings, pipeline=pipeline, examples=prev.examples,
                         delta_nll_rest=prev.delta_nll_rest, **memory)
        nll_start = time.perf_counter()
        base_model = _base_model_path(store, settings) or model_path
        nll = served_nll(store, base_model, self.nll_pairs or [], settings.gate_skip_opening_tokens)
        timings.update(heldout_s=round(held.seconds, 2), nll_s=round(time.perf_counter() - nll_start, 2))
        delta, delta_rest = nll.minus(self.base_nll)
        return Point(u, held.score, held.compliance, held.answers, held.mean_words, nll.whole, delta, served, True,
                     0, 0, timings, pipeline=pipeline, examples=held.examples, delta_nll_rest=delta_rest, **memory)


def _base_model_path(store, settings) -> str | None:
    """The base GGUF (the torch weights are rebuilt from it; a merged served model is not)."""
    from clawdesk import catalog

    return catalog.current_model(store, settings).path


class _PipelineProgress:
    """The pipeline's (stage, done, total, message) reports as one stderr line per stage step
    worth reading: a new stage, a training step, a stage's end."""

    def __init__(self) -> None:
        self.stage = ""

    def __call__(self, stage: str = "", done: int = 0, total: int = 0, message: str = "", *_: Any) -> None:
        if stage != self.stage or done == total or stage == "train:train":
            self.stage = stage
            say(f"    {stage} {done}/{total} {message}"[:160])


# --- the whole benchmark ------------------------------------------------------------------------

def run(cfg: Config, workdir: Path, scenario_dir: Path | None = None) -> dict[str, Any]:
    scenarios = load_scenarios(cfg.scenarios or None, **({"folder": scenario_dir} if scenario_dir else {}))
    nll_pairs, base_nll = None, None
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    for seed in cfg.seeds:
        for scenario in scenarios:
            sr = ScenarioRun(scenario, seed, cfg, workdir, nll_pairs, base_nll)
            base, first, first_s = sr.start()
            nll_pairs, base_nll = sr.nll_pairs, sr.base_nll
            for method in cfg.labels():
                points = sr.run_method(method, base, first, first_s)
                runs.append({"scenario": scenario.name, "preference": scenario.preference, "seed": seed,
                             "method": method, "points": [asdict(p) for p in points]})
    return {"config": asdict(cfg), "runs": runs, "aggregate": aggregate(runs, cfg),
            "nll_prompts": len(nll_pairs or []), "wall_s": round(time.perf_counter() - started, 1)}


def build_config(args: argparse.Namespace) -> Config:
    base = dict(QUICK) if args.quick else {}
    cfg = Config(scenarios=base.get("scenarios", []), methods=base.get("methods", list(METHODS)), seeds=[0],
                 quick=args.quick, **{k: v for k, v in base.items() if k not in ("scenarios", "methods")})
    if args.scenarios:
        cfg.scenarios = [s for s in args.scenarios.split(",") if s]
    if args.methods:
        cfg.methods = [m for m in args.methods.split(",") if m]
    if args.method:
        cfg.methods = list(args.method)
    bad = [m for m in cfg.methods if m not in METHODS]
    if bad:
        raise SystemExit(f"unknown method(s) {', '.join(bad)}; use {', '.join(METHODS)}")
    if args.seeds:
        cfg.seeds = [int(s) for s in args.seeds.split(",") if s]
    for name in ("updates", "turns", "heldout", "samples", "max_tokens", "explicit_fraction", "thumbs_up_fraction",
                 "correction_fraction", "nll_prompts"):
        value = getattr(args, name)
        if value is not None:
            setattr(cfg, name, value)
    cfg.overrides = {**(QUICK_SETTINGS if args.quick else {}), **parse_overrides(args.set or [])}
    for item in args.arm or []:
        label, sep, values = item.partition(":")
        if not sep or not label or label in METHODS:
            raise SystemExit(f"--arm expects LABEL:NAME=VALUE[,…], the label not a method's name; got {item!r}")
        cfg.arms = {**(cfg.arms or {}), label: parse_overrides([v for v in values.split(",") if v])}
    if args.threads:
        cfg.overrides = {"n_threads": args.threads, "train_threads": args.threads, **cfg.overrides}
    return cfg


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bench/personalize.py", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 scenarios, combined only, 1 update, 8 turns, "
                    "4 held-out prompts × 2, 64-token replies, 1 judge vote (≤ 15 min on 2 cores).")
    ap.add_argument("--scenarios", help="Comma-separated scenario names (files in bench/scenarios/); default all.")
    ap.add_argument("--methods", help="Comma-separated: combined,rl,opd (default all three).")
    ap.add_argument("--method", action="append", choices=METHODS, help="One method (repeatable).")
    ap.add_argument("--seeds", help="Comma-separated seeds, e.g. 0,1 (default 0).")
    ap.add_argument("--updates", type=int, help="Pipeline runs per method (default 3; 0 = score the base model only).")
    ap.add_argument("--turns", type=int, help="Simulated turns before each update (default 16).")
    ap.add_argument("--heldout", type=int, help="Held-out prompts per scenario (default 8).")
    ap.add_argument("--samples", type=int, help="Replies per held-out prompt (default 4).")
    ap.add_argument("--max-tokens", dest="max_tokens", type=int, help="Longest reply (default 160).")
    ap.add_argument("--nll-prompts", dest="nll_prompts", type=int,
                    help=f"General prompts for the ΔNLL regression check (default {len(GENERAL_PROMPTS)}).")
    ap.add_argument("--explicit-fraction", dest="explicit_fraction", type=float,
                    help="Unsatisfied replies answered with thumbs down + correction; the rest get a complaint (default 0.5).")
    ap.add_argument("--thumbs-up-fraction", dest="thumbs_up_fraction", type=float,
                    help="Satisfied replies that get a thumbs up; the rest the next prompt (default 0.5).")
    ap.add_argument("--correction-fraction", dest="correction_fraction", type=float,
                    help="Explicit thumbs down that also carry a written correction; the rest carry only the "
                    "reason (default 1.0). --explicit-fraction 1 --correction-fraction 0 is a thumbs-only user.")
    ap.add_argument("--threads", type=int, help="CPU threads for llama.cpp and torch (n_threads, train_threads and "
                    "the gate's torch work); 1 is much faster on a 2-core machine that other jobs share.")
    ap.add_argument("--set", action="append", metavar="NAME=VALUE", help="Override a setting (repeatable).")
    ap.add_argument("--arm", action="append", metavar="LABEL:NAME=VALUE,…", help="One more arm: the first method "
                    "with these settings, from the same start (repeatable), e.g. ctx-off:train_w_context=0.")
    ap.add_argument("--scenario-dir", dest="scenario_dir", type=Path, help="Read the scenarios from this folder, "
                    "e.g. bench/scenarios/heldback (report those apart: no default was tuned on them).")
    ap.add_argument("--out", type=Path, default=RESULTS, help="Where the JSON and the PNG go.")
    ap.add_argument("--workdir", type=Path, help="Keep the ClawDesk homes here (default: a temp dir, deleted).")
    ap.add_argument("--no-plot", action="store_true", help="Skip the PNG.")
    ap.add_argument("--merge", nargs="+", type=Path, help="Only merge these result files (runs of the same "
                    "protocol split across workers, e.g. one scenario each) into one result, table and plot.")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.merge:
        return report(merge(args.merge), args)
    cfg = build_config(args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # the judge and trainer follow the settings; the gate this
    if cfg.updates > 0 and not pipeline_available():
        say("clawdesk.lifecycle.pipeline.run_pipeline is not in this checkout yet; nothing to benchmark.")
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="clawdesk-personalize-"))
    try:
        result = run(cfg, workdir, args.scenario_dir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return report(result, args)


if __name__ == "__main__":
    sys.exit(main())
