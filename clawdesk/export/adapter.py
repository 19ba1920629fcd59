"""peft LoRA folder → GGUF LoRA adapter that llama.cpp applies at run time.

The file llama.cpp's loader (src/llama-adapter.cpp) accepts:

* metadata ``general.type = "adapter"``, ``adapter.type = "lora"``, ``general.architecture``
  equal to the base model's (it refuses a mismatch), and ``adapter.lora.alpha`` (f32). The
  runtime scales each pair by ``alpha / r`` with r taken from B's shape; alpha 0 would mean
  "scale 1", so we always write it.
* per projection two tensors named after the base weight: ``blk.N.attn_q.weight.lora_a`` with
  numpy shape [r, in] and ``...lora_b`` with [out, r] (ggml's ne order is reversed: the loader
  checks a.ne[0] == W.ne[0] == in and b.ne[1] == W.ne[1] == out). These are exactly peft's
  lora_A / lora_B matrices — except that B of q and k is row-permuted (layout.py explains why).
* nothing else: embeddings and lm_head are never in a ClawDesk LoRA (the bundled model ties
  them, and llama.cpp would need them transposed).

f16 halves the file (~10 MB for r=8 on SmolLM2-135M) at no measurable cost: the product is
computed in f32 either way and LoRA values are far inside f16's range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_output
from .layout import open_base, read_layout
from .peft_lora import read_peft_lora

DTYPES = {"f16": np.float16, "f32": np.float32}


def peft_to_gguf_lora(peft_dir: str | Path, base_gguf: str | Path, out_path: str | Path, dtype: str = "f16") -> Path:
    """Write ``out_path`` (atomically) and return it. Raises TrainingError when the adapter does
    not fit the base, ModelCorrupt/ModelNotFound when the base GGUF is unusable."""
    import gguf

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}")
    layout = read_layout(open_base(base_gguf))
    lora = read_peft_lora(peft_dir, layout)
    out_path = Path(out_path)
    with atomic_output(out_path) as tmp:
        writer = gguf.GGUFWriter(tmp, layout.arch)  # writes general.architecture itself
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(lora.gguf_alpha))
        writer.add_string(gguf.Keys.General.NAME, f"ClawDesk LoRA r={lora.rank} for {Path(base_gguf).name}")
        for pair in lora.pairs:  # a before b: gguf's parameter count pairs them in this order
            writer.add_tensor(pair.name + ".lora_a", pair.a.astype(DTYPES[dtype]))
            writer.add_tensor(pair.name + ".lora_b", pair.b.astype(DTYPES[dtype]))
        try:
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
    return out_path
