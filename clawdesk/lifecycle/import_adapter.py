"""Bring back an adapter trained elsewhere and treat it like a nightly candidate.

Why: a pass can run on a GPU server (docs/gpu.md: the home copied there, ``clawdesk train --now
--train-only`` under ``accelerate launch``), but the chat is served here. What comes back is that
server's run folder — the peft LoRA (``candidate/``) with its ``clawdesk_run.json``, a promoted
version's folder (``peft/`` + ``adapter.gguf``), or the bare peft folder. ``import_adapter`` makes
it a run of this home, by the same rules as a candidate trained here.

Everything that can refuse it runs before anything is written (an error leaves the store, the
runs and the served version as they were):

1. the folder holds a peft LoRA (``candidate/``, ``peft/`` or the folder itself);
2. its record names the base it was trained from: the same file (sha256) as the current chat
   model, or — for records without a hash — the same model name; a bare folder is judged on
   step 3 alone, with a warning;
3. the LoRA fits the current base: its architecture's projections and every shape
   (``export.peft_lora``, the exporter's own check);
4. it is exported to a GGUF LoRA (``export.atomic``: never a partial file) in a staging folder,
   and llama.cpp serving base + that file reproduces torch + peft's greedy tokens on two general
   prompts (``export.verify_served``, the promotion check).

Then the staging folder becomes ``runs/<id>/`` of a new run record (status ``imported``), and by
default the gate decides (``train.gate``, as for a nightly candidate) and an accepted adapter is
promoted (``promote``, which exports and verifies again into the version folder).

What the gate's objective is measured on: this home's most recent samples. The server numbered
its samples itself, so its held-out ids mean nothing here, and the adapter may have trained on
these turns — the check says "in-sample". With no samples here the objective cannot be measured
and the gate refuses; ``--no-gate`` promotes anyway (with a warning).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import catalog, locations
from ..errors import ModelCorrupt, ModelNotFound, TrainingError
from ..records import ModelEntry, TrainResult, VerifyCase
from ..settings import Settings
from ..store import Store
from .lock import pipeline_lock
from .promote import promote

EVAL_SAMPLES = 64  # the gate's objective reads at most this many of this home's newest samples


@dataclass
class ImportReport:
    """What ``clawdesk adapters import`` did (printed, or as JSON)."""

    run_id: int
    decision: str  # imported (registered only) | refused | promoted
    gguf_path: str  # the GGUF LoRA in the run folder (llama.cpp serves it on the current base)
    version: int | None = None  # the version now served, when promoted
    gate: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def find_peft(folder: Path) -> Path:
    """The peft folder inside what was brought back (see the module docstring)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise TrainingError(f"{folder} is not a folder; give the run folder (runs/<id>), its candidate/ folder or "
                            "a version folder (adapters/v<N>).")
    for where in (folder / "candidate", folder / "peft", folder):
        if (where / "adapter_config.json").exists():
            return where
    if any(folder.glob("*.gguf")):
        raise TrainingError(f"{folder} holds a GGUF LoRA but not the peft adapter it was exported from; bring the "
                            "run's candidate/ folder too: the gate and the next night's training read the peft "
                            "weights, a GGUF LoRA alone can be neither gated nor trained further.")
    raise TrainingError(f"{folder} holds no peft adapter (no adapter_config.json in it, in candidate/ or in peft/).")


def read_record(peft_dir: Path) -> dict[str, Any]:
    """The run's ``clawdesk_run.json`` (written by ``train_pass``), or {} for a bare peft folder."""
    path = peft_dir / "clawdesk_run.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise TrainingError(f"Cannot read {path} ({e}); the folder is damaged, copy it again.") from None


def check_base(record: dict[str, Any], entry: ModelEntry) -> list[str]:
    """Refuse an adapter whose record names another base; returns warnings (none when the record
    settles it). Shapes are checked separately: a model of the same shapes but other weights
    passes that check, so the hash is what tells two such bases apart."""
    theirs, ours = record.get("base_sha256") or "", entry.sha256 or ""
    if theirs and ours:
        if theirs != ours:
            raise TrainingError(f"The adapter was trained on another base model ({record.get('base_model', '?')}, "
                                f"sha256 {theirs[:12]}…) than the chat model here ({entry.name}, sha256 {ours[:12]}…); "
                                "select that model (`clawdesk models use`) or train the adapter on this one.")
        return []
    name = record.get("base_model")
    if name and name != entry.name:
        raise TrainingError(f"The adapter was trained on '{name}' but the chat model here is '{entry.name}'; "
                            "select that model (`clawdesk models use`) or train the adapter on this one.")
    if not record:
        return ["the folder has no clawdesk_run.json, so only the architecture and shapes could be checked "
                "against the base model (a model of the same shapes with other weights would pass)"]
    return []


def import_adapter(store: Store, settings: Settings, folder: str | Path, *, gate: bool = True,
                   promote_it: bool = True, progress: Callable[[str], None] | None = None) -> ImportReport:
    """Check, register and (by default) gate and promote the adapter in ``folder``; see the module
    docstring. Raises TrainingError (nothing changed) when it does not fit the current base."""
    say = progress or (lambda _m: None)
    with pipeline_lock():  # never beside a nightly pass: both write runs and versions
        entry = catalog.current_model(store, settings)
        peft_dir = find_peft(Path(folder))
        record = read_record(peft_dir)
        warnings = check_base(record, entry)
        method = record.get("method") or settings.train_method
        staging = locations.runs_dir() / f".import-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            say("checking the adapter against the base model and exporting it for llama.cpp")
            gguf_path, cases = _stage(peft_dir, entry, settings, staging, say)
            run_id = _register(store, settings, staging, entry, record, method, peft_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        run_dir = locations.runs_dir() / str(run_id)
        report = ImportReport(run_id, "imported", str(run_dir / gguf_path.name), warnings=warnings)
        if not promote_it:
            return report
        result = _as_result(store, run_id, method, record)
        if gate:
            from ..train.gate import gate as run_gate

            say("gate: checking the adapter as a nightly candidate")
            decision, _ = run_gate(store, settings, result, progress=say)
            report.gate = asdict(decision)
            store.update_run(run_id, gate=report.gate)
            if not decision.accepted:
                store.update_run(run_id, status="refused")
                report.decision = "refused"
                store.log_pipeline("import", "refused", "; ".join(r[6:] for r in decision.reasons
                                                                  if r.startswith("FAIL")), run_id=run_id)
                return report
        else:
            report.warnings.append("promoted without the gate (--no-gate): nothing checked that it is better here, "
                                   "or that it still answers general prompts; `clawdesk adapters rollback` undoes it")
            report.gate = {"accepted": None, "reasons": ["skipped (--no-gate)"]}
            store.update_run(run_id, gate=report.gate)
        say("promoting")
        adapter = promote(store, settings, Path(result.candidate_path), entry.path, cases, run_id=run_id,
                          metrics={"gate": report.gate, "imported_from": str(folder)}, trained_on=[], progress=say)
        store.update_run(run_id, status="promoted")
        store.log_pipeline("import", "promoted", f"version {adapter.version} (imported from {folder})", run_id=run_id)
        report.decision, report.version = "promoted", adapter.version
        return report


def _stage(peft_dir: Path, entry: ModelEntry, settings: Settings, staging: Path,
           say: Callable[[str], None]) -> tuple[Path, list[VerifyCase]]:
    """Copy the peft folder to ``staging/candidate``, export ``staging/adapter.gguf`` (the
    exporter refuses an adapter that does not fit the base) and check llama.cpp serves it as
    torch + peft does. Returns (the GGUF's name in staging, the verification cases)."""
    from ..export import peft_to_gguf_lora, verify_served

    shutil.copytree(peft_dir, staging / "candidate")
    try:
        gguf_path = peft_to_gguf_lora(staging / "candidate", entry.path, staging / "adapter.gguf")
    except (ModelCorrupt, ModelNotFound) as e:
        raise TrainingError(f"The chat model's GGUF cannot be read ({e}); fix it before importing.") from None
    say("checking that llama.cpp serves what torch + peft compute")
    cases = verify_cases(staging / "candidate", entry, settings)
    for case in cases:
        if not verify_served(entry.path, gguf_path, None, case.prompt_ids, case.expected_ids, margin=0.25,
                             n_threads=settings.n_threads, expected_logprobs=case.expected_logprobs,
                             top_gaps=case.top_gaps, max_mean_drift=0.15):
            raise TrainingError("llama.cpp with the exported adapter does not reproduce the adapter's own answers "
                                "on this base model; it was trained for another model or is damaged, and was not "
                                "imported.")
    return gguf_path, cases


def verify_cases(peft_dir: Path, entry: ModelEntry, settings: Settings) -> list[VerifyCase]:
    """torch + peft's greedy replies to the first general prompts, with their log-probs — what
    the promotion check asks llama.cpp to reproduce (as ``train.gate`` builds them)."""
    import torch
    from peft import PeftModel

    from ..train.backend import base_weights_dir, gate_backend, load_base
    from ..train.gate import GENERAL_PROMPTS, REPLY_TOKENS, greedy, verify_cases
    from ..train.scoring import end_of_turn_ids, render_prompt

    old_threads = torch.get_num_threads()
    if settings.train_threads:
        torch.set_num_threads(settings.train_threads)
    try:
        base, tokenizer = load_base(base_weights_dir(entry), gate_backend(settings.train_backend))
        try:
            model = PeftModel.from_pretrained(base, str(peft_dir)).eval()
        except (ValueError, KeyError, RuntimeError, OSError) as e:
            raise TrainingError(f"peft cannot load the adapter on this base model ({e}); it was trained for "
                                "another model or is damaged.") from None
        eos = end_of_turn_ids(tokenizer)
        with torch.no_grad():
            prompts = [render_prompt(tokenizer, [{"role": "user", "content": text}]) for text in GENERAL_PROMPTS[:2]]
            cases = verify_cases(model, prompts, [greedy(model, p, REPLY_TOKENS, eos) for p in prompts])
    finally:
        torch.set_num_threads(old_threads)
    if not cases:
        raise TrainingError("The adapter produces no tokens at all on general prompts; it is not servable.")
    return cases


def _register(store: Store, settings: Settings, staging: Path, entry: ModelEntry, record: dict[str, Any],
              method: str, peft_dir: Path) -> int:
    """A run record for the import, then the staging folder renamed to its ``runs/<id>``."""
    parent = store.served_version()
    run = store.start_run(method, {"backend": record.get("backend", "imported"), "model": entry.name,
                                   "parent_version": parent, "imported_from": str(peft_dir),
                                   "trained_elsewhere": {k: v for k, v in record.items() if k != "trained_on"}}, 0)
    final = locations.runs_dir() / str(run.id)
    try:
        shutil.rmtree(final, ignore_errors=True)  # a folder left by a deleted run with the same id
        os.replace(staging, final)
    except BaseException as e:
        store.update_run(run.id, status="failed", error=f"import: {type(e).__name__}: {e}")
        raise
    summary = {"backend": record.get("backend", "imported"), "imported_from": str(peft_dir),
               "base_model": entry.name, "trained_elsewhere_run": record.get("run_id")}
    store.update_run(run.id, status="imported", candidate_path=str(final / "candidate"), finished_at=_now(),
                     metrics={"steps": [], "summary": summary, "heldout_ids": [], "trained_ids": []})
    return run.id


def _as_result(store: Store, run_id: int, method: str, record: dict[str, Any]) -> TrainResult:
    """The run as the gate reads it: the objective on this home's newest samples (in-sample; see
    the module docstring), the served version as the comparison."""
    run = store.get_run(run_id)
    local = [s.id for s in store.samples() if s.status in ("ready", "used")][-EVAL_SAMPLES:]
    return TrainResult(run_id=run_id, method=method, backend=run.settings.get("backend", ""),
                       candidate_path=run.candidate_path, trained_ids=local, heldout_ids=[], skipped_ids=[],
                       parent_version=run.settings.get("parent_version"), steps=[], summary=run.metrics["summary"],
                       duration_s=0.0)


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
