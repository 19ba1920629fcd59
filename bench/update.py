"""One "update" of the personalisation benchmark = one run of ClawDesk's real pipeline
(judge → train → gate → promote), exactly as the nightly job runs it.

This is the only place the benchmark touches the pipeline, so a change in its report's shape is
absorbed here: the rest of the harness sees an ``UpdateOutcome``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clawdesk.errors import ClawDeskError
from clawdesk.settings import Settings
from clawdesk.store import Store

TIMING_KEYS = ("seconds", "timings", "stage_timings")


@dataclass
class UpdateOutcome:
    promoted: bool
    version: int | None
    run_id: int | None
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    error: str = ""
    report: dict[str, Any] = field(default_factory=dict)


class PipelineMissing(ClawDeskError):
    """The lead's pipeline module is not in this checkout yet."""


def pipeline_available() -> bool:
    try:
        from clawdesk.lifecycle.pipeline import run_pipeline  # noqa: F401
    except ImportError:
        return False
    return True


def run_update(store: Store, settings: Settings, method: str, progress: Callable[..., None] | None = None) -> UpdateOutcome:
    """Run the pipeline once with ``method``; a pipeline error becomes a failed outcome (the
    benchmark records it and carries the previous score forward) rather than an abort."""
    try:
        from clawdesk.lifecycle.pipeline import run_pipeline
    except ImportError as e:
        raise PipelineMissing(f"clawdesk.lifecycle.pipeline.run_pipeline is not available ({e}); the "
                              f"personalisation benchmark needs the real pipeline.") from None
    start = time.perf_counter()
    try:
        report = run_pipeline(store, settings, trigger="manual", method=method, progress=progress)
    except ClawDeskError as e:
        return UpdateOutcome(False, store.served_version(), None, time.perf_counter() - start, error=str(e))
    seconds = time.perf_counter() - start
    data = _as_dict(report)
    stages = next((data[k] for k in TIMING_KEYS if isinstance(data.get(k), dict)), {})
    decision = str(data.get("decision", ""))
    promoted = decision == "promoted" if decision else bool(data.get("promoted"))
    return UpdateOutcome(
        promoted=promoted, version=data.get("version") if promoted else store.served_version(),
        run_id=data.get("run_id"), seconds=seconds,
        stage_seconds={k: float(v) for k, v in stages.items() if isinstance(v, (int, float))},
        gate=data.get("gate") if isinstance(data.get("gate"), dict) else {},
        summary=str(data.get("summary", "")), error="" if promoted else f"{decision}: {data.get('summary', '')}",
        report=data)


def _as_dict(report: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(report):
        data = dataclasses.asdict(report)
    elif isinstance(report, dict):
        data = dict(report)
    else:
        data = {k: v for k, v in vars(report).items() if not k.startswith("_")}
    if "summary" not in data and hasattr(report, "summary"):
        data["summary"] = report.summary  # often a property
    return data
