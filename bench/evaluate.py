"""Held-out scoring and the general-prompt regression check of the personalisation benchmark.

**Held-out score.** The *first* reply to each held-out prompt (a fresh conversation, as in the
paper's personal-agent evaluation), ``samples`` replies per prompt at the chat temperature with
fixed seeds, scored by the scenario's program. The replies are generated on an ``Engine`` opened
from the store — so on the promoted version — and never logged: held-out turns must not become
training samples. Read twice when the preference memory holds wishes: ``note`` None gives the
*weights only* (what training taught), the memory's note placed as the chat places it gives what
the user actually gets (weights + memory in the prompt).

**Regression check (ΔNLL).** The base model's own greedy replies to a fixed set of general
prompts are computed once; after each update their mean per-token NLL is computed in torch under
the currently served weights (base + the promoted peft adapter) — the same forward the trainer
uses (``clawdesk.train.scoring.response_logprobs``). A model that forgot how to write ordinary
answers (the collapse in docs/platform.md) shows a large positive ΔNLL. It is read twice: over
whole replies, and from each reply's third token on — the reading the gate checks
(``gate_skip_opening_tokens``), because a wish about openings must move the first tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clawdesk.engine import Engine
from clawdesk.memory import Literals
from clawdesk.records import MemoryNote
from clawdesk.settings import Settings
from clawdesk.store import Store
from clawdesk.train.answers import words

from .scenarios import Prompt, Scenario

GENERAL_PROMPTS = [
    "What is the capital of France?",
    "Explain how a bicycle works.",
    "Write a short poem about the sea.",
    "What are three uses of a paperclip?",
    "How do I boil an egg?",
    "Why do cats sleep so much?",
    "Summarise the plot of Romeo and Juliet.",
    "What is 12 times 7?",
]


@dataclass
class HeldoutScore:
    score: float
    compliance: float
    answers: float  # fraction of replies that still answer
    n: int
    mean_words: float
    examples: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def score_heldout(engine: Engine, scenario: Scenario, prompts: list[Prompt], samples: int, seed: int,
                  settings: Settings, max_tokens: int, note: MemoryNote | None = None,
                  literals: Literals | None = None) -> HeldoutScore:
    """Score ``samples`` first replies per prompt (seeds fixed by prompt index and sample); with
    ``note``, the memory in the prompt as served (the same seeds, so the two readings pair up),
    and with ``literals`` the quoted opening/ending words the chat writes exactly."""
    import time

    start = time.perf_counter()
    scores, compliance, answering, lengths, examples = [], [], [], [], []
    for i, prompt in enumerate(prompts):
        messages = [{"role": "system", "content": settings.system_prompt}] if settings.system_prompt else []
        messages.append({"role": "user", "content": prompt.text})
        if note is not None:
            messages = note.apply(messages)
        for j in range(samples):
            gen = engine.generate(messages, temperature=settings.temperature, top_p=settings.top_p,
                                  top_k=settings.top_k, repeat_penalty=settings.repeat_penalty,
                                  max_tokens=max_tokens, seed=seed * 10_007 + i * 101 + j,
                                  **(literals.generate_args() if literals else {}))
            s = scenario.score(gen.text, prompt)
            scores.append(s.score)
            compliance.append(s.compliance)
            answering.append(1.0 if s.answers else 0.0)
            lengths.append(len(words(gen.text)))
            if (j == 0 and len(examples) < 3) or (not s.answers and len(examples) < 8):  # and why answers fail
                examples.append({"prompt": prompt.text, "reply": gen.text[:400], "score": s.score,
                                 "why_not": s.why_not, "failed": s.failed_rules})
    n = len(scores)
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    return HeldoutScore(mean(scores), mean(compliance), mean(answering), n, mean(lengths), examples,
                        time.perf_counter() - start)


# --- regression check ---------------------------------------------------------------------------

def base_greedy_replies(engine: Engine, max_tokens: int, prompts: list[str] = GENERAL_PROMPTS) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, greedy response ids) of the base model for each general prompt."""
    pairs = []
    for text in prompts:
        gen = engine.generate([{"role": "user", "content": text}], temperature=0.0, top_k=1, top_p=1.0,
                              repeat_penalty=1.0, max_tokens=max_tokens, seed=0)
        if gen.response_token_ids:
            pairs.append((gen.prompt_token_ids, gen.response_token_ids))
    return pairs


@dataclass
class NllCheck:
    """Mean NLL per token of the base model's general replies under some weights."""

    whole: float  # over whole replies
    rest: float  # from each reply's ``skip``-th token on: what the gate checks (``gate_skip_opening_tokens``)
    skip: int

    def minus(self, base: NllCheck | None) -> tuple[float | None, float | None]:
        """(ΔNLL whole, ΔNLL after the opening) against ``base``; (None, None) with no base."""
        return (None, None) if base is None else (self.whole - base.whole, self.rest - base.rest)


def served_nll(store: Store, model_path: str, pairs: list[tuple[list[int], list[int]]], skip: int = 0) -> NllCheck:
    """The regression check under the served weights, in torch."""
    version = store.served_version()
    return adapter_nll_check(model_path, store.get_adapter(version).path if version is not None else None, pairs, skip)


def adapter_nll(model_path: str, peft_dir: str | None, pairs: list[tuple[list[int], list[int]]]) -> float:
    """Mean per-token NLL of ``pairs``' responses under the base model (+ the peft adapter in
    ``peft_dir``, if any), in torch — the trainer's own forward."""
    return adapter_nll_check(model_path, peft_dir, pairs, 0).whole


def adapter_nll_check(model_path: str, peft_dir: str | None, pairs: list[tuple[list[int], list[int]]],
                      skip: int) -> NllCheck:
    """Both readings of the regression check from one forward per reply.

    Why two: a wish about how replies open ("greet me by name") must move the first tokens, which
    along the *base* model's replies reads as a large NLL rise; forgetting shows along the whole
    reply. The gate checks the second reading; the benchmark reports both. Both are token-weighted
    (a long reply counts for more), so they differ only in the skipped openings."""
    import torch
    from peft import PeftModel

    from clawdesk.engine.torch_model import load_model
    from clawdesk.train.gate import token_nll

    model, _ = load_model(model_path)
    if peft_dir is not None:
        model = PeftModel.from_pretrained(model, str(peft_dir))
        model.eval()
    with torch.no_grad():
        per_token = token_nll(model, pairs)
    rests = [seq[skip:] or seq for seq in per_token]
    mean = lambda seqs: sum(map(sum, seqs)) / max(1, sum(map(len, seqs)))  # noqa: E731
    return NllCheck(mean(per_token), mean(rests), skip)
