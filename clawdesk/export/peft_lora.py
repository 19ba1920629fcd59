"""Read a LoRA folder written by peft's ``save_pretrained`` into plain numpy pairs.

Only what llama.cpp can represent is accepted: plain LoRA (no DoRA, no LoRA bias, no trained
embeddings or ``modules_to_save``) on the projections of each decoder layer that the
architecture's table names (engine/archs.py: seven, or phi3's four fused ones), with one
scaling for every module. Anything else raises ``TrainingError`` instead of being dropped:
an adapter that silently lost part of itself would serve different behaviour from the one the
gate approved.

The scaling peft applies is ``lora_alpha / r`` (``lora_alpha / sqrt(r)`` with rsLoRA);
llama.cpp applies ``adapter.lora.alpha / r`` with r read from B's shape, so the exporter
writes ``alpha = scaling * r`` and both compute the same delta.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TrainingError
from .layout import BaseLayout, gguf_tensor_name, to_gguf_rows

# "base_model.model.model.layers.12.self_attn.q_proj.lora_A.weight" (the prefix varies with the
# wrapper: PeftModel adds "base_model.model.", a bare LoraModel does not). Which modules may follow
# "layers.N." depends on the architecture (layout.modules).
_KEY = re.compile(r"^(?:base_model\.model\.)?model\.layers\.(\d+)\.((?:self_attn|mlp)\.\w+)\.lora_([AB])\.weight$")


@dataclass
class LoraPair:
    """One projection's low-rank update, already in the base GGUF's row order."""

    name: str  # base tensor, e.g. "blk.3.attn_q.weight"
    a: np.ndarray  # [r, in]  float32
    b: np.ndarray  # [out, r] float32


@dataclass
class PeftLora:
    scaling: float  # what multiplies B @ A
    rank: int
    pairs: list[LoraPair]

    @property
    def gguf_alpha(self) -> float:
        """The alpha to store so that llama.cpp's alpha / r equals peft's scaling."""
        return self.scaling * self.rank

    def delta(self, pair: LoraPair) -> np.ndarray:
        """scaling · B @ A, [out, in] float32 — what merging adds to the base weight."""
        return (self.scaling * (pair.b @ pair.a)).astype(np.float32)


def _config(peft_dir: Path) -> dict:
    path = peft_dir / "adapter_config.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainingError(f"{peft_dir} is not a peft adapter folder (no adapter_config.json).") from None
    except (OSError, json.JSONDecodeError) as e:
        raise TrainingError(f"Cannot read {path} ({e}); retrain the adapter.") from None
    unsupported = [
        ("peft_type", cfg.get("peft_type", "LORA") != "LORA"),
        ("use_dora", bool(cfg.get("use_dora"))),
        ("lora_bias", bool(cfg.get("lora_bias"))),
        ("bias", cfg.get("bias", "none") != "none"),
        ("modules_to_save", bool(cfg.get("modules_to_save"))),
        ("trainable_token_indices", bool(cfg.get("trainable_token_indices"))),
        ("rank_pattern", bool(cfg.get("rank_pattern"))),
        ("alpha_pattern", bool(cfg.get("alpha_pattern"))),
        ("fan_in_fan_out", bool(cfg.get("fan_in_fan_out"))),
    ]
    bad = [name for name, flag in unsupported if flag]
    if bad:
        raise TrainingError(f"The adapter in {peft_dir} uses {', '.join(bad)}, which a llama.cpp LoRA cannot hold; "
                            f"train a plain LoRA on the attention and MLP projections.")
    return cfg


def _tensors(peft_dir: Path) -> dict[str, np.ndarray]:
    st = peft_dir / "adapter_model.safetensors"
    if st.exists():
        try:
            from safetensors.numpy import load_file

            return {k: v.astype(np.float32) for k, v in load_file(str(st)).items()}
        except TypeError:  # bf16 has no numpy dtype: go through torch
            from safetensors.torch import load_file as load_torch

            return {k: v.float().numpy() for k, v in load_torch(str(st)).items()}
        except Exception as e:  # noqa: BLE001 — safetensors raises its own error types
            raise TrainingError(f"Cannot read {st} ({e}); the adapter file is damaged, retrain it.") from None
    binary = peft_dir / "adapter_model.bin"
    if binary.exists():
        import torch

        return {k: v.float().numpy() for k, v in torch.load(binary, map_location="cpu", weights_only=True).items()}
    raise TrainingError(f"{peft_dir} has no adapter_model.safetensors; it is not a saved peft adapter.")


def read_peft_lora(peft_dir: str | Path, layout: BaseLayout) -> PeftLora:
    """Load, validate against the base model's shapes and reorder q/k rows for GGUF."""
    peft_dir = Path(peft_dir)
    cfg = _config(peft_dir)
    found: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for key, value in _tensors(peft_dir).items():
        m = _KEY.match(key)
        if not m or m.group(2) not in layout.modules:
            raise TrainingError(f"The adapter in {peft_dir} trains '{key}', which the llama.cpp export does not "
                                f"support for a {layout.arch} model (only {', '.join(layout.modules)}).")
        found.setdefault((int(m.group(1)), m.group(2)), {})[m.group(3)] = value
    if not found:
        raise TrainingError(f"The adapter in {peft_dir} holds no LoRA weights.")
    rank = int(cfg["r"])
    alpha = float(cfg.get("lora_alpha", rank))
    scaling = alpha / math.sqrt(rank) if cfg.get("use_rslora") else alpha / rank
    pairs = []
    for (layer, module), ab in sorted(found.items()):
        name = gguf_tensor_name(layer, module, layout)
        if set(ab) != {"A", "B"}:
            missing = ({"A", "B"} - set(ab)).pop()
            raise TrainingError(f"The adapter in {peft_dir} is missing lora_{missing} for {name}; retrain it.")
        a, b = ab["A"], ab["B"]
        if name not in layout.shapes:
            raise TrainingError(f"The adapter targets {name}, which the base model does not have; "
                                f"it was trained for another model.")
        out_dim, in_dim = layout.shapes[name]
        if a.shape != (rank, in_dim) or b.shape != (out_dim, rank):
            raise TrainingError(f"The adapter's {name} has shapes A{a.shape} B{b.shape}, the base needs "
                                f"A({rank}, {in_dim}) B({out_dim}, {rank}); it was trained for another model.")
        pairs.append(LoraPair(name=name, a=np.ascontiguousarray(a),
                              b=np.ascontiguousarray(to_gguf_rows(b, module, layout))))
    return PeftLora(scaling=scaling, rank=rank, pairs=pairs)
