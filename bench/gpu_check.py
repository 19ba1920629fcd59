"""The CUDA training path, verified: run it on any machine with an NVIDIA GPU, in under 6 minutes.

    .venv/bin/python bench/gpu_check.py [--out bench/results] [--skip-shapes]

What it measures, with random-initialised weights of real shapes (no weights are downloaded;
nothing here says anything about learning quality):

1. **The real ``train_pass``** (24 samples, the product's settings) on CUDA with the NF4 QLoRA
   back end and with the bf16 LoRA back end, on a SmolLM2-135M-shaped model: step time, tokens/s,
   peak GPU memory (allocated and reserved), the back end chosen and the memory plan.
2. **One step on the same batch of 16** with each back end and with the CPU path (fp32 LoRA on
   all this machine's cores), synchronised: the speed-up of each GPU back end over the CPU.
3. **QLoRA at 8 × 512 tokens** on 1.7B- (SmolLM2-1.7B) and 8B- (Llama-3-8B) shaped models: step
   time and peak memory, next to ``train/device_plan.py``'s estimate for the same shape.

It writes one JSON file (``gpu_check-<time>.json`` and ``gpu_check-latest.json``). Where there is
no CUDA device it writes ``{"skipped": true, "reason": ...}`` and exits 0 — a clean skip, not a
failure. The big shapes are built directly in NF4 on the GPU, layer by layer (``random_nf4_model``),
so an 8B check needs neither 16 GB of disk nor a bf16 copy in GPU memory.

Not covered: llama.cpp's CUDA build (export verification and serving on the GPU) and unsloth's
fast path, which ``choose_backend`` uses only when unsloth is installed (``unsloth_installed`` in
the JSON says whether it was; the timings are then unsloth's, not plain peft's).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, isolated_home, say  # noqa: E402

SMOLLM2_135M = dict(model_type="llama", vocab_size=49152, hidden_size=576, num_hidden_layers=30, intermediate_size=1536,
                    num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True, max_position_embeddings=8192,
                    rope_theta=100000.0, rms_norm_eps=1e-5)
SHAPES = {
    "1.7B": dict(model_type="llama", vocab_size=49152, hidden_size=2048, num_hidden_layers=24, intermediate_size=8192,
                 num_attention_heads=32, num_key_value_heads=32, tie_word_embeddings=True, max_position_embeddings=8192),
    "8B": dict(model_type="llama", vocab_size=128256, hidden_size=4096, num_hidden_layers=32, intermediate_size=14336,
               num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=False, max_position_embeddings=8192,
               rope_theta=500000.0),
}
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def cuda_reason() -> str | None:
    """None when a CUDA device can run the check; else why not (the skip's reason)."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return f"no CUDA device (torch {torch.__version__}, built {'with' if torch.version.cuda else 'without'} CUDA)"
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return "bitsandbytes is not installed (pip install 'clawdesk[qlora]'); the QLoRA back end needs it"
    return None


def write(result: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out / f"gpu_check-{stamp}.json"
    text = json.dumps(result, indent=2)
    path.write_text(text, encoding="utf-8")
    (out / "gpu_check-latest.json").write_text(text, encoding="utf-8")
    return path


# --- models ---------------------------------------------------------------------------------------

def hf_folder(folder: Path, shape: dict[str, Any], seed: int = 0) -> Path:
    """A random-initialised model of ``shape`` saved as an HF folder, with a small ChatML tokenizer
    (a word-level vocabulary is enough: the samples are token ids)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    words = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"] + [f"w{i}" for i in range(200)] + \
            "user assistant system \n keep it short please answer the question".split(" ")
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(dict.fromkeys(words))}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", unk_token="<unk>",
                                   bos_token="<|im_start|>", additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    fast.chat_template = CHATML
    cfg = dict(shape)
    config = AutoConfig.for_model(cfg.pop("model_type"), bos_token_id=1, eos_token_id=2, **cfg)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def random_nf4_model(shape: dict[str, Any], device: str) -> Any:
    """A random model of ``shape`` built straight into NF4 on ``device``: parameters start on the
    meta device, each linear layer's weight is drawn on the device and quantised there (the same
    NF4 + double quantisation + bf16 compute as ``train.backend.load_base``), then the embeddings
    and norms are materialised. Peak memory: the NF4 model plus one layer in bf16."""
    import bitsandbytes as bnb
    import torch
    from accelerate import init_empty_weights
    from torch import nn
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = dict(shape)
    config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    with init_empty_weights():  # parameters on meta; buffers (RoPE frequencies) real, on the CPU
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    gen = torch.Generator(device=device).manual_seed(0)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and name != "lm_head":
                w = torch.randn(child.out_features, child.in_features, generator=gen, device=device,
                                dtype=torch.bfloat16) * 0.02
                q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                      compute_dtype=torch.bfloat16, compress_statistics=True, quant_type="nf4",
                                      device="meta")
                q.weight = bnb.nn.Params4bit(w, requires_grad=False, compress_statistics=True,
                                             quant_type="nf4").to(device)
                if child.bias is not None:
                    q.bias = nn.Parameter(torch.zeros(child.out_features, device=device, dtype=torch.bfloat16))
                setattr(module, name, q)
    for module in model.modules():
        for name, p in list(module.named_parameters(recurse=False)):
            if p.is_meta:
                value = (torch.ones if "norm" in name or p.dim() == 1 else torch.randn)(
                    p.shape, device=device, dtype=torch.bfloat16)
                module._parameters[name] = nn.Parameter(value * (0.02 if p.dim() > 1 else 1.0), requires_grad=False)
    if config.tie_word_embeddings:
        model.tie_weights()
    model.to(device)  # the buffers
    model.is_loaded_in_4bit = True
    return model


# --- samples --------------------------------------------------------------------------------------

def samples(n: int, prompt_len: int, reply_len: int, seed: int = 0, hinted: bool = True) -> list[Any]:
    """``n`` rated replies of random token ids; with ``hinted``, every second one has a hint and
    its chat messages, so the teacher context is rendered and scored as in a real pass."""
    import random

    from clawdesk.records import Sample

    rng = random.Random(seed)
    msgs = [{"role": "user", "content": "w1 w2 w3 answer the question"}]
    return [Sample(id=i + 1, message_id=i + 1, conversation_id=i + 1,
                   prompt_token_ids=[rng.randrange(4, 200) for _ in range(prompt_len)],
                   response_token_ids=[rng.randrange(4, 200) for _ in range(reply_len)] + [2],
                   reward=1.0 if i % 3 else -1.0, source="explicit", status="ready",
                   hints=["keep it short please"] if hinted and i % 2 else [],
                   prompt_messages=msgs if hinted and i % 2 else [])
            for i in range(n)]


def peak(torch: Any) -> dict[str, float]:
    torch.cuda.synchronize()
    return {"peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2)}


def reset(torch: Any) -> None:
    import gc

    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


# --- the three checks -----------------------------------------------------------------------------

def check_train_pass(folder: Path, setting: str, home: Path) -> dict[str, Any]:
    """The product's ``train_pass`` on the 135M-shaped model with ``train_backend = setting``."""
    import torch

    from clawdesk import catalog, locations
    from clawdesk.records import ModelEntry
    from clawdesk.settings import load_settings
    from clawdesk.store import open_store
    from clawdesk.train.run import train_pass

    reset(torch)
    with isolated_home(home):
        store = open_store(locations.db_path())
        try:
            # Training reads the manifest's HF checkpoint; no GGUF (and no llama.cpp) is needed for it.
            store.add_model(ModelEntry(name="gpu-check-135m", path=str(folder / "config.json"), hf_checkpoint=str(folder)))
            catalog.use_model(store, "gpu-check-135m")
            settings = load_settings(env={}).replace(train_backend=setting)
            start = time.perf_counter()
            result = train_pass(store, settings, samples=samples(24, 160, 48))
            wall = time.perf_counter() - start
        finally:
            store.close()
    steps = result.steps
    return {"backend": result.backend, "steps": len(steps), "wall_s": round(wall, 2),
            "median_step_s": round(statistics.median(s["step_s"] for s in steps), 3),
            "tokens_per_s": round(sum(s["tokens"] for s in steps) / sum(s["step_s"] for s in steps), 1),
            "memory_plan": result.summary.get("memory_plan"), "final_loss": result.summary.get("final_loss"),
            **peak(torch)}


def one_step(model: Any, tokenizer: Any, batch: list[Any], device: str) -> dict[str, Any]:
    """Score the batch under π_old, then one timed optimizer step on all of it (synchronised)."""
    import torch

    from clawdesk.settings import Settings
    from clawdesk.train.backend import trainable_parameters
    from clawdesk.train.data import method_weights
    from clawdesk.train.step import loss_config, score_config, score_samples, train_step

    settings = Settings()
    cfg = score_config(settings, method_weights("combined", settings), device)
    scored = score_samples(model, tokenizer, batch, cfg, store=None)
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(params, lr=settings.train_lr)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    metrics = train_step(model, optimizer, params, scored, loss_config(settings, "combined"), settings, cfg.micro_batch)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"step_s": round(seconds, 3), "tokens_per_s": round(metrics["tokens"] / seconds, 1),
            "micro_batch": cfg.micro_batch, "loss": metrics["loss"]}


def check_same_batch(folder: Path) -> dict[str, Any]:
    """One step on the same 16 samples: QLoRA NF4 and bf16 LoRA on CUDA, fp32 LoRA on the CPU."""
    import torch

    from clawdesk.settings import Settings
    from clawdesk.train.backend import Backend, load_trainable

    batch = samples(16, 160, 48, seed=1)
    out: dict[str, Any] = {}
    for backend in (Backend("qlora-cuda-nf4", "cuda", True), Backend("lora-cuda-bf16", "cuda", False),
                    Backend("lora-cpu-fp32", "cpu", False)):
        reset(torch)
        model, tok = load_trainable(folder, None, Settings(), backend)
        row = one_step(model, tok, batch, backend.device)
        if backend.device == "cuda":
            row.update(peak(torch))
        else:
            row["threads"] = torch.get_num_threads()
        out[backend.name] = row
        del model
    cpu = out["lora-cpu-fp32"]["step_s"]
    for name in ("qlora-cuda-nf4", "lora-cuda-bf16"):
        out[name]["speedup_vs_cpu"] = round(cpu / out[name]["step_s"], 2)
    return out


def check_shape(label: str, tokens: int = 512, sequences: int = 8) -> dict[str, Any]:
    """QLoRA, ``sequences`` × ``tokens`` (half prompt, half reply), gradient checkpointing as the
    settings have it, on a random NF4 model of the named shape; two steps, the second timed."""
    import torch

    from clawdesk.settings import Settings
    from clawdesk.train.backend import attach_lora
    from clawdesk.train.device_plan import GIB, need_bytes, shape_from_config

    reset(torch)
    settings = Settings()
    start = time.perf_counter()
    model = random_nf4_model(SHAPES[label], "cuda")
    if settings.train_grad_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model = attach_lora(model, None, settings)
    model.train()
    build_s = time.perf_counter() - start
    batch = samples(sequences, tokens // 2, tokens // 2 - 1, seed=2, hinted=False)  # no tokenizer here
    one_step(model, None, batch, "cuda")  # warm-up (kernels, allocator)
    row = one_step(model, None, batch, "cuda")
    estimate = need_bytes(shape_from_config(SHAPES[label]), "qlora-cuda-nf4", row["micro_batch"], tokens) / GIB
    row.update(shape=label, sequences=sequences, tokens=tokens, build_s=round(build_s, 1),
               plan_estimate_gib=round(estimate, 2), **peak(torch))
    del model
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--skip-shapes", action="store_true", help="skip the 1.7B and 8B shapes")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    reason = cuda_reason()
    if reason:
        path = write({"skipped": True, "reason": reason}, args.out)
        say(f"gpu_check skipped: {reason} ({path})")
        return 0
    import importlib.util

    import torch

    from clawdesk.train.backend import choose_backend

    result: dict[str, Any] = {
        "skipped": False, "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
        "cuda": torch.version.cuda, "cpu_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "free_gib_at_start": round(torch.cuda.mem_get_info()[0] / 2**30, 1),
        "auto_backend": choose_backend("auto").name,
        "unsloth_installed": importlib.util.find_spec("unsloth") is not None,
        "weights": "random-init, real shapes; speed and memory only"}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        folder = hf_folder(Path(tmp) / "smollm2-135m-shape", SMOLLM2_135M)
        for setting in ("qlora", "lora"):
            say(f"train_pass with train_backend = {setting} …")
            result[f"train_pass_{setting}"] = check_train_pass(folder, setting, Path(tmp) / f"home-{setting}")
        say("one step on the same batch of 16: QLoRA, bf16 LoRA, CPU …")
        result["same_batch"] = check_same_batch(folder)
    if not args.skip_shapes:
        for label in SHAPES:
            say(f"QLoRA 8 × 512 on a {label}-shaped model …")
            try:
                result[f"shape_{label}"] = check_shape(label)
            except torch.OutOfMemoryError as e:
                result[f"shape_{label}"] = {"error": f"out of GPU memory: {e}"[:300]}
    result["wall_s"] = round(time.perf_counter() - started, 1)
    path = write(result, args.out)
    say(f"gpu_check done in {result['wall_s']} s: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
