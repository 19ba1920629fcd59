"""Which model architectures ClawDesk can train, and what each one's GGUF does differently.

Chat works with any GGUF llama.cpp loads. Training needs three more things per architecture,
and this table is the one place that knows them:

1. **GGUF → torch.** transformers dequantises the GGUF, but reads only some hyper-parameters
   from it. Where it falls back to a default that llama.cpp does not use, the torch model would
   compute something else than the served one; ``config_fixes`` sets those fields from the GGUF
   (measured on tiny random models, tests/tiny/: qwen3's head size is ``attention.key_length``,
   not hidden/heads; gemma's query scale is llama.cpp's 1/sqrt(head size); phi3's default pad id
   32000 lies outside a smaller vocabulary).
2. **Which modules a LoRA trains** (peft ``target_modules``): the seven projections, or phi3's
   four fused ones (``qkv_proj``, ``gate_up_proj``).
3. **HF module → GGUF tensor**, and whether llama.cpp's converter reordered the q/k rows for
   RoPE (llama and MistralForCausalLM, which the converter writes as a llama GGUF). qwen2/qwen3,
   gemma and phi3 use the rotate-halves RoPE llama.cpp calls NEOX and keep HF's row order. Phi3's
   fused tensors keep HF's order too (q, k, v stacked; gate then up), so a LoRA on them maps 1:1.

Norm offsets (gemma stores ``1 + w``) and tied embeddings matter to the base conversion only: a
ClawDesk LoRA never touches norms or embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import TrainingError

_SEVEN = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}


@dataclass(frozen=True)
class Arch:
    """One trainable architecture, keyed by the GGUF's ``general.architecture``."""

    gguf: str
    hf_types: tuple[str, ...]  # transformers' model_type values that load from it
    modules: dict[str, str] = field(default_factory=lambda: dict(_SEVEN))  # HF module path → GGUF stem
    permute_qk: bool = False

    @property
    def targets(self) -> list[str]:
        """peft ``target_modules``: the leaf names of ``modules``."""
        return [m.rsplit(".", 1)[1] for m in self.modules]


ARCHS: dict[str, Arch] = {a.gguf: a for a in (
    Arch("llama", ("llama", "mistral"), permute_qk=True),
    Arch("qwen2", ("qwen2",)),
    Arch("qwen3", ("qwen3",)),
    Arch("gemma2", ("gemma2",)),
    Arch("gemma3", ("gemma3_text", "gemma3")),
    Arch("phi3", ("phi3",), modules={"self_attn.qkv_proj": "attn_qkv", "self_attn.o_proj": "attn_output",
                                     "mlp.gate_up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}),
)}

# What a person reads: the families, not the GGUF keys (mistral and llama 3 are "llama" GGUFs).
FAMILIES = "Llama / SmolLM / Mistral, Qwen2 / Qwen2.5, Qwen3, Gemma 2, Gemma 3, Phi-3"


def unsupported_reason(gguf_arch: str) -> str | None:
    """None when ``gguf_arch`` can be trained; else the one line ``models add`` and a pass print."""
    if gguf_arch in ARCHS:
        return None
    return (f"chat works; training needs one of these architectures: {FAMILIES} "
            f"(this model is '{gguf_arch}'). Chatting, judging and the preference memory still work with it.")


def arch_for(gguf_arch: str) -> Arch:
    """The table row for a base GGUF, or TrainingError with ``unsupported_reason``."""
    reason = unsupported_reason(gguf_arch)
    if reason:
        raise TrainingError(reason[0].upper() + reason[1:])
    return ARCHS[gguf_arch]


def arch_for_model_type(model_type: str) -> Arch:
    """The table row for a loaded torch model (``model.config.model_type``)."""
    for arch in ARCHS.values():
        if model_type in arch.hf_types:
            return arch
    raise TrainingError(f"Training a '{model_type}' model is not supported; {unsupported_reason(model_type)}")


def config_fixes(gguf_arch: str, meta: dict[str, object], config: object) -> dict[str, object]:
    """Fields of the transformers config (read from the GGUF) that must change so torch computes
    what llama.cpp computes; ``meta`` is the GGUF's key/value metadata. Returns what was changed."""
    fixes: dict[str, object] = {}
    key_length = meta.get(f"{gguf_arch}.attention.key_length")
    if key_length and getattr(config, "head_dim", None) != int(key_length):  # type: ignore[call-overload]
        fixes["head_dim"] = int(key_length)  # type: ignore[call-overload]
    head_dim = fixes.get("head_dim", getattr(config, "head_dim", None))
    if gguf_arch in ("gemma2", "gemma3") and head_dim:
        # llama.cpp scales queries by 1/sqrt(head size), except for the 62-layer 27B (hidden/heads).
        scalar = (config.hidden_size // config.num_attention_heads  # type: ignore[attr-defined]
                  if config.num_hidden_layers == 62 else head_dim)  # type: ignore[attr-defined]
        if getattr(config, "query_pre_attn_scalar", None) != scalar:
            fixes["query_pre_attn_scalar"] = scalar
    pad = getattr(config, "pad_token_id", None)
    if isinstance(pad, int) and not 0 <= pad < config.vocab_size:  # type: ignore[attr-defined]
        fixes["pad_token_id"] = None
    return fixes


# llama.cpp (src/llama-vocab.cpp) strips the whitespace after every special token of a model whose
# lower-cased general.name contains "phi-3" or "phi3" — a rule keyed on the name, not written in
# the vocabulary, so transformers does not know it. Without the same rule the trainer's chat
# template renders "<|user|>\n…" where llama.cpp logged "<|user|>…" (measured, tests/tiny/).
_RSTRIP_NAMES = ("phi-3", "phi3")
_RSTRIP_EXEMPT = ("<unk>", "<s>", "<|endoftext|>")


def rstrip_special_tokens(meta: dict[str, object]) -> bool:
    """Whether llama.cpp strips whitespace after this model's special tokens (see above)."""
    name = str(meta.get("general.name", "")).lower()
    return any(n in name for n in _RSTRIP_NAMES)


def match_llama_cpp_tokenizer(tokenizer: object, meta: dict[str, object]) -> None:
    """Give the HF tokenizer llama.cpp's name-keyed special-token rules (in place)."""
    if not rstrip_special_tokens(meta):
        return
    from tokenizers import AddedToken

    added = [t for t in tokenizer.added_tokens_decoder.values()  # type: ignore[attr-defined]
             if t.special and t.content not in _RSTRIP_EXEMPT]
    tokenizer.add_special_tokens(  # type: ignore[attr-defined]
        {"additional_special_tokens": [AddedToken(t.content, rstrip=True, normalized=False, special=True)
                                       for t in added]}, replace_extra_special_tokens=False)
