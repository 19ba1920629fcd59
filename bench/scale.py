"""Does a year of use slow ClawDesk down? Time-to-prompt and the pipeline's per-pass overhead on
stores of 1k / 10k / 50k conversations, each against an empty store measured in the same run.

Each store is built with the project's own Store API in one transaction: 2 assistant turns per
conversation (user → assistant → user → assistant), a thumbs-up on every fifth reply, and every
turn judged and trained on ('used' samples), as the nightly passes leave a year of history. The
change queue is then settled the way those passes settled it, and ``--new`` fresh turns (with
feedback) arrive: what a pass after one more day of chatting finds.

- **time to prompt**: ``ClawDeskApp`` headless (``run_test``) on the store, timed from creating
  the app to its prompt input mounted and focused. The engine is loaded once beforehand and passed
  in, as the tests do: the app loads its model in the background and the prompt never waits for
  it, so the model's load time is not part of what the history can slow down. **Sidebar shown**
  is the same launch until the sidebar's first page of conversations is on screen (it follows
  the first frame).
- **judge pass**: ``judge_pending(..., dry_run=True)`` — reading the signals of what is pending.
- **readiness check**: the scheduler's ``should_run`` — what the nightly job asks before training.

Numbers are medians over ``--reps``; ratios are against the empty store in the same run.

    .venv/bin/python bench/scale.py [--sizes 1000,10000,50000] [--reps 3] [--new 10] [--no-tui]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    bundled_model_path, isolated_home, markdown_table, median, ratio, say, timed, write_results)

TURN_TOKENS = list(range(1, 41))  # a short turn's prompt/response token ids (the judge never reads them here)


def build_store(store: Any, conversations: int, seed_text: str = "history") -> None:
    """``conversations`` judged, trained-on conversations of two turns each, in one transaction."""
    from clawdesk.records import Sample

    with store.transaction():
        for i in range(conversations):
            cid = store.new_conversation(name=f"{seed_text} {i}: plans for week {i % 52}").id
            parent = None
            for t in range(2):
                user = store.add_message(cid, "user", f"question {t} about topic {i} and item {i * 7 % 101}",
                                         parent_id=parent)
                bot = store.add_message(cid, "assistant", f"answer {t} on topic {i}", parent_id=user.id,
                                        prompt_token_ids=TURN_TOKENS, response_token_ids=TURN_TOKENS,
                                        finish_reason="stop")
                explicit = (2 * i + t) % 5 == 0
                if explicit:
                    store.add_feedback(bot.id, "thumbs_up")
                store.upsert_sample(Sample(0, bot.id, cid, TURN_TOKENS, TURN_TOKENS, 1.0 if explicit else 0.0,
                                           "explicit" if explicit else "judge", "used"))
                parent = bot.id
    # the year's passes found every one of these up to date ('used'); settle the queue as they did
    store.settle_turns([(m.id, seq) for m, seq in store.changed_turns()])


def add_new_turns(store: Any, n: int) -> None:
    """Today's chatting: ``n`` new turns, every other one rated."""
    cid = store.new_conversation(name="today").id
    parent = None
    for i in range(n):
        user = store.add_message(cid, "user", f"new question {i}", parent_id=parent)
        bot = store.add_message(cid, "assistant", f"new answer {i}", parent_id=user.id,
                                prompt_token_ids=TURN_TOKENS, response_token_ids=TURN_TOKENS, finish_reason="stop")
        if i % 2:
            store.add_feedback(bot.id, "thumbs_down")
        parent = bot.id


async def _launch(settings: Any, engine: Any, db_path: Path) -> tuple[float, float]:
    """Seconds from creating the app to (the prompt focused, the sidebar's first page shown)."""
    from textual.widgets import ListView

    from clawdesk.tui import ClawDeskApp
    from clawdesk.tui.widgets.prompt import PromptInput

    start = time.perf_counter()
    app = ClawDeskApp(settings=settings, engine=engine, db_path=db_path)
    async with app.run_test(size=(110, 36)) as pilot:
        stamps: list[float] = []
        checks = [lambda: isinstance(app.focused, PromptInput),
                  lambda: len(app.query_one("#conversations", ListView).children) > 0]  # every store has one
        for ready in checks:
            while not ready():
                if time.perf_counter() - start > 300:
                    raise TimeoutError("the app did not get there within 300 s")
                await pilot.pause(0.005)
            stamps.append(time.perf_counter() - start)
        return stamps[0], stamps[1]


def time_to_prompt(settings: Any, engine: Any, db_path: Path, reps: int) -> dict[str, float]:
    asyncio.run(_launch(settings, engine, db_path))  # warm-up: imports, Textual's first-start costs
    runs = [asyncio.run(_launch(settings, engine, db_path)) for _ in range(reps)]
    return {"time_to_prompt_s": median([r[0] for r in runs]), "time_to_sidebar_s": median([r[1] for r in runs])}


def pass_overhead(store: Any, settings: Any, reps: int) -> dict[str, float]:
    """Median seconds of a dry-run judge pass and of the scheduler's readiness check."""
    from clawdesk import scheduler
    from clawdesk.judge.pipeline import judge_pending

    now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=12)  # the user is idle: the full check runs
    judge, ready, examined = [], [], 0
    judge_pending(store, settings, dry_run=True), scheduler.should_run(store, settings, now)  # warm-up: imports
    for _ in range(reps):
        seconds, report = timed(lambda: judge_pending(store, settings, dry_run=True))
        judge.append(seconds)
        examined = report.examined
        ready.append(timed(lambda: scheduler.should_run(store, settings, now))[0])
    return {"judge_dry_run_s": median(judge), "readiness_s": median(ready), "examined": examined}


def measure(size: int, args: argparse.Namespace, settings: Any, engine: Any) -> dict[str, Any]:
    from clawdesk import locations
    from clawdesk.store import open_store

    with isolated_home():
        store = open_store(locations.db_path())
        build_s, _ = timed(lambda: build_store(store, size))
        add_new_turns(store, args.new)
        row: dict[str, Any] = {"conversations": size, "assistant_turns": store.counts()["samples"] + args.new,
                               "build_s": build_s, **pass_overhead(store, settings, args.reps)}
        store.close()
        if engine is not None:
            row.update(time_to_prompt(settings, engine, locations.db_path(), args.reps))
    say(f"  {size:>6} conversations: " + ", ".join(f"{k} {v:.3g}" for k, v in row.items() if isinstance(v, float)))
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,50000", help="Comma-separated conversation counts.")
    ap.add_argument("--reps", type=int, default=3, help="Repetitions per measurement (median).")
    ap.add_argument("--new", type=int, default=10, help="New turns since the last pass.")
    ap.add_argument("--no-tui", action="store_true", help="Skip time-to-prompt (no model load).")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads of the engine passed to the app.")
    ap.add_argument("--out", type=Path, help="Results folder (default bench/results).")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    from clawdesk.settings import load_settings

    settings = load_settings(env={}).replace(n_threads=args.threads)
    engine = None
    if not args.no_tui:
        from clawdesk.engine import Engine

        engine = Engine(bundled_model_path(), n_ctx=settings.n_ctx, n_threads=args.threads)
    try:
        say("empty store (baseline) …")
        base = measure(0, args, settings, engine)
        rows = []
        for size in sizes:
            say(f"{size} conversations …")
            rows.append(measure(size, args, settings, engine))
    finally:
        if engine is not None:
            engine.close()
    for row in rows:
        for key in ("time_to_prompt_s", "time_to_sidebar_s", "judge_dry_run_s", "readiness_s"):
            if key in row:
                row[key.removesuffix("_s") + "_ratio"] = ratio(row[key], base[key])
    path = write_results("scale", {"args": vars(args), "baseline": base, "sizes": rows}, args.out)
    print(markdown_table(
        ["conversations", "assistant turns", "time to prompt s", "× empty", "sidebar shown s", "× empty",
         "judge dry run s", "× empty", "readiness s", "× empty", "build s"],
        [[r["conversations"], r["assistant_turns"], r.get("time_to_prompt_s"), r.get("time_to_prompt_ratio"),
          r.get("time_to_sidebar_s"), r.get("time_to_sidebar_ratio"), r["judge_dry_run_s"],
          r.get("judge_dry_run_ratio"), r["readiness_s"], r.get("readiness_ratio"), r["build_s"]]
         for r in [base, *rows]]))
    say(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
