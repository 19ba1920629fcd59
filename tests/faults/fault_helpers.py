"""Plain helpers for the fault-injection tests (not fixtures, so a test module can import them
by a name no other test folder uses — two folders' ``conftest`` modules would collide)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from clawdesk import locations
from clawdesk.store import Store

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "clawdesk"]  # the same entry point as the installed `clawdesk` command



def child_env(**extra: str) -> dict[str, str]:
    """The test's CLAWDESK_HOME plus one thread for llama.cpp and torch in the child."""
    env = {**os.environ, "CLAWDESK_N_THREADS": "1", "CLAWDESK_TRAIN_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


def run_cli(*args: str, input: bytes | None = None, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], input=input, capture_output=True, timeout=timeout, cwd=ROOT,
                          env=child_env(**env))


def install_version(store: Store, lora: SimpleNamespace, version: int, parent: int | None = None,
                    trained_on: list[int] | None = None, run_id: int | None = None) -> Path:
    """Put a LoRA where promotion would (adapters/vN/{peft,adapter.gguf}) and serve it."""
    final = locations.adapters_dir() / f"v{version}"
    shutil.copytree(lora.peft, final / "peft")
    shutil.copy2(lora.gguf, final / "adapter.gguf")
    store.record_promotion(version, str(final / "peft"), str(final / "adapter.gguf"), "adapter", parent, run_id,
                           {}, trained_on or [])
    return final / "adapter.gguf"


def read_json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]
