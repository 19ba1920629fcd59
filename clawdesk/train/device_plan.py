"""How much GPU memory a training pass needs, and the micro-batch and context that fit.

Why: the nightly pass runs on whatever card the person has. An 8B model trains in QLoRA at
8 × 512 tokens in 10.7 GiB (11.9 reserved by the allocator) on an H100 — so a 16 GB card fits
and a 12 GB one does not (docs/platform.md). Rather than fail with a CUDA out-of-memory error
twenty minutes into a pass, the pass plans before it loads: from the model's shape and the free
GPU memory it picks the largest micro-batch (then, if need be, the shortest context down to
``MIN_CONTEXT``) that fits, or stops with one line that says what the model needs and what the
card has.

The estimate is deliberately simple and calibrated on that H100 run (random-init weights, real
shapes; tests/tiny/test_device_plan.py pins it to those four measurements):

* weights: NF4 ≈ 0.56 bytes per parameter of the decoder's linear layers (4 bits + double-
  quantised scales), embeddings and an untied head in bf16; a bf16 LoRA base 2 bytes per
  parameter; fp32 4;
* per token in a micro-batch: ~9 bytes per vocabulary entry (fp32 logits, their log-softmax and
  its gradient dominate at 128k vocabularies) plus, with gradient checkpointing, 1 byte per
  hidden unit per layer (the saved layer inputs) — ×16 without checkpointing (not measured);
* × 1.15 for the allocator's reserve, + 0.5 GiB for the CUDA context and LoRA optimiser state.

Everything here is a pure function of numbers, so it is tested on the CPU; only ``free_gpu_bytes``
touches CUDA.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TrainingError
from ..settings import Settings

GIB = 1024 ** 3
MIN_CONTEXT = 256
RESERVE = 1.15
OVERHEAD = int(0.5 * GIB)


@dataclass(frozen=True)
class ModelShape:
    """What the memory estimate needs from an HF ``config.json``."""

    vocab: int
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool

    @property
    def linear_params(self) -> int:
        """Parameters of the decoder's projections (what NF4 quantises)."""
        attn = self.hidden * self.head_dim * (2 * self.heads + 2 * self.kv_heads)
        mlp = 3 * self.hidden * self.intermediate
        return self.layers * (attn + mlp)

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    @property
    def params(self) -> int:
        return self.linear_params + self.embedding_params

    def label(self) -> str:
        """"8B", "1.7B", "135M": how people name a model's size."""
        n = self.params
        return f"{n / 1e9:.1f}B".replace(".0B", "B") if n >= 1e9 else f"{round(n / 1e6)}M"


def shape_from_config(cfg: dict[str, Any]) -> ModelShape:
    """A ``ModelShape`` from a config.json dict (gemma3 nests its text config)."""
    cfg = cfg.get("text_config", cfg)
    heads = int(cfg["num_attention_heads"])
    hidden = int(cfg["hidden_size"])
    return ModelShape(vocab=int(cfg["vocab_size"]), hidden=hidden, layers=int(cfg["num_hidden_layers"]),
                      intermediate=int(cfg["intermediate_size"]), heads=heads,
                      kv_heads=int(cfg.get("num_key_value_heads") or heads),
                      head_dim=int(cfg.get("head_dim") or hidden // heads),
                      tied=bool(cfg.get("tie_word_embeddings", False)))


def weight_bytes(shape: ModelShape, backend: str) -> int:
    """Bytes of the frozen base on the device for a back end name (backend.Backend.name)."""
    if "nf4" in backend or "4bit" in backend:
        return int(shape.linear_params * 0.56 + shape.embedding_params * 2)
    return shape.params * (2 if "bf16" in backend else 4)


def token_bytes(shape: ModelShape, grad_checkpointing: bool) -> int:
    """Activation bytes per token of a micro-batch (see the module docstring)."""
    per_layer = shape.hidden * (1 if grad_checkpointing else 16)
    return 9 * shape.vocab + shape.layers * per_layer


def need_bytes(shape: ModelShape, backend: str, micro_batch: int, context: int, grad_checkpointing: bool = True) -> int:
    """Peak device memory the estimate expects for one micro-batch of ``context`` tokens each."""
    active = weight_bytes(shape, backend) + micro_batch * context * token_bytes(shape, grad_checkpointing)
    return int(active * RESERVE) + OVERHEAD


@dataclass(frozen=True)
class MemoryPlan:
    """The micro-batch and context a pass uses on this device, and why."""

    micro_batch: int
    context_tokens: int
    need_bytes: int
    free_bytes: int
    note: str


def plan_memory(shape: ModelShape, backend: str, free_bytes: int, context: int, micro_batch: int,
                grad_checkpointing: bool = True) -> MemoryPlan:
    """Fit a pass into ``free_bytes``: the requested micro-batch (halved down to 1), then the
    context (halved down to ``MIN_CONTEXT``). TrainingError when even 1 × MIN_CONTEXT does not fit.
    ``micro_batch`` 0 means automatic (8, the CUDA default)."""
    mb = micro_batch or 8
    ctx = context
    while True:
        need = need_bytes(shape, backend, mb, ctx, grad_checkpointing)
        if need <= free_bytes:
            changed = (mb, ctx) != ((micro_batch or 8), context)
            note = (f"{shape.label()} model, {backend}: micro-batch {mb} × {ctx} tokens needs ~{need / GIB:.1f} GiB "
                    f"of {free_bytes / GIB:.1f} GiB free" + (" (reduced to fit)" if changed else ""))
            return MemoryPlan(mb, ctx, need, free_bytes, note)
        if mb > 1:
            mb //= 2
        elif ctx > MIN_CONTEXT:
            ctx = max(MIN_CONTEXT, ctx // 2)
        else:
            break
    at = min(context, 512)
    advice = ("a smaller model, or a GPU with more memory" if "nf4" in backend or "4bit" in backend
              else "train_backend = \"qlora\" (4-bit, about a quarter of the weights' memory), or a smaller model")
    raise TrainingError(
        f"This {shape.label()} model needs ~{need_bytes(shape, backend, 1, at, grad_checkpointing) / GIB:.0f} GB "
        f"to train at {at} tokens with {backend}; this GPU has {free_bytes / GIB:.1f} GB free. "
        f"Use {advice} (docs/gpu.md).")


def free_gpu_bytes(device: int | None = None) -> int:
    """Free memory on a CUDA device now (what other processes left us). CUDA only. None: this
    process's current device — under `accelerate launch`, its own GPU, not GPU 0."""
    import torch

    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def fit_to_device(base_dir: Path, backend_name: str, device: str, settings: Settings) -> tuple[Settings, MemoryPlan | None]:
    """The settings a pass trains with on this device: on CUDA, ``train_micro_batch`` and
    ``train_context_tokens`` replaced by the plan for the free memory (TrainingError when nothing
    fits); on the CPU unchanged (memory there is the operating system's to manage)."""
    if device != "cuda":
        return settings, None
    shape = shape_from_config(json.loads((Path(base_dir) / "config.json").read_text(encoding="utf-8")))
    plan = plan_memory(shape, backend_name, free_gpu_bytes(), settings.train_context_tokens,
                       settings.train_micro_batch, settings.train_grad_checkpointing)
    return settings.replace(train_micro_batch=plan.micro_batch, train_context_tokens=plan.context_tokens), plan
