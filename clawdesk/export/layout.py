"""How Hugging Face module names and weight layouts map onto llama.cpp's GGUF tensors.

Two facts decide whether an exported LoRA means the same thing in llama.cpp as in torch:

* **Names.** llama.cpp finds a LoRA pair by the *base* tensor's name plus a suffix:
  ``blk.N.attn_q.weight.lora_a`` / ``.lora_b`` (src/llama-adapter.cpp strips ``.lora_a``/``.lora_b``
  and looks the rest up in the model). HF's ``model.layers.N.self_attn.q_proj`` is GGUF's
  ``blk.N.attn_q``; the per-architecture table (engine/archs.py) holds the projections a ClawDesk
  LoRA trains — seven, or phi3's four fused ones.

* **Row order of q and k.** HF llama implements RoPE by rotating *halves* of each head
  (dimension i pairs with i + head_dim/2); llama.cpp's llama kernel rotates *adjacent pairs*
  (2i with 2i+1). convert_hf_to_gguf.py therefore reorders the output rows of q_proj (per head,
  ``n_head`` heads) and k_proj (``n_head_kv`` heads) when it writes a llama GGUF, and
  transformers undoes that when it loads one — so the torch model we train sees HF order while
  the GGUF holds the interleaved order. A LoRA delta ``B @ A`` lives in the same output space as
  the weight, so its rows must be reordered the same way; only B carries output rows, so only
  ``lora_b`` of q and k is permuted (A, and the other five projections, are untouched). Without
  this the adapter still loads and runs, but scrambles every attention head's rotation. Only
  llama GGUFs (MistralForCausalLM included) are permuted; engine/archs.py says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.archs import arch_for
from ..errors import TrainingError

# GGUF tensors a merge keeps byte-for-byte (the LoRA never touches them; see merge.py).
EMBEDDING_TENSORS = ("token_embd.weight", "output.weight")


@dataclass(frozen=True)
class BaseLayout:
    """What the exporter needs to know about the base GGUF."""

    arch: str
    n_layer: int
    n_head: int
    n_head_kv: int
    permute_qk: bool
    shapes: dict[str, tuple[int, int]]  # GGUF tensor name → (rows=out, cols=in), numpy order
    modules: dict[str, str] = field(default_factory=dict)  # HF module path → GGUF stem (engine/archs.py)


def read_layout(reader) -> BaseLayout:
    """Architecture and head counts from a ``gguf.GGUFReader`` of the base model; TrainingError
    (naming the architectures that can be trained) for any other architecture."""
    def field_(key: str):
        f = reader.fields.get(key)
        return f.contents() if f is not None else None

    arch = field_("general.architecture")
    spec = arch_for(str(arch))
    n_head = int(field_(f"{arch}.attention.head_count"))
    n_head_kv = int(field_(f"{arch}.attention.head_count_kv") or n_head)
    shapes = {t.name: (int(t.shape[1]), int(t.shape[0])) for t in reader.tensors if len(t.shape) == 2}
    return BaseLayout(arch=arch, n_layer=int(field_(f"{arch}.block_count")), n_head=n_head, n_head_kv=n_head_kv,
                      permute_qk=spec.permute_qk, shapes=shapes, modules=dict(spec.modules))


def open_base(base_gguf: str | Path):
    """A ``gguf.GGUFReader`` for the base GGUF; ModelNotFound/ModelCorrupt for a missing or broken file."""
    from ..engine.gguf_check import check_gguf

    return check_gguf(base_gguf)


def gguf_tensor_name(layer: int, hf_module: str, layout: BaseLayout) -> str:
    """``(3, "self_attn.q_proj")`` → ``"blk.3.attn_q.weight"`` (the names differ by architecture:
    phi3's fused ``self_attn.qkv_proj`` is ``attn_qkv``)."""
    return f"blk.{layer}.{layout.modules[hf_module]}.weight"


def rope_permute(rows: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder output rows from HF's half-split RoPE layout to llama.cpp's interleaved one.

    Within each head the rows are [x0 .. x(h/2-1), y0 .. y(h/2-1)]; llama.cpp wants
    [x0, y0, x1, y1, ...]. View the rows as (head, half, i), swap to (head, i, half), flatten.
    Works on any trailing shape (a weight [out, in] or a LoRA B [out, r]).
    """
    out = rows.shape[0]
    head_dim = out // n_head
    if head_dim * n_head != out or head_dim % 2:
        raise TrainingError(f"Cannot split {out} rows into {n_head} RoPE heads; "
                            f"the adapter does not fit this base model.")
    return (rows.reshape(n_head, 2, head_dim // 2, *rows.shape[1:])
                .swapaxes(1, 2)
                .reshape(rows.shape))


def to_gguf_rows(b: np.ndarray, hf_module: str, layout: BaseLayout) -> np.ndarray:
    """LoRA B (HF row order) → the row order of the GGUF tensor it adds to."""
    if not layout.permute_qk:
        return b
    if hf_module == "self_attn.q_proj":
        return rope_permute(b, layout.n_head)
    if hf_module == "self_attn.k_proj":
        return rope_permute(b, layout.n_head_kv)
    return b
