"""Peak memory (RSS) of ClawDesk's three workloads on the bundled model, each in its own process.

- **chat**: load the model (llama.cpp), three logged turns through ChatService;
- **judge**: the judge model loaded, m PRM votes and m hint votes on a logged turn;
- **train**: a real training pass (``clawdesk.train.train_pass``) on ``--samples`` logged samples:
  load the torch model with LoRA, score student + teacher, one optimizer step, save.

Each workload runs in a fresh subprocess (``python bench/memory.py --child NAME``) in a temp
``CLAWDESK_HOME`` and reports its own peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``);
a bare interpreter that imports the same libraries is the baseline.

    .venv/bin/python bench/memory.py [--samples 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import bundled_model_path, isolated_home, markdown_table, say, write_results  # noqa: E402

WORKLOADS = ("baseline", "chat", "judge", "train")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def child(name: str, samples: int, threads: int) -> dict:
    """Run one workload in this process; return what it measured."""
    import torch

    from clawdesk import locations
    from clawdesk.chat import ChatService
    from clawdesk.engine import Engine
    from clawdesk.settings import load_settings
    from clawdesk.store import open_store

    torch.set_num_threads(threads)
    settings = load_settings(env={}).replace(n_threads=threads, train_threads=threads, train_batch_size=samples,
                                             train_heldout_fraction=0.0, max_tokens=48)
    store = open_store(locations.db_path())
    info: dict = {}
    start = time.perf_counter()
    if name == "chat":
        engine = Engine(bundled_model_path(), n_ctx=settings.n_ctx, n_threads=threads)
        chat = ChatService(store, engine, settings)
        conv = chat.new_conversation()
        for q in ("Hello!", "What is a good name for a cat?", "Why that one?"):
            chat.send(conv.id, q, seed=0)
        engine.close()
    elif name == "judge":
        from clawdesk.judge import Judge

        engine = Engine(bundled_model_path(), n_ctx=settings.n_ctx, n_threads=threads)
        judge = Judge.from_settings(engine, settings, seed=0)
        j = judge.reward("Why is the sky blue?", "Because of Rayleigh scattering of sunlight.", "Thanks, that helps!")
        h = judge.hints("Why is the sky blue?", "Because of Rayleigh scattering of sunlight.", "Shorter please.")
        info["votes"] = len(j.votes) + len(h.votes)
        engine.close()
    elif name == "train":
        from bench.training import log_samples
        from clawdesk.train import train_pass

        engine = Engine(bundled_model_path(), n_ctx=settings.n_ctx, n_threads=threads)
        log_samples(ChatService(store, engine, settings), samples, 48)
        engine.close()
        result = train_pass(store, settings, method="combined")
        info["steps"] = len(result.steps)
        info["samples"] = len(result.trained_ids)
    store.close()
    info.update(workload=name, peak_rss_mib=round(peak_rss_mib(), 1), seconds=round(time.perf_counter() - start, 1))
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=4, help="Samples in the training pass.")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", help="Comma-separated workloads (default all).")
    ap.add_argument("--child", choices=WORKLOADS, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help="Results folder (default bench/results).")
    args = ap.parse_args(argv)

    if args.child:
        print(json.dumps(child(args.child, args.samples, args.threads)))
        return 0
    names = [n for n in (args.only.split(",") if args.only else WORKLOADS) if n]
    results = []
    with isolated_home() as home:
        for name in names:
            say(f"{name}…")
            proc = subprocess.run([sys.executable, __file__, "--child", name, "--samples", str(args.samples),
                                   "--threads", str(args.threads)], capture_output=True, text=True,
                                  env={**os.environ, "CLAWDESK_HOME": str(home)})
            if proc.returncode != 0:
                say(proc.stderr[-2000:])
                results.append({"workload": name, "error": proc.stderr.strip().splitlines()[-1:]})
                continue
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    base = next((r["peak_rss_mib"] for r in results if r["workload"] == "baseline" and "peak_rss_mib" in r), None)
    rows = [[r["workload"], r.get("peak_rss_mib"), None if base is None or "peak_rss_mib" not in r
             else r["peak_rss_mib"] - base, r.get("seconds"), r.get("error", "")] for r in results]
    print(markdown_table(["workload", "peak RSS (MiB)", "above baseline (MiB)", "seconds", "error"], rows))
    out = write_results("memory", {"args": {k: str(v) for k, v in vars(args).items()}, "workloads": results}, args.out)
    say(f"results: {out}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
