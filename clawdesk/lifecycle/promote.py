"""Atomic promotion, rollback and retention of adapter versions.

A promoted version is a directory ``adapters/vN/`` holding the peft folder (training resumes
from it) and what llama.cpp serves: ``adapter.gguf`` (base + LoRA) or ``model.gguf`` (merged).

Promotion never exposes a half-made version:
1. everything is written into ``adapters/.staging-vN/`` (a crash here leaves only a hidden dir
   that the next run sweeps away);
2. the staged files are *verified*: the real serving path (llama.cpp, same calls as the chat)
   must reproduce the greedy tokens torch + peft produced for the candidate;
3. one ``rename`` of the directory to ``adapters/vN`` (atomic on one file system), fsync of the
   parent dir;
4. one SQLite transaction inserts the version row and points ``served_adapter`` at it.
A crash between 3 and 4 leaves an unreferenced ``vN`` that the next run deletes; the served
version (read from the database) never changed. The previous ``keep_versions`` versions stay
on disk, so a rollback is one state change that a running chat picks up between turns.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from .. import locations
from ..engine.gguf_check import check_gguf
from ..errors import ModelCorrupt, ModelNotFound, StoreError, TrainingError
from ..records import AdapterVersion, VerifyCase
from ..settings import Settings
from ..store import Store

log = logging.getLogger("clawdesk.promote")
_VERSION_DIR = re.compile(r"^v(\d+)$")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def next_version(store: Store) -> int:
    on_disk = [int(m.group(1)) for p in locations.adapters_dir().iterdir() if (m := _VERSION_DIR.match(p.name))]
    in_db = [a.version for a in store.adapters()]
    return max(on_disk + in_db + [0]) + 1


def sweep(store: Store) -> list[str]:
    """Remove what a crashed promotion left: staging dirs and version dirs with no row."""
    removed = []
    known = {a.version for a in store.adapters()}
    for p in locations.adapters_dir().iterdir():
        m = _VERSION_DIR.match(p.name)
        if p.name.startswith(".staging-") or (m and int(m.group(1)) not in known):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
    return removed


def export_for_serving(peft_dir: Path, base_gguf: str, dest: Path, serve: str,
                       qtype: str = "Q8_0") -> tuple[Path, str]:
    """Write adapter.gguf or model.gguf into ``dest``; returns (path, kind)."""
    from ..export.adapter import peft_to_gguf_lora
    from ..export.merge import merge_to_gguf

    if serve == "merged":
        return merge_to_gguf(base_gguf, peft_dir, dest / "model.gguf", qtype=qtype), "merged"
    return peft_to_gguf_lora(peft_dir, base_gguf, dest / "adapter.gguf"), "adapter"


def promote(store: Store, settings: Settings, candidate_dir: Path, base_gguf: str, cases: list[VerifyCase],
            run_id: int | None = None, metrics: dict | None = None, trained_on: list[int] | None = None,
            progress: Callable[[str], None] | None = None,
            _before_rename: Callable[[], None] | None = None) -> AdapterVersion:
    """Export, verify and atomically make the candidate the served version."""
    from ..export.verify import verify_served

    say = progress or (lambda _msg: None)
    sweep(store)
    version = next_version(store)
    root = locations.adapters_dir()
    staging = root / f".staging-v{version}"
    final = root / f"v{version}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        say("copying candidate")
        shutil.copytree(candidate_dir, staging / "peft")
        say(f"exporting for llama.cpp ({settings.serve})")
        served_path, kind = export_for_serving(staging / "peft", base_gguf, staging, settings.serve)
        say("verifying the served model reproduces the trained one")
        for case in cases:
            ok = verify_served(base_gguf, served_path if kind == "adapter" else None,
                               served_path if kind == "merged" else None, case.prompt_ids, case.expected_ids,
                               margin=0.5 if kind == "merged" else 0.25, n_threads=settings.n_threads,
                               expected_logprobs=case.expected_logprobs, top_gaps=case.top_gaps,
                               max_mean_drift=0.2 if kind == "merged" else 0.15)
            if not ok:
                raise TrainingError("The exported adapter does not reproduce the trained model's answers; "
                                    "it was not promoted (the candidate is kept in the run folder).")
        _fsync_dir(staging)
        if _before_rename:
            _before_rename()
        os.replace(staging, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    parent = store.served_version()
    rel = lambda p: str(final / Path(p).relative_to(staging)) if str(p).startswith(str(staging)) else str(p)  # noqa: E731
    adapter = store.record_promotion(version, str(final / "peft"), rel(served_path), kind, parent, run_id,
                                     metrics, trained_on)
    prune(store, settings.keep_versions)
    return adapter


def prune(store: Store, keep: int) -> list[int]:
    """Delete all but the newest ``keep`` versions (never the served one)."""
    served = store.served_version()
    versions = sorted((a.version for a in store.adapters()), reverse=True)
    removed = []
    for v in versions[keep:]:
        if v == served:
            continue
        shutil.rmtree(locations.adapters_dir() / f"v{v}", ignore_errors=True)
        store.delete_adapter_row(v)
        removed.append(v)
    return removed


def rollback(store: Store, version: int | None) -> AdapterVersion | None:
    """Serve an earlier version (or the base model with ``None``); checked before switching."""
    if version is None:
        store.set_served(None)
        return None
    try:
        adapter = store.get_adapter(version)
    except StoreError:
        raise ModelNotFound(f"There is no adapter version {version}; `clawdesk adapters list` shows what is kept.") from None
    try:
        check_gguf(adapter.gguf_path)
    except (ModelNotFound, ModelCorrupt) as e:
        raise ModelCorrupt(f"Version {version} cannot be served ({e}); pick another version.") from None
    store.set_served(version)
    return adapter
