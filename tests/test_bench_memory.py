"""Smoke tests of the preference memory's benchmarks, each on a minimal setting with the real
model: the placement benchmark (one scenario, one prompt, two placements, plus the KV-reuse
timing over two turns) and the extraction benchmark (one seed, one vote)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_script(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_memory_placement_runs(tmp_path, model_path):
    proc = run_script("bench/memory_placement.py", "--scenarios", "brief", "--prompts", "1", "--placements",
                      "none,user", "--max-tokens", "24", "--ttft", "--turns", "2", "--ttft-tokens", "4",
                      "--wording", "extracted", "--out", str(tmp_path))
    assert "| user |" in proc.stdout
    data = json.loads((tmp_path / "memory_placement-latest.json").read_text())
    assert {r["placement"] for r in data["rows"]} == {"none", "user"}
    assert set(data["ttft"]) == {"off", "system", "user"} and all(len(v) == 2 for v in data["ttft"].values())
    # the memory on the latest user message adds its tokens to the prompt; off adds none
    assert data["ttft"]["user"][1]["prompt_tokens"] > data["ttft"]["off"][1]["prompt_tokens"]


def test_memory_extraction_runs(tmp_path, model_path):
    proc = run_script("bench/memory_extraction.py", "--seeds", "0", "--votes", "1", "--out", str(tmp_path))
    assert "| rules only |" in proc.stdout
    data = json.loads((tmp_path / "memory_extraction-latest.json").read_text())
    assert len(data["judge_runs"]) == 1 and 0 <= data["judge_mean"]["accuracy"] <= 1
