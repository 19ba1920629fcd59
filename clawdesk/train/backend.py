"""The trainable model: base weights + the served LoRA, on the best back end this machine has.

- CUDA: QLoRA — the base quantised to 4-bit NF4 by bitsandbytes, LoRA via peft; unsloth's fast
  path when it is installed. (No GPU on the development machines: this path is written against
  the libraries' documented APIs but has not run here.)
- CPU: LoRA on the fp32 base (faster here than NF4), or QLoRA through bitsandbytes' CPU kernels
  when ``train_backend = "qlora"`` (slower on this CPU, but the same code the GPU path uses).

GPU-only packages (unsloth) are imported only inside the CUDA branch, never on the CPU path.

Learning accumulates: training starts from the currently promoted adapter (a peft folder), so a
candidate is the served adapter plus this run's update. Without one, a fresh LoRA (rank/alpha from
the settings, dropout 0, on the architecture's projections — q,k,v,o,gate,up,down, or phi3's fused
qkv, o, gate_up, down; B = 0 so it starts as the identity).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TrainingError
from ..records import ModelEntry
from ..settings import Settings

log = logging.getLogger(__name__)

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # most architectures


def target_modules(model: Any) -> list[str]:
    """The projections a LoRA trains on this model: the architecture table's (engine/archs.py),
    so that every trained module has a GGUF tensor to export to (phi3's are fused)."""
    from ..engine.archs import arch_for_model_type

    return arch_for_model_type(getattr(model.config, "model_type", "")).targets


@dataclass
class Backend:
    name: str  # lora-cpu-fp32 | lora-cuda-bf16 | qlora-cpu-nf4 | qlora-cuda-nf4 | unsloth-cuda-4bit
    device: str  # cpu | cuda
    quantized: bool
    unsloth: bool = False

    def describe(self) -> str:
        return {"lora-cpu-fp32": "LoRA on an fp32 base (CPU)",
                "lora-cuda-bf16": "LoRA on a bf16 base (CUDA)",
                "qlora-cpu-nf4": "QLoRA, 4-bit NF4 base through bitsandbytes' CPU kernels",
                "qlora-cuda-nf4": "QLoRA, 4-bit NF4 base (bitsandbytes + peft, CUDA)",
                "unsloth-cuda-4bit": "QLoRA through unsloth's fast path (CUDA)"}[self.name]


def choose_backend(setting: str) -> Backend:
    """'auto' → QLoRA on CUDA, LoRA on the CPU; 'lora'/'qlora' force one."""
    import torch

    cuda = torch.cuda.is_available()
    if setting not in ("auto", "lora", "qlora"):
        raise TrainingError(f"train_backend must be auto, lora or qlora; got {setting!r}.")
    if not cuda:
        if setting == "qlora":
            _need_bitsandbytes()
            return Backend("qlora-cpu-nf4", "cpu", quantized=True)
        return Backend("lora-cpu-fp32", "cpu", quantized=False)
    if setting == "lora":
        return Backend("lora-cuda-bf16", "cuda", quantized=False)
    _need_bitsandbytes()
    if importlib.util.find_spec("unsloth") is not None:
        return Backend("unsloth-cuda-4bit", "cuda", quantized=True, unsloth=True)
    return Backend("qlora-cuda-nf4", "cuda", quantized=True)


def gate_backend(setting: str) -> Backend:
    """How the promotion gate loads the base: on CUDA exactly as the trainer does (NF4 or bf16 on
    the GPU — never an fp32 CPU copy, which for an 8B model is ~32 GB of RAM and hours); on the
    CPU the fp32 weights, as before (the gate reads no gradients, and NF4 is slower there)."""
    backend = choose_backend(setting)
    if backend.device != "cuda":
        return Backend("lora-cpu-fp32", "cpu", quantized=False)
    if backend.unsloth:  # unsloth's loader is for training; the gate reads through plain bitsandbytes
        return Backend("qlora-cuda-nf4", "cuda", quantized=True)
    return backend


def _need_bitsandbytes() -> None:
    if importlib.util.find_spec("bitsandbytes") is None:
        raise TrainingError("QLoRA needs bitsandbytes: `pip install 'clawdesk[qlora]'`, or set train_backend = \"lora\".")


def load_trainable(base_dir: Path, adapter_dir: str | None, settings: Settings, backend: Backend) -> tuple[Any, Any]:
    """(peft model in train mode, tokenizer). ``base_dir`` is an HF folder (the dequantised GGUF
    cache or the manifest's hf_checkpoint); ``adapter_dir`` the served peft adapter, if any."""
    import torch

    torch.manual_seed(settings.train_seed)  # LoRA A-matrix init
    if backend.unsloth:
        return _load_unsloth(base_dir, adapter_dir, settings)
    model, tokenizer = load_base(base_dir, backend)
    if settings.train_grad_checkpointing:
        # Non-reentrant checkpointing needs no input-grad hooks with peft (the reentrant kind does).
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False  # no KV cache in training; it also conflicts with checkpointing
    model = attach_lora(model, adapter_dir, settings)
    # Train mode throughout, scoring included. LoRA dropout is 0, so the mode changes no number;
    # but in eval mode bitsandbytes repacks NF4 weights for fast CPU inference, and a backward
    # pass through repacked weights silently yields zero gradients for q,k,v,gate,up (measured).
    model.train()
    return model, tokenizer


def load_base(base_dir: Path, backend: Backend) -> tuple[Any, Any]:
    """(frozen base model on the back end's device and precision, tokenizer): NF4 through
    bitsandbytes for QLoRA, bf16 for LoRA on CUDA, fp32 on the CPU. The trainer and, on CUDA,
    the promotion gate load through here, so neither ever holds an fp32 copy of an 8B base."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {}
    # This process's GPU: 0 alone, or under `accelerate launch` the one accelerate selected for
    # it (torch.cuda.set_device(local rank)) — never every process on GPU 0.
    gpu = torch.cuda.current_device() if backend.device == "cuda" else None
    if backend.quantized:
        from transformers import AutoConfig, BitsAndBytesConfig

        compute = torch.bfloat16 if backend.device == "cuda" else torch.float32  # bf16 is slower on CPU
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute,
            bnb_4bit_use_double_quant=True)
        kwargs["device_map"] = {"": gpu if backend.device == "cuda" else "cpu"}
        kwargs["dtype"] = compute
        # The dequantised-GGUF cache still names GGUF as its "quantisation"; bitsandbytes must
        # replace it, and transformers refuses two quantisation configs.
        config = AutoConfig.from_pretrained(str(base_dir))
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        kwargs["config"] = config
    elif backend.device == "cuda":
        kwargs["dtype"], kwargs["device_map"] = torch.bfloat16, {"": gpu}  # straight onto the GPU
    else:
        kwargs["dtype"] = torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base_dir), **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    except (OSError, ValueError, RuntimeError) as e:
        raise TrainingError(f"Cannot load the model for training from {base_dir} ({e}).") from None
    return model, tokenizer


def attach_lora(model: Any, adapter_dir: str | None, settings: Settings) -> Any:
    """Wrap ``model`` with the served adapter (trainable) or a fresh LoRA."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if adapter_dir:
        if not (Path(adapter_dir) / "adapter_config.json").exists():
            raise TrainingError(f"The served adapter folder {adapter_dir} has no adapter_config.json; "
                                f"roll back to another version (`clawdesk adapters list`) or retrain from the base.")
        model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=True)
        cfg = model.peft_config["default"]
        if cfg.r != settings.train_rank:
            log.info("continuing the served adapter at its rank %d (train_rank %d applies to a fresh adapter)",
                     cfg.r, settings.train_rank)
        return model
    config = LoraConfig(r=settings.train_rank, lora_alpha=settings.train_alpha, lora_dropout=0.0,
                        target_modules=target_modules(model), bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def _load_unsloth(base_dir: Path, adapter_dir: str | None, settings: Settings) -> tuple[Any, Any]:
    """CUDA + unsloth installed. Not run on the development machines (no GPU there)."""
    from unsloth import FastLanguageModel  # GPU extra; imported only on this branch

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=str(base_dir), max_seq_length=settings.train_context_tokens, load_in_4bit=True, dtype=None)
    if adapter_dir:
        model = attach_lora(model, adapter_dir, settings)
    else:
        model = FastLanguageModel.get_peft_model(
            model, r=settings.train_rank, lora_alpha=settings.train_alpha, lora_dropout=0.0,
            target_modules=target_modules(model), bias="none",
            use_gradient_checkpointing="unsloth" if settings.train_grad_checkpointing else False,
            random_state=settings.train_seed)
    model.train()
    return model, tokenizer


def check_trainable(entry: ModelEntry) -> None:
    """Refuse, before anything is loaded or recorded, a model whose architecture ClawDesk cannot
    train (engine/archs.py) — so an unsupported model fails in one line at the start of a pass,
    never mid-pass. The manifest's HF checkpoint, when there is one, is what gets trained."""
    import json

    from ..engine.archs import arch_for, arch_for_model_type
    from ..engine.torch_model import gguf_meta

    folder = Path(entry.hf_checkpoint).expanduser() if entry.hf_checkpoint else None
    if folder and (folder / "config.json").is_file():
        arch_for_model_type(json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type", ""))
        return
    arch, _ = gguf_meta(entry.path)
    arch_for(arch)


def base_weights_dir(entry: ModelEntry) -> Path:
    """The weights a pass (and the gate) starts from: the manifest's HF checkpoint when there is
    one, else the chat GGUF dequantised to an HF folder (cached)."""
    from ..engine.torch_model import hf_dir_for

    if entry.hf_checkpoint and Path(entry.hf_checkpoint).expanduser().is_dir():
        return Path(entry.hf_checkpoint).expanduser()
    return hf_dir_for(entry.path)


def trainable_parameters(model: Any) -> list[Any]:
    return [p for p in model.parameters() if p.requires_grad]


def model_device(model: Any) -> Any:
    return next(p for p in model.parameters()).device
