"""bench/judge_accuracy.py --all-models measures every model the catalog knows — the bundled one
and one added with `clawdesk models add` (a tiny random GGUF here) — and writes one result per
model, so the judge table can say which models were measured. Real llama.cpp; 4 cases, 1 vote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import TINY, build  # noqa: E402

ROOT = Path(__file__).parent.parent.parent


def test_all_models_measures_every_registered_model(tmp_path, store):
    from clawdesk import catalog

    tiny, _ = build(TINY["llama"], tmp_path / "tiny")
    catalog.add_model(store, tiny, "tiny-judge")
    out = tmp_path / "judge.json"
    proc = subprocess.run([sys.executable, "bench/judge_accuracy.py", "--all-models", "--every", "12", "--votes", "1",
                           "--only", "grammar", "--threads", "1", "--json", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    models = json.loads(out.read_text())["models"]
    assert [m["judge_model"] for m in models] == [m.name for m in catalog.all_models(store)]
    assert {"tiny-judge", catalog.DEFAULT_MODEL} <= {m["judge_model"] for m in models}
    for m in models:
        grammar = m["conditions"]["grammar"]
        assert grammar["cases"] == 4 and grammar["votes"] == 4 and sum(grammar["confusion"].values()) == 4
        assert f"| {m['judge_model']} | grammar |" in proc.stdout  # a table row per model
