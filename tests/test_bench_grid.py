"""bench/grid.py: the headline grid runs each (scenario, seed) as its own job, keeps the tuned and
the held-back scenarios apart, and resumes — a finished job is never run again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The smallest protocol that still goes through every part: base scoring only (no update).
TINY = ["--updates", "0", "--heldout", "1", "--samples", "1", "--max-tokens", "8", "--nll-prompts", "1"]


def grid(out: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "bench/grid.py", "--out", str(out), "--seeds", "0",
                           "--scenarios", "brief", "--heldback", "tldr", "--", *TINY],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def test_the_grid_runs_each_job_once_and_merges_tuned_and_heldback_apart(tmp_path, model_path):
    first = grid(tmp_path)
    assert "2 jobs, 2 to run" in first.stdout
    tuned = json.loads((tmp_path / "tuned" / "personalize-latest.json").read_text())
    held = json.loads((tmp_path / "heldback" / "personalize-latest.json").read_text())
    assert [r["scenario"] for r in tuned["runs"]] == ["brief"]
    assert [r["scenario"] for r in held["runs"]] == ["tldr"]  # read from bench/scenarios/heldback
    assert tuned["config"]["updates"] == 0 and tuned["config"]["max_tokens"] == 8  # the extra flags won
    job_files = sorted((tmp_path / "jobs").glob("*/personalize-2*.json"))
    assert len(job_files) == 2

    again = grid(tmp_path)  # resumes: both jobs have their result, nothing runs
    assert "2 jobs, 0 to run" in again.stdout
    assert sorted((tmp_path / "jobs").glob("*/personalize-2*.json")) == job_files

    # the headline table reads the jobs' files: with no update, served and weights-only are the base
    report = subprocess.run([sys.executable, "bench/headline.py", str(tmp_path), "--out", str(tmp_path / "h")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "| brief | 1 |" in report.stdout and "| tldr | 1 |" in report.stdout and "served mean ≥ 0.75" in report.stdout
    summary = json.loads((tmp_path / "h" / "headline-latest.json").read_text())["summary"]
    for v in summary["scenarios"].values():
        assert v["served"] == v["weights"] == v["base"] and v["nll_rest"][0] == 0.0


def test_a_claimed_job_is_left_to_its_live_process_and_a_dead_claim_is_taken_over(tmp_path):
    """Two grids on one folder never run a job twice; a claim left by a killed grid does not block."""
    sys.path.insert(0, str(ROOT / "bench"))
    from grid import Job, claim, run_job

    (tmp_path / "jobs" / "brief-seed0").mkdir(parents=True)
    job = Job("brief", 0, False)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "jobs" / "brief-seed0.claim").write_text(str(live.pid))
        assert claim(tmp_path, job) is None
        assert run_job(job, tmp_path, []) == (job, None, 0.0)  # taken elsewhere: not started
    finally:
        live.kill()
        live.wait()
    mine = claim(tmp_path, job)  # its process is gone: taken over
    assert mine is not None and mine.read_text() == str(__import__("os").getpid())
