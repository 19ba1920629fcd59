"""Tiny random models of each architecture ClawDesk trains, written as GGUF files the way
llama.cpp's converter (convert_hf_to_gguf.py) writes real ones — built in-process, no download.

Why it exists: every learning result so far is on one llama-architecture model. People bring
Qwen, Gemma, Mistral and Phi GGUFs; each architecture's converter does something of its own to the
weights (llama/mistral permute the q/k rows for RoPE, gemma stores its norms as 1 + w, phi3 fuses
q/k/v and gate/up, small models tie the output head to the embeddings). A tiny model with random
weights, written with the same conventions, is enough to prove the whole path — GGUF → torch →
LoRA → GGUF adapter → llama.cpp — keeps each of them straight; learning quality is not the point.

The conventions, as convert_hf_to_gguf.py and llama.cpp's loader have them (read, not copied):

* tensor names from gguf-py's per-architecture name map (``get_tensor_name_map``), which also
  knows that phi3's ``post_attention_layernorm`` is ``ffn_norm`` and gemma3's is
  ``post_attention_norm``;
* llama (and MistralForCausalLM, which the converter writes as a llama GGUF): q and k rows
  reordered per head from HF's half-split RoPE layout to llama.cpp's interleaved pairs;
* gemma2/gemma3: every ``*norm.weight`` stored as ``w + 1`` (llama.cpp multiplies by the stored
  value, HF's Gemma RMSNorm by 1 + w); the embeddings are tied and scaled by sqrt(hidden) in the
  graph on both sides;
* tied models have no ``output.weight`` (llama.cpp then uses ``token_embd``);
* the hyper-parameters under ``<arch>.*`` keys; qwen3 and gemma3 give the head size explicitly
  (``attention.key_length``).

The tokenizer is one byte-level BPE trained here on a few sentences, plus each family's chat
special tokens; every model gets its family's chat template. Real Gemma/Mistral GGUFs carry a
SentencePiece vocabulary instead — the tokenizer is not what differs between architectures in
the training path (ClawDesk trains on logged token ids), the weights are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SPECIALS = ["<|endoftext|>", "<unk>", "<|im_start|>", "<|im_end|>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>",
            "<s>", "</s>", "[INST]", "[/INST]", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
GEMMA = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
         "{{ m['content'] }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
MISTRAL = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
           "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}")
PHI3 = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")

TEXT = ("The quick brown fox jumps over the lazy dog. What is the capital of France? Paris is the capital. "
        "Explain why the sky is blue: sunlight scatters off air. How do I boil an egg? Put it in water. "
        "Keep it short please, under thirty words. Hi Sam! Here is a tip for sleeping better.") * 4


@dataclass(frozen=True)
class Tiny:
    """One architecture's tiny model: how HF builds it and how its GGUF is written."""

    name: str  # the test id
    gguf_arch: str  # general.architecture
    template: str
    bos: str
    eos: str  # the end-of-turn token a reply finishes with
    config: dict[str, Any]
    permute_qk: bool = False
    norm_offset: float = 0.0  # gemma: stored norm = w + 1
    general_name: str = ""  # transformers reads a llama GGUF named "mistral…" as MistralForCausalLM
    spm: bool = False  # a SentencePiece-style vocabulary (tokenizer.ggml.model = "llama"), as Gemma ships


COMMON = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=10000.0)

TINY = {
    "llama": Tiny("llama", "llama", CHATML, "<|im_start|>", "<|im_end|>",
                  dict(model_type="llama", tie_word_embeddings=True, **COMMON), permute_qk=True),
    "mistral": Tiny("mistral", "llama", MISTRAL, "<s>", "</s>",
                    dict(model_type="mistral", tie_word_embeddings=False, sliding_window=None, **COMMON),
                    permute_qk=True, general_name="tiny-mistral"),
    "qwen2": Tiny("qwen2", "qwen2", CHATML, "<|endoftext|>", "<|im_end|>",
                  dict(model_type="qwen2", tie_word_embeddings=True, **COMMON)),
    "qwen3": Tiny("qwen3", "qwen3", CHATML, "<|endoftext|>", "<|im_end|>",
                  dict(model_type="qwen3", tie_word_embeddings=True, head_dim=16, **COMMON)),
    "gemma3": Tiny("gemma3", "gemma3", GEMMA, "<bos>", "<end_of_turn>",
                   dict(model_type="gemma3_text", tie_word_embeddings=True, head_dim=16, query_pre_attn_scalar=16,
                        sliding_window=512, hidden_activation="gelu_pytorch_tanh", **COMMON), norm_offset=1.0, spm=True),
    "phi3": Tiny("phi3", "phi3", PHI3, "<s>", "<|end|>",
                 dict(model_type="phi3", tie_word_embeddings=False, pad_token_id=0, original_max_position_embeddings=512,
                      **COMMON)),
}


def tokenizer_json(path: Path, spm: bool = False) -> Path:
    """Train the shared BPE (a few hundred tokens) and save it as tokenizer.json: byte-level like
    GPT-2/Qwen/Llama 3, or (``spm``) SentencePiece-style — "▁" for a space, byte tokens
    ``<0x00>``…``<0xFF>`` for anything else — like Gemma."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if spm:
        tok = Tokenizer(models.BPE(byte_fallback=True))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never")
        tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="\u2581",
                                                                                     prepend_scheme="never")])
        specials = SPECIALS + [f"<0x{b:02X}>" for b in range(256)]
        alphabet: list[str] = []
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        specials, alphabet = SPECIALS, pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=len(specials) + 300 if spm else 400, special_tokens=specials,
                                  show_progress=False, initial_alphabet=alphabet)
    tok.train_from_iterator([TEXT], trainer=trainer)
    tok.save(str(path))
    return path


def hf_model(spec: Tiny, vocab_size: int, tokenizer: Any, seed: int = 0) -> Any:
    """The random-initialised HF model. Weights are drawn wider than HF's default (std 0.02 gives a
    near-uniform next-token distribution on a 64-wide model, where every greedy choice is a tie)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = dict(spec.config)
    model_type = cfg.pop("model_type")
    config = AutoConfig.for_model(model_type, vocab_size=vocab_size, bos_token_id=tokenizer.convert_tokens_to_ids(spec.bos),
                                  eos_token_id=tokenizer.convert_tokens_to_ids(spec.eos), **cfg)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # Gemma multiplies the embeddings by sqrt(hidden) (8 here) on the way in: draw them smaller.
    embed_std = 0.25 / (8.0 if spec.norm_offset else 1.0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, embed_std if "embed" in name else 0.15)
            elif "norm" in name:  # gemma's zero-centred norms stay zero-centred
                p.copy_(torch.randn_like(p) * 0.1 + (0.0 if spec.norm_offset else 1.0))
    return model.eval()


def rope_interleave(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF's half-split RoPE rows → llama.cpp's interleaved pairs, per head (the converter's permute)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(spec: Tiny, model: Any, tok_path: Path, out: Path) -> Path:
    """Write ``model`` as an f32 GGUF following the converter's conventions for ``spec``'s arch."""
    import gguf
    from tokenizers import Tokenizer

    cfg = model.config
    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == spec.gguf_arch)
    names = gguf.get_tensor_name_map(arch, cfg.num_hidden_layers)
    w = gguf.GGUFWriter(str(out), spec.gguf_arch)
    w.add_name(spec.general_name or f"tiny-{spec.name}")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(float(spec.config["rope_theta"]))
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    if spec.gguf_arch in ("qwen3", "gemma3"):
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    if spec.gguf_arch == "gemma3":
        w.add_sliding_window(cfg.sliding_window)
    if spec.gguf_arch in ("llama", "phi3"):
        w.add_rope_dimension_count(head_dim)
    if spec.gguf_arch == "phi3":
        w.add_rope_scaling_orig_ctx_len(cfg.original_max_position_embeddings)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    _write_vocab(w, spec, Tokenizer.from_file(str(tok_path)))

    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue  # tied: llama.cpp reuses token_embd
        stem, suffix = hf_name.rsplit(".", 1)
        name = names.get_name(stem)
        if name is None:
            raise KeyError(f"no GGUF name for {hf_name} in {spec.gguf_arch}")
        data = tensor.detach().float().numpy()
        if spec.permute_qk and stem.endswith("self_attn.q_proj"):
            data = rope_interleave(data, cfg.num_attention_heads)
        elif spec.permute_qk and stem.endswith("self_attn.k_proj"):
            data = rope_interleave(data, cfg.num_key_value_heads)
        if spec.norm_offset and hf_name.endswith("norm.weight"):
            data = data + spec.norm_offset
        w.add_tensor(f"{name}.{suffix}", np.ascontiguousarray(data, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def _write_vocab(w: Any, spec: Tiny, tok: Any) -> None:
    """The BPE as llama.cpp's "gpt2" tokenizer model (tokens by id, their types, the merges), or
    as its "llama" (SentencePiece) model: no merges, a score per piece — earlier merges score
    higher — and byte tokens typed BYTE."""
    import json

    import gguf

    vocab = tok.get_vocab(with_added_tokens=True)
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]

    def kind(t: str) -> int:
        if t == "<unk>" and spec.spm:
            return gguf.TokenType.UNKNOWN
        if t in SPECIALS:
            return gguf.TokenType.CONTROL
        return gguf.TokenType.BYTE if spec.spm and t.startswith("<0x") else gguf.TokenType.NORMAL

    if spec.spm:
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_add_space_prefix(False)  # as the converter writes Gemma's
        w.add_token_scores([0.0 if kind(t) != gguf.TokenType.NORMAL else -float(i) for i, t in enumerate(tokens)])
    else:
        model = json.loads(tok.to_str())["model"]
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("gpt-2")
        w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in model["merges"]])
    w.add_token_list(tokens)
    w.add_token_types([kind(t) for t in tokens])
    w.add_bos_token_id(vocab[spec.bos])
    w.add_eos_token_id(vocab[spec.eos])
    if spec.gguf_arch.startswith("gemma"):
        w.add_unk_token_id(vocab["<unk>"])  # transformers builds Gemma's tokenizer class, which needs one
    w.add_add_bos_token(False)  # the templates put the BOS in themselves
    w.add_chat_template(spec.template)


def build(spec: Tiny, folder: Path, seed: int = 0) -> tuple[Path, Any]:
    """(the GGUF file, the HF model it was written from) for ``spec`` under ``folder``."""
    from transformers import PreTrainedTokenizerFast

    (folder / "bpe").mkdir(parents=True, exist_ok=True)  # not beside the GGUF: transformers would read it
    tok_path = tokenizer_json(folder / "bpe" / "tokenizer.json", spec.spm)
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(tok_path), bos_token=spec.bos, eos_token=spec.eos)
    model = hf_model(spec, len(tokenizer), tokenizer, seed)
    return write_gguf(spec, model, tok_path, folder / f"tiny-{spec.name}.gguf"), model
