"""Log-probs for training: student (π_old), teacher (π_old with a hint in context) and reference.

All of them come from one function, ``response_logprobs``, on the same torch model in the same
precision — the reference implementation lost its signal to 0.2–0.4 nats/token of mismatch
between its serving engine and its trainer (docs/method.md §3). llama.cpp's log-probs are never used.

The student context is the prompt *as logged* (``Sample.prompt_token_ids``); it is never
re-tokenised. The teacher context is the turn's chat messages with the hint appended to the last
user message, rendered by the HF tokenizer's chat template (a test checks that this template
renders the same ids llama.cpp logged). Both are cut from the left to the training budget.

Before training, every sample is scored once under the served weights (π_old), and only what
the loss needs is kept: per response position the log-probs of the sampled token and of the
OPD support (the student's top-k, the teacher's, or both) under π_old and the teacher.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..records import Sample
from .loss import build_support, select_hint, topk_overlap

HINT_TAG = "\n\n[user's hint / instruction]\n"
MIN_PROMPT_TOKENS = 32  # a response longer than the budget keeps at least this much context


@dataclass
class ScoreConfig:
    topk: int = 4
    support: str = "student"  # student | teacher | union
    teacher: str = "served"  # served | base
    context_tokens: int = 1024
    use_opd: bool = True  # score teachers at all (False for the RL-only ablation)
    use_context: bool = False  # score context-distillation samples' memory teacher (w_context > 0)
    need_ref: bool = False  # k3 KL to the base weights
    anchor_to_base: bool = False  # rewarded, hint-less samples: the base model as teacher
    micro_batch: int = 1
    demo_copy_weight: float = 1.0  # see edit_weights


@dataclass
class Scored:
    """One sample, ready for the loss. Tensors are [T] or [T, K] on the CPU, all detached."""

    sample_id: int
    message_id: int
    is_demo: bool
    reward: float
    prompt_ids: list[int]
    response_ids: list[int]
    old_logp: Tensor | None = None  # log π_old(a_t)
    teacher_logp: Tensor | None = None  # log π_T,h*(a_t); None = no OPD term
    ref_logp: Tensor | None = None  # log π_ref(a_t) (base weights), for the KL term
    support_ids: Tensor | None = None  # [T, K] token ids of the OPD support
    support_mask: Tensor | None = None  # [T, K] bool
    support_old_logp: Tensor | None = None
    support_teacher_logp: Tensor | None = None
    hint: str = ""
    hint_index: int | None = None
    overlaps: list[float] = field(default_factory=list)  # mean |S^q ∩ S^p| per position, per hint
    truncated: int = 0  # context tokens cut from the left
    token_weights: Tensor | None = None  # [T], demos only: per-token NLL weights, mean 1 (edit_weights)
    is_context: bool = False  # context distillation (train/context.py): the memory is the "hint"
    # [start, end) response positions the engine wrote, not the policy (the memory's quoted words,
    # docs/memory.md): left out of the on-policy terms (RL, OPD), which are about the model's choices
    forced: list[list[int]] = field(default_factory=list)

    @property
    def has_hint(self) -> bool:
        return self.teacher_logp is not None


# --- contexts -----------------------------------------------------------------------------------

def teacher_messages(messages: list[dict[str, str]], hint: str) -> list[dict[str, str]] | None:
    """The turn's messages with the hint appended to the last user message (docs/method.md §3).
    None when there is no user message to attach it to."""
    out = copy.deepcopy(messages)
    for m in reversed(out):
        if m.get("role") == "user":
            m["content"] = m["content"] + HINT_TAG + hint
            return out
    return None


def _teacher_context(sample: Sample, hint: str) -> list[dict[str, str]] | None:
    """The teacher's messages: for a turn, its messages with the hint under the hint tag; for a
    context-distillation sample, the messages as served with the memory note (train/context.py
    keeps them on the sample), while the student's prompt is the same turn without it."""
    if sample.source == "context":
        return getattr(sample, "teacher_messages", None) or None
    return teacher_messages(sample.prompt_messages, hint)


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """The HF chat template with the generation prompt, as token ids."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if hasattr(ids, "keys"):  # some tokenizers return a BatchEncoding
        ids = ids["input_ids"]
    return [int(i) for i in ids]


# How chat templates end an assistant turn: ChatML/Qwen/SmolLM, Gemma, Phi-3, Llama 3. Mistral's
# ends with its EOS (</s>), which the tokenizer's eos covers.
END_OF_TURN_TEXTS = ("<|im_end|>", "<end_of_turn>", "<|end|>", "<|eot_id|>")


def end_of_turn_ids(tokenizer: Any) -> set[int]:
    """Token ids that end a reply: the tokenizer's EOS plus any end-of-turn token its vocabulary has
    (Gemma's EOS is ``<eos>`` but a turn ends with ``<end_of_turn>``; greedy replies must stop there)."""
    vocab = tokenizer.get_vocab()
    ids = {vocab[t] for t in END_OF_TURN_TEXTS if t in vocab}
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


def fit_context(prompt_ids: list[int], response_ids: list[int], budget: int) -> tuple[list[int], list[int], int]:
    """Cut the prompt from the left so prompt + response fits ``budget``. A response that alone
    overflows keeps its beginning and MIN_PROMPT_TOKENS of context. Returns (prompt, response,
    prompt tokens dropped)."""
    keep_response = min(len(response_ids), max(1, budget - MIN_PROMPT_TOKENS))
    response = response_ids[:keep_response]
    keep_prompt = max(1, budget - len(response))
    prompt = prompt_ids[-keep_prompt:]
    return prompt, response, len(prompt_ids) - len(prompt)


# --- where a correction differs ----------------------------------------------------------------

def edit_weights(original: list[int], corrected: list[int], copy_weight: float) -> list[float] | None:
    """Per-token weights for a demonstration: 1 where the user changed the model's reply,
    ``copy_weight`` where the correction copies it, rescaled to mean 1.

    Why: what a correction teaches is in its edit. Tokens copied from the model's own reply are
    already likely under the model; in a plain mean they swamp the few tokens that carry the wish
    ("Hi Sam!" in front of a 130-token reply is 3% of the loss). A token counts as copied when it
    continues a run aligned with the original (difflib's matching blocks, on token ids); the first
    token of each later run counts as edited, because its context changed — that is where a
    deletion shows (a reply cut short: the end-of-turn token after the cut). ``None`` when the
    weights would be uniform (copy_weight 1, or nothing to compare with).
    """
    if copy_weight >= 1.0 or not original or not corrected:
        return None
    weights = [1.0] * len(corrected)
    matcher = difflib.SequenceMatcher(None, original, corrected, autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        first_copied = b if (a == 0 and b == 0) else b + 1
        for j in range(first_copied, b + size):
            weights[j] = copy_weight
    total = sum(weights)
    if total <= 0:
        return None
    return [w * len(weights) / total for w in weights]


# --- the one forward pass -----------------------------------------------------------------------

def response_logprobs(model: Any, pairs: list[tuple[list[int], list[int]]]) -> list[Tensor]:
    """log π(· | context, a_<t) at every response position: [T_i, V] per (prompt, response).

    Sequences are left-padded so they all end at the same column; then the logits of the last
    T_max + 1 columns cover every response (``logits_to_keep`` skips the vocabulary projection
    of prompt positions, most of the memory on long contexts).
    """
    device = next(model.parameters()).device
    lengths = [len(p) + len(r) for p, r in pairs]
    width, t_max = max(lengths), max(len(r) for _, r in pairs)
    ids = torch.zeros(len(pairs), width, dtype=torch.long)
    mask = torch.zeros(len(pairs), width, dtype=torch.long)
    for i, (p, r) in enumerate(pairs):
        ids[i, width - lengths[i]:] = torch.tensor(p + r)
        mask[i, width - lengths[i]:] = 1
    # Left padding shifts real tokens right; positions must still count from 0 at the first real one.
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    attention = mask.to(device) if (mask == 0).any() else None
    out = model(input_ids=ids.to(device), attention_mask=attention, position_ids=position_ids.to(device),
                logits_to_keep=t_max + 1, use_cache=False)
    # Column j of the kept logits predicts token (width − t_max + j); the last column predicts
    # past the end of the sequence, so drop it: [B, t_max, V].
    logp = torch.log_softmax(out.logits[:, :-1].float(), dim=-1)
    return [logp[i, t_max - len(r):] for i, (_, r) in enumerate(pairs)]


def _batched(model: Any, pairs: list[tuple[list[int], list[int]]], micro_batch: int) -> list[Tensor]:
    out: list[Tensor] = []
    for start in range(0, len(pairs), max(1, micro_batch)):
        out += [t.cpu() for t in response_logprobs(model, pairs[start:start + micro_batch])]
    return out


def _adapter_off(model: Any):
    """The base weights: the peft adapter disabled for the duration."""
    return model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()


# --- scoring one sample -------------------------------------------------------------------------

@torch.no_grad()
def score_sample(model: Any, tokenizer: Any, sample: Sample, cfg: ScoreConfig,
                 original_ids: list[int] | None = None, teacher_model: Any = None,
                 forced: list[list[int]] | None = None) -> Scored:
    """Everything the loss needs about one sample, computed under π_old (the weights as loaded).
    ``original_ids``: for a demonstration, the model's own reply it corrects (edit_weights).
    ``teacher_model``: another model sharing the tokenizer (``teacher_model`` setting) that scores
    the hinted contexts instead of the student's own weights. ``forced``: see ``Scored.forced``."""
    prompt, response, cut = fit_context(sample.prompt_token_ids, sample.response_token_ids, cfg.context_tokens)
    scored = Scored(sample.id, sample.message_id, sample.source in ("demo", "transfer"), float(sample.reward or 0.0),
                    prompt, response, truncated=cut)
    if not scored.is_demo:
        scored.forced = [[a, min(b, len(response))] for a, b in (forced or []) if a < min(b, len(response))]
    if scored.is_demo:
        # off-policy: only the NLL of its tokens, nothing to score in advance
        weights = edit_weights(original_ids or [], response, cfg.demo_copy_weight)
        if weights is not None:
            scored.token_weights = torch.tensor(weights)
        return scored
    targets = torch.tensor(response)[:, None]  # [T, 1] for gathering the sampled token
    student = _batched(model, [(prompt, response)], 1)[0]  # [T, V] under π_old
    scored.old_logp = student.gather(-1, targets).squeeze(-1)
    student_topk = student.topk(cfg.topk, dim=-1).indices  # [T, K] = S^q_i

    teachers: list[Tensor] = []
    hints: list[str] = []
    scored.is_context = sample.source == "context"
    if (cfg.use_context if scored.is_context else cfg.use_opd) and sample.hints and sample.prompt_messages:
        pairs = []
        for hint in sample.hints:
            msgs = _teacher_context(sample, hint)
            if msgs is None:
                continue
            t_prompt, _, _ = fit_context(render_prompt(tokenizer, msgs), response, cfg.context_tokens)
            pairs.append((t_prompt, response))
            hints.append(hint)
        if pairs:
            if teacher_model is not None:
                vocab = student.shape[-1]  # a bigger sibling may pad its vocabulary further: same ids below
                teachers = [t[:, :vocab] for t in _batched(teacher_model, pairs, cfg.micro_batch)]
            else:
                with _adapter_off(model) if cfg.teacher == "base" else contextlib.nullcontext():
                    teachers = _batched(model, pairs, cfg.micro_batch)
    elif cfg.use_opd and cfg.anchor_to_base and scored.reward != 0:
        with _adapter_off(model):  # no hint: a pull toward the base model under the same context
            teachers = _batched(model, [(prompt, response)], 1)
        hints = [""]

    if cfg.need_ref:
        with _adapter_off(model):
            ref = _batched(model, [(prompt, response)], 1)[0]
        scored.ref_logp = ref.gather(-1, targets).squeeze(-1)

    if teachers:
        teacher_topk = torch.stack([t.topk(cfg.topk, dim=-1).indices for t in teachers])  # [H, T, K]
        overlap = topk_overlap(student_topk, teacher_topk)  # [H, T]
        h = select_hint(overlap, [len(x) for x in hints])
        teacher = teachers[h]
        ids, mask = build_support(student_topk, teacher_topk[h], cfg.support)
        scored.hint, scored.hint_index = hints[h], h
        scored.overlaps = overlap.float().mean(-1).tolist()
        scored.teacher_logp = teacher.gather(-1, targets).squeeze(-1)
        scored.support_ids, scored.support_mask = ids, mask
        scored.support_old_logp = student.gather(-1, ids)
        scored.support_teacher_logp = teacher.gather(-1, ids)
    return scored
