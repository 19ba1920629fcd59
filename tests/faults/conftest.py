"""Fixtures for the fault-injection tests: a one-thread engine, the dequantised torch copy of the
bundled model (built once per session), real peft LoRA adapters exported to GGUF, and a helper
that runs the real ``clawdesk`` command in a subprocess (signals and exit codes are real)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from clawdesk import locations
from clawdesk.chat import ChatService
from clawdesk.engine import Engine
from clawdesk.store import Store
from fault_helpers import CLI, ROOT, child_env, install_version, read_json_lines, run_cli  # noqa: F401

@pytest.fixture(scope="session")
def engine(model_path: str):
    """One llama.cpp thread: two spin-waiting threads on a busy 2-core machine run 25-40x slower."""
    e = Engine(model_path, n_ctx=2048, n_threads=1)
    yield e
    e.close()


@pytest.fixture
def quick(settings):
    return settings.replace(temperature=0.0, seed=0, max_tokens=8, n_threads=1, train_threads=1)


@pytest.fixture
def chat(store: Store, engine: Engine, quick) -> ChatService:
    return ChatService(store, engine, quick)


@pytest.fixture(scope="session")
def loras(tmp_path_factory: pytest.TempPathFactory, shared_hf: Path, model_path: str) -> SimpleNamespace:
    """Two real peft LoRAs (rank 4, all projections, random B so they change the output) and
    their llama.cpp GGUF exports: stand-ins for trained versions."""
    import torch
    from peft import LoraConfig, get_peft_model

    from clawdesk.engine.torch_model import load_model
    from clawdesk.export import peft_to_gguf_lora

    root = tmp_path_factory.mktemp("loras")
    torch.manual_seed(0)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {}
        for name in ("a", "b"):
            model, _ = load_model(shared_hf)
            peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=[
                "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
            with torch.no_grad():
                for pname, p in peft_model.named_parameters():
                    if "lora_B" in pname:
                        p.normal_(0, 0.02)
            peft_dir = root / name / "peft"
            peft_model.save_pretrained(peft_dir)
            gguf = peft_to_gguf_lora(peft_dir, model_path, root / name / "adapter.gguf")
            out[name] = SimpleNamespace(peft=peft_dir, gguf=gguf)
    finally:
        torch.set_num_threads(before)
    return SimpleNamespace(**out)
