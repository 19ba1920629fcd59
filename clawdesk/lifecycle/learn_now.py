"""``python -m clawdesk.lifecycle.learn_now``: one learning pass for the chat's "Learn now".

The chat starts this as a child process instead of running the pipeline in a thread: training
holds the GIL for long stretches and allocates gigabytes, and neither may touch the process that
draws the UI and answers with llama.cpp. The child talks back on stdout, one JSON object a line:

- ``{"stage": "judge", "done": 3, "total": 12, "message": "…"}`` — the pipeline's progress, and
  ``"stage": "compare"`` for the before/after answers after a promotion;
- ``{"outcome": "promoted" | "refused" | "skipped" | "failed" | "busy" | "interrupted",
  "summary": "…", "version": 3 | null, "run_id": 7 | null}`` — last, exactly once.

Exit codes: 0 a pass ran (whatever it decided), 75 the pipeline lock is held, 130 interrupted,
1 an error. SIGINT (what the chat sends when it quits mid-pass) is Python's KeyboardInterrupt:
the pass unwinds as from a Ctrl-C in ``clawdesk train --now``, the lock is released by the
kernel, and the next pass settles what was left (``recover``). Everything else the child has
to say (warnings, tracebacks) goes to stderr, which the chat sends to a log file.

After a promotion the child answers the person's recent prompts with the previous and the new
version and keeps that with the run (``compare``): it is the process that can afford to load
two more model copies, and the chat's "What I learned" then only reads a row.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import warnings
from typing import Any

from .. import locations
from ..errors import ClawDeskError, PipelineBusy
from ..settings import load_settings
from ..store import open_store

log = logging.getLogger("clawdesk.learn_now")
EXIT_BUSY = 75  # EX_TEMPFAIL: try again later


def emit(obj: dict[str, Any]) -> None:
    """One line to the chat; flushed, since the chat reads it as it comes."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> int:
    """Run one pass and say what happened; returns the exit code."""
    # A child inherits an ignored SIGINT (Python then leaves it ignored): a parent that ignores
    # Ctrl-C itself, a test runner's worker, would make this pass unstoppable but by SIGKILL.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = load_settings()
        store = open_store(locations.db_path(), settings.db_busy_timeout_ms)
    except ClawDeskError as e:
        emit({"outcome": "failed", "summary": str(e)})
        return 1
    try:
        return _run(store, settings)
    except KeyboardInterrupt:
        emit({"outcome": "interrupted", "summary": "stopped; the next pass picks up where this one was"})
        return 130
    finally:
        store.close()


def _run(store, settings) -> int:
    from .compare import before_after, store_with_run
    from .pipeline import run_pipeline

    def progress(stage: str, done: int, total: int, message: str) -> None:
        emit({"stage": stage, "done": done, "total": total, "message": message})

    try:
        report = run_pipeline(store, settings, trigger="chat", progress=progress)
    except PipelineBusy as e:
        emit({"outcome": "busy", "summary": str(e)})
        return EXIT_BUSY
    except ClawDeskError as e:
        emit({"outcome": "failed", "summary": str(e)})
        return 1
    if report.decision == "promoted" and report.version is not None and settings.learn_compare_prompts:
        try:
            result = before_after(store, settings, report.version,
                                  progress=lambda done, total: progress("compare", done, total, "before/after"))
            if result is not None:
                store_with_run(store, report.run_id, result)
        except ClawDeskError as e:  # the version is promoted either way; only the comparison is missing
            log.warning("before/after comparison failed: %s", e)
    failed = [r[6:] for r in report.gate.get("reasons", []) if r.startswith("FAIL")]
    emit({"outcome": report.decision, "summary": report.summary, "version": report.version,
          "run_id": report.run_id, "detail": "; ".join(failed)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
