"""The headline personalisation grid: every scenario × every seed, resumable, a job per core.

A learning result decides something only over seeds, and on this 2-core machine the full grid
(7 scenarios × 3 seeds × 2 nights of 16 turns) is hours of compute. So each (scenario, seed) is
its own ``bench/personalize.py`` process with one thread, at most ``--jobs`` at a time; a job's
result file is its proof of completion, so a stopped grid picks up where it was (run the same
command again), and a job is claimed while it runs, so two grids can share one folder. The tuned
scenarios and the held-back ones (``bench/scenarios/heldback``, written before any result was
read) are merged into two separate results, never averaged together.

    .venv/bin/python bench/grid.py --out /tmp/grid                       # the headline protocol
    .venv/bin/python bench/grid.py --out /tmp/grid --seeds 0 --scenarios brief --heldback none
    .venv/bin/python bench/grid.py --out /tmp/grid -- --set train_w_demo=2   # more personalize.py flags

The protocol defaults are those of the earlier multi-update runs (docs/benchmarks.md): 2 updates ×
16 turns, 6 held-out prompts × 2 replies, 160-token replies, 8 general prompts for ΔNLL, judge
m = 1 (the judge dominates CPU time; ``-- --set judge_votes=3`` restores the product default).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TUNED = ("plain", "brief", "greet", "summary")
HELDBACK = ("tldr", "hope", "plainshort")
PROTOCOL = ["--method", "combined", "--updates", "2", "--turns", "16", "--heldout", "6", "--samples", "2",
            "--max-tokens", "160", "--nll-prompts", "8", "--threads", "1", "--set", "judge_votes=1", "--no-plot"]


@dataclass(frozen=True)
class Job:
    scenario: str
    seed: int
    heldback: bool

    @property
    def name(self) -> str:
        return f"{self.scenario}-seed{self.seed}"


def result_of(folder: Path) -> Path | None:
    """The job's result file, if it finished (personalize.py writes it only at the very end)."""
    found = sorted(folder.glob("personalize-2*.json"))
    return found[-1] if found else None


def command(job: Job, out: Path, extra: list[str]) -> list[str]:
    cmd = [sys.executable, str(ROOT / "bench" / "personalize.py"), "--scenarios", job.scenario,
           "--seeds", str(job.seed), "--out", str(out / "jobs" / job.name), *PROTOCOL, *extra]
    if job.heldback:
        cmd += ["--scenario-dir", str(ROOT / "bench" / "scenarios" / "heldback")]
    return cmd


def claim(out: Path, job: Job) -> Path | None:
    """Take the job for this process (``jobs/NAME.claim`` holds the pid), so that two grids on one
    folder — one per core, or a restart beside a job still running — never run it twice. A claim
    whose process is gone is taken over."""
    path = out / "jobs" / f"{job.name}.claim"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                os.kill(int(path.read_text() or "0"), 0)
                return None  # alive: someone else's
            except (ProcessLookupError, ValueError, FileNotFoundError):
                path.unlink(missing_ok=True)
                continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return path
    return None


def run_job(job: Job, out: Path, extra: list[str]) -> tuple[Job, int | None, float]:
    """Run one job; rc None when it was finished or claimed meanwhile (by another grid)."""
    folder = out / "jobs" / job.name
    folder.mkdir(parents=True, exist_ok=True)
    taken = claim(out, job) if result_of(folder) is None else None
    if taken is None:
        return job, None, 0.0
    t = time.perf_counter()
    try:
        with open(out / "jobs" / f"{job.name}.log", "w") as log:
            rc = subprocess.run(command(job, out, extra), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    finally:
        taken.unlink(missing_ok=True)
    return job, rc, time.perf_counter() - t


def merge(out: Path, jobs: list[Job], label: str) -> None:
    files = [f for f in (result_of(out / "jobs" / j.name) for j in jobs) if f]
    if not files:
        return
    print(f"\n## {label}: {len(files)} of {len(jobs)} jobs\n", flush=True)
    subprocess.run([sys.executable, str(ROOT / "bench" / "personalize.py"), "--merge", *map(str, files),
                    "--out", str(out / label), "--no-plot"], cwd=ROOT, check=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/grid.py", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="Where jobs, logs and the merged results go (reused to resume).")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--scenarios", default=",".join(TUNED), help="Tuned scenarios (bench/scenarios/).")
    ap.add_argument("--heldback", default=",".join(HELDBACK), help="Held-back scenarios, or 'none'.")
    ap.add_argument("--jobs", type=int, default=2, help="Jobs at a time (one thread each; default 2 = this machine's cores).")
    ap.add_argument("extra", nargs="*", help="After --: more bench/personalize.py flags, the same for every job.")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    tuned = [Job(s, seed, False) for seed in seeds for s in args.scenarios.split(",") if s]
    held = [] if args.heldback == "none" else [Job(s, seed, True) for seed in seeds for s in args.heldback.split(",") if s]
    # Whole seeds first: a grid stopped part-way has every scenario at the seeds it reached.
    todo = sorted((j for j in tuned + held if result_of(args.out / "jobs" / j.name) is None), key=lambda j: j.seed)
    print(f"{len(tuned) + len(held)} jobs, {len(todo)} to run, {args.jobs} at a time; logs in {args.out / 'jobs'}",
          flush=True)
    failed = 0
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_job, j, args.out, args.extra) for j in todo]
        for done, future in enumerate(as_completed(futures), 1):
            job, rc, seconds = future.result()
            failed += rc not in (0, None)
            state = "taken elsewhere" if rc is None else "done" if rc == 0 else f"FAILED (exit {rc}; see {job.name}.log)"
            print(f"[{done}/{len(todo)}] {job.name}: {state} in {seconds / 60:.1f} min", flush=True)
    merge(args.out, tuned, "tuned")
    merge(args.out, held, "heldback")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
