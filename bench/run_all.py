"""Run the performance benchmarks one after the other (``make bench``) and print their tables.

Each runs in its own process (a crash or a leak in one cannot skew the next) and writes its
JSON to bench/results/. ``--quick`` runs each on a minimal setting — a check that they still
work, not a measurement (the smoke test uses it). The personalisation benchmark is separate
(bench/personalize.py): it takes much longer.

    .venv/bin/python bench/run_all.py [--quick] [--only serving,hotswap] [--threads 1]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    # name: (default arguments, --quick arguments)
    "serving": ([], ["--min-rounds", "2", "--max-rounds", "2", "--turns", "3", "--decode-tokens", "8", "--prefill-tokens", "64",
                     "--reply-tokens", "4"]),
    "hotswap": ([], ["--reps", "1", "--poll", "0.1", "--tokens", "8"]),
    "training": ([], ["--samples", "2", "--max-tokens", "8", "--reps", "1", "--judge-cases", "1", "--votes", "1"]),
    "memory": ([], ["--samples", "2", "--only", "baseline,chat"]),
    # base vs base + adapter vs merged (written by the export helper)
    "serve_formats": ([], ["--reps", "1", "--build-reps", "1", "--decode-tokens", "8", "--prefill-tokens", "64",
                           "--max-steps", "5"]),
    # a year of history: time-to-prompt and per-pass overhead at 1k / 10k / 50k conversations
    "scale": ([], ["--sizes", "30", "--reps", "1", "--new", "2"]),
    # clawdesk serve vs the Engine and llama_cpp.server, interleaved until each ratio's CI is narrow
    "serve": ([], ["--tokens", "4", "--min-rounds", "2", "--max-rounds", "2", "--clients", "1,2", "--requests", "1",
                   "--throughput-rounds", "1"]),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="Minimal settings: checks they run, measures nothing.")
    ap.add_argument("--only", help=f"Comma-separated subset of {', '.join(BENCHMARKS)}.")
    ap.add_argument("--threads", type=int, help="llama.cpp/torch threads for every benchmark.")
    ap.add_argument("--out", type=Path, help="Results folder (default bench/results).")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else [n for n in BENCHMARKS if (HERE / f"{n}.py").exists()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}")
    failed = []
    for name in names:
        default, quick = BENCHMARKS[name]
        cmd = [sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else default)]
        if args.threads is not None:
            cmd += ["--threads", str(args.threads)]
        if args.out:
            cmd += ["--out", str(args.out)]
        print(f"\n## {name}\n", flush=True)
        start = time.perf_counter()
        code = subprocess.run(cmd).returncode
        print(f"\n({name}: {time.perf_counter() - start:.0f} s, exit {code})", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nFailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
