"""Smoke test of bench/serve.py (the real script, both servers, tiny settings) and of the paired
ratio statistics it relies on."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_paired_ratio_interval_narrows_and_stops_when_tight():
    sys.path.insert(0, str(ROOT))
    from bench.paired import interleave

    calls = []

    def a(r):
        calls.append(("a", r))
        return {"x": 100.0 + (r % 3)}

    def b(r):
        calls.append(("b", r))
        return {"x": 90.0 + (r % 3) * 0.9}

    res = interleave(a, b, ["x"], min_rounds=4, max_rounds=30, rel_halfwidth=0.01)
    assert res["converged"] and 4 <= res["rounds"] < 30
    m = res["measures"]["x"]
    assert math.isclose(m["ratio"], 0.9, rel_tol=0.01) and m["ci95"][0] <= m["ratio"] <= m["ci95"][1]
    assert calls[:4] == [("a", 0), ("b", 0), ("b", 1), ("a", 1)]  # ABBA: order alternates each round


def test_bench_serve_runs_and_writes_its_results(model_path, tmp_path):
    proc = subprocess.run([sys.executable, "bench/serve.py", "--tokens", "4", "--min-rounds", "2", "--max-rounds",
                           "2", "--clients", "1,2", "--requests", "1", "--throughput-rounds", "1", "--out",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "serve-latest.json").read_text())
    for side in ("vs Engine", "vs llama_cpp.server"):
        assert data[side]["rounds"] == 2 and set(data[side]["measures"]) == {"cpu_ms_per_token", "decode_tps", "ttft_ms"}
        assert data[side]["measures"]["ttft_ms"]["ratio"] > 0
    assert set(data["throughput"]) == {"1", "2"}
    assert "clawdesk / llama_cpp.server" in proc.stdout
