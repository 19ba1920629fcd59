"""The served GGUF as a torch model, for training, gating and export.

transformers can dequantise a llama-architecture GGUF (``from_pretrained(dir, gguf_file=...)``);
that takes ~15 s for the bundled model, so the fp32 result is cached as an HF folder under the
user cache dir, keyed by the GGUF's size and mtime (reload ~0.1 s). The tokenizer comes from the
GGUF too; its ids are identical to llama.cpp's (docs/platform.md), which is what lets the trainer
score the exact token ids the chat logged.

Users who have the original HF checkpoint can point the model manifest at it (``hf_checkpoint``)
and skip the dequantisation.

transformers reads only some hyper-parameters from a GGUF; where its default differs from what
llama.cpp uses, ``archs.config_fixes`` corrects the config before the weights load (qwen3's head
size, gemma's query scale) and the tokenizer gets llama.cpp's name-keyed rules (Phi-3), so the
torch copy computes — and the chat template renders — what the served model does. An
architecture ClawDesk cannot train is refused here, before minutes of dequantising.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from .. import locations
from . import archs
from ..errors import ModelCorrupt, ModelNotFound


def _cache_key(gguf_path: Path) -> str:
    st = gguf_path.stat()
    raw = f"{gguf_path.resolve()}:{st.st_size}:{int(st.st_mtime)}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def hf_dir_for(gguf_path: str | Path) -> Path:
    """Dequantise (once) and return the cached HF folder for a GGUF file."""
    gguf_path = Path(gguf_path)
    if not gguf_path.exists():
        raise ModelNotFound(f"No model file at {gguf_path}.")
    target = locations.cache_dir() / "hf" / f"{gguf_path.stem}-{_cache_key(gguf_path)}"
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    arch, meta = gguf_meta(gguf_path)
    archs.arch_for(arch)  # TrainingError naming the supported families
    try:
        config = AutoConfig.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        for key, value in archs.config_fixes(arch, meta, config).items():
            setattr(config, key, value)
        model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                     config=config, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        archs.match_llama_cpp_tokenizer(tokenizer, meta)
    except Exception as e:  # noqa: BLE001 — transformers raises many kinds
        raise ModelCorrupt(f"Cannot convert {gguf_path} for training ({e}); point the model manifest's "
                           f"hf_checkpoint at the original HF folder instead.") from None
    model.hf_quantizer = None  # save_pretrained refuses a "quantised" model otherwise
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    return publish_dir(tmp, target)


def gguf_meta(gguf_path: str | Path) -> tuple[str, dict[str, object]]:
    """(``general.architecture``, the file's scalar metadata): what the architecture table needs.

    transformers' header reader skips the vocabulary arrays: 0.03 s on the bundled model, where
    ``gguf.GGUFReader`` takes ~4 s to decode 49k token strings (it is the fallback)."""
    gguf_path = Path(gguf_path)
    if not gguf_path.exists():
        raise ModelNotFound(f"No model file at {gguf_path}.")
    try:
        from transformers.integrations.gguf.reader import read_gguf_metadata

        raw, _ = read_gguf_metadata(str(gguf_path), ())
        meta = {k: v for k, v in raw.items() if not isinstance(v, (list, tuple))}
    except ImportError:  # another transformers layout: the slow, complete reader
        from .gguf_check import check_gguf

        reader = check_gguf(gguf_path)
        meta = {k: f.contents() for k, f in reader.fields.items() if len(f.data) == 1}
    except Exception as e:  # noqa: BLE001 — a damaged header, whatever the reader raises
        raise ModelCorrupt(f"{gguf_path} is damaged or truncated ({e}); replace it or pick another model.") from None
    return str(meta.get("general.architecture", "")), meta


def publish_dir(tmp: Path, target: Path) -> Path:
    """Move a fully written ``tmp`` folder to ``target`` in one step and return ``target``.

    The rename is atomic, so a crash mid-save leaves no half-written cache. Two processes that
    share a cache (a chat and a ``train --now``, or parallel benchmarks) can both convert the same
    model; whichever renames second finds a complete ``target`` and drops its own copy instead of
    failing. A ``target`` without ``config.json`` is a leftover of some older failure: replace it.
    """
    for _ in range(2):
        try:
            os.replace(tmp, target)
            return target
        except OSError:
            if (target / "config.json").exists():
                shutil.rmtree(tmp, ignore_errors=True)
                return target
            shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)  # a third failure is a real one (disk, permissions): let it speak
    return target


def load_model(source: str | Path, dtype: Any = None):
    """(model, tokenizer) in eval mode from a GGUF file or an HF checkpoint folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = Path(source)
    folder = source if source.is_dir() else hf_dir_for(source)
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype or torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model.eval()
    return model, tokenizer
