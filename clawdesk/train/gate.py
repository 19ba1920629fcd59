"""The promotion gate: a candidate adapter is served only if it is better where it was trained to
be better and no worse elsewhere.

Three checks, all computed in torch on the trainer's base weights — fp32 on the CPU; on CUDA the
trainer's own NF4 or bf16 load, on the GPU (``backend.gate_backend``) — never with llama.cpp
numbers (docs/method.md):

1. **Objective.** The training objective (the same loss function as the pass) on the held-out
   samples, scored under the served weights as π_old, compared sample by sample between the
   candidate and the served adapter (for which every ratio is 1). The candidate is refused when
   it is worse by more than ``gate_objective_noise`` standard errors of those paired differences:
   a night's 5–8 held-out samples are noisy, and a "must be lower" rule refused candidates over
   differences of 0.003 (measured in bench/personalize.py; docs/benchmarks.md). With no held-out samples — a
   handful of feedback turns — the check falls back to the trained samples and says
   "in-sample"; with fewer than ``gate_min_heldout`` samples a worse objective is reported but
   does not refuse (measured: one held-out sample refused a candidate that improved every other
   number).
2. **Your good answers.** The mean per-token NLL of the user's positively-rated answers (thumbs
   up, judge +1) may not rise by more than ``gate_positive_margin``.
3. **Everything else.** On a fixed set of general prompts: KL(served ‖ candidate) per token along
   the base model's own greedy replies stays under ``gate_max_kl``; the NLL of those replies
   (after their first ``gate_skip_opening_tokens`` tokens, where a wish about openings lives)
   may not rise more than ``gate_max_nll_increase`` above the base model's; and the candidate's own
   greedy replies must still answer (real words, not looping, on topic) at
   ``gate_min_answer_rate`` — or at the base model's own rate where that is lower (the base
   itself loops on some of these prompts). By default that is 1.0: never fewer than the base. The
   last two are what catches the collapse the platform notes describe (every reward −1 → short
   gibberish that "complies"); the rate's old 0.75 let through candidates that had lost one of the
   base's answers, and such candidates went on to lose answers as served (docs/choosing-defaults.md).

4. **Your prompts, as you are served.** On the user's own latest prompts (``gate_own_prompts``),
   with the preference memory's note placed as the chat places it, the candidate's greedy replies
   — and ``gate_own_samples`` more drawn as the chat draws them, from the same seeds for both
   sides (0 by default: measured, it changed no decision) — may not answer fewer of them than the
   served version's. The memory and the weights push the
   same way (a 👎 "too long" becomes both a note and a hint), and together they can overshoot into
   replies too short to answer — which the general prompts, without the note, do not show
   (measured with a thumbs-only user: docs/choosing-defaults.md).

The gate also returns a few (prompt, greedy tokens) pairs from torch + peft so the promotion
step can check that llama.cpp serves the same model.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import catalog
from ..engine.shape import APART_GLUE, greeted, stands_apart
from ..errors import StoreError, TrainingError
from ..records import TrainResult, VerifyCase
from ..settings import Settings
from ..store import Store
from .answers import answers

GENERAL_PROMPTS = (
    "What is the capital of France?",
    "Explain why the sky is blue.",
    "Give me a tip for sleeping better.",
    "How do I boil an egg?",
    "What is photosynthesis?",
    "Why do we have seasons on Earth?",
    "What does a computer's CPU do?",
    "How can I save money on groceries?",
)
REPLY_TOKENS = 48
ANSWER_MIN_WORDS = 3  # a general prompt's 48-token reply; "Paris is the capital." must still count


@dataclass
class GateDecision:
    """Why a candidate adapter was promoted or refused, with the numbers (stored with the run)."""

    accepted: bool
    reasons: list[str] = field(default_factory=list)  # one line per check, pass or fail
    objective_served: float | None = None  # held-out training objective, lower is better
    objective_candidate: float | None = None
    objective_se: float | None = None  # standard error of the paired per-sample differences
    objective_on: str = "held-out"  # held-out | in-sample (when nothing was held out)
    positive_nll_served: float | None = None  # mean NLL/token of positively-rated answers
    positive_nll_candidate: float | None = None
    n_heldout: int = 0
    n_positive: int = 0
    kl_general: float | None = None  # mean KL(served ‖ candidate) per token on general prompts
    general_nll_base: float | None = None  # NLL/token of the base model's general replies...
    general_nll_candidate: float | None = None  # ...under the candidate
    answer_rate_candidate: float | None = None
    answer_rate_base: float | None = None  # the base model's own rate: the floor when it is below the setting
    own_answered_served: int | None = None  # check 4: of the user's own prompts, with the memory as served
    own_answered_candidate: int | None = None
    n_own: int = 0  # check 4's prompts
    own_replies: int = 0  # check 4's replies per side: each prompt's greedy one and gate_own_samples sampled
    candidate_replies: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class ObjectiveVerdict:
    """The gate's held-out objective check: candidate vs served, sample by sample."""

    ok: bool
    served: float  # mean objective, lower is better
    candidate: float
    se: float  # standard error of the paired differences (inf with one sample)
    text: str


def still_answers(prompt: str, reply: str, set_aside: tuple[str, ...] = ()) -> bool:
    """The candidate's reply to a general prompt still answers it: the benchmarks' check
    (``answers.answers``), which also refuses a reply made of non-words. ``set_aside``: words the
    engine wrote (a quoted opening), which are not the model's answer."""
    return answers(reply, prompt, set_aside=set_aside, min_words=ANSWER_MIN_WORDS).ok


def answer_rate(replies: list[str], prompts: tuple[str, ...] = GENERAL_PROMPTS) -> float:
    """The fraction of general prompts whose reply still answers (``gate_min_answer_rate``'s reading)."""
    return sum(still_answers(p, r) for p, r in zip(prompts, replies)) / len(replies)


def after_opening(token_nll: list[float], skip: int) -> float:
    """Mean NLL per token of one reply from its ``skip``-th token on (all of it when it is shorter).

    Why: a wish about how replies open ("greet me by name") has to move the first tokens, and
    along the *base* model's replies that reads as a large NLL rise — measured on the greet
    scenario, a candidate scoring 0.92 had +0.267 nats/token over whole replies and +0.042 from
    the third token on (docs/benchmarks.md, multi-update run). Collapse and forgetting show along the
    whole reply, so skipping two tokens costs the check nothing it is there for."""
    rest = token_nll[max(skip, 0):] or token_nll
    return sum(rest) / len(rest) if rest else 0.0


def token_nll(model: Any, pairs: list[tuple[list[int], list[int]]]) -> list[list[float]]:
    """NLL of each response token given its prompt and the tokens before it (also the
    personalisation benchmark's regression check, so bench and gate measure the same thing)."""
    import torch

    from .scoring import response_logprobs

    out = []
    for prompt, response in pairs:
        logp = response_logprobs(model, [(prompt, response)])[0]  # [T, V], on the model's device
        out.append((-logp.gather(-1, torch.tensor(response, device=logp.device)[:, None]).squeeze(-1)).tolist())
    return out


def _nll(model: Any, pairs: list[tuple[list[int], list[int]]], skip: int = 0) -> list[float]:
    """Mean NLL per token of each response given its prompt (from its ``skip``-th token on)."""
    return [after_opening(seq, skip) for seq in token_nll(model, pairs)]


def _opening(settings: Settings) -> str:
    n = settings.gate_skip_opening_tokens
    return f" (after each reply's first {n} tokens)" if n else ""


def greedy(model: Any, prompt_ids: list[int], n: int, eos: set[int]) -> list[int]:
    return _generate(model, prompt_ids, n, eos, do_sample=False)


def sampled(model: Any, prompt_ids: list[int], n: int, eos: set[int], settings: Settings, seed: int) -> list[int]:
    """One reply drawn with the chat's sampling settings, from ``seed``: check 4 draws the served
    version's and the candidate's replies from the same seeds, so their difference is the weights'."""
    import torch

    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # the caller's RNG untouched
        torch.manual_seed(seed)
        return _generate(model, prompt_ids, n, eos, do_sample=True, temperature=max(settings.temperature, 1e-3),
                         top_p=settings.top_p, top_k=settings.top_k, repetition_penalty=settings.repeat_penalty)


def _generate(model: Any, prompt_ids: list[int], n: int, eos: set[int], **sampling: Any) -> list[int]:
    """Up to ``n`` new tokens after ``prompt_ids``, cut after the first end-of-turn token."""
    import torch

    ids = torch.tensor([prompt_ids], device=next(model.parameters()).device)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, use_cache=True,
                         pad_token_id=min(eos), **sampling)
    new = out[0, len(prompt_ids):].tolist()
    for i, t in enumerate(new):
        if t in eos:
            return new[: i + 1]
    return new


def own_replies(model: Any, prompt_ids: list[int], eos: set[int], settings: Settings, draws: int,
                seed: int) -> list[list[int]]:
    """Check 4's replies to one prompt: the greedy one, and ``draws`` sampled as the chat samples.

    Why sampled too: the chat samples (temperature 0.7), and a candidate can answer greedily while
    its sampled replies, with the memory's note, overshoot — seen with a thumbs-only brief user
    whose greedy replies answered 7 of 8 while a quarter of the served replies were "The answer
    is:" or talk about being concise. Two draws per prompt did not change that decision, nor any
    other of six, so ``gate_own_samples`` is 0 by default (docs/choosing-defaults.md, session 19)."""
    return [greedy(model, prompt_ids, REPLY_TOKENS, eos),
            *(sampled(model, prompt_ids, REPLY_TOKENS, eos, settings, seed=1000 * seed + k) for k in range(draws))]


def as_served(opening: str, reply: str) -> str:
    """The reply as the engine serves it: a greeting written apart goes first, unless the model
    already opened with it (``shape.greeted``: kept as written, or the opening in its place)."""
    if not (opening and stands_apart(opening)):
        return opening + reply
    return greeted(reply, opening.rstrip(), APART_GLUE)


def own_prompts(store: Store, settings: Settings, result: TrainResult, tokenizer: Any) -> tuple[str, list[tuple[str, list[int]]]]:
    """Check 4's prompts: the user's latest distinct questions among the pass's samples, each as
    one turn with the memory placed as served — the note in the message and, when the memory
    quotes an opening, those words already written at the start of the reply (the engine writes
    them there; a candidate that chats on after "Hi Sam!" instead of answering fails only with
    them, session 16) — unless they are a sentence of their own, which the engine writes apart from
    the reply (``stands_apart``). Returns the opening as the reply shows it ("Hi Sam! " when
    apart) and the (text, prompt ids) pairs."""
    from ..memory import Memory
    from .scoring import render_prompt

    if settings.gate_own_prompts <= 0:
        return "", []
    memory = Memory(store, settings)
    note, opening = memory.note(), memory.literals().opening
    # a greeting the engine writes apart from the reply is not in the reply's context (engine/shape.py)
    head = tokenizer.encode(opening, add_special_tokens=False) if opening and not stands_apart(opening) else []
    texts: list[str] = []
    for sample_id in sorted(result.trained_ids + result.heldout_ids, reverse=True):
        try:
            parent = store.get_message(store.get_sample(sample_id).message_id).parent_id
            text = store.get_message(parent).content if parent is not None else ""
        except StoreError:
            continue
        if text.strip() and text not in texts:
            texts.append(text)
        if len(texts) >= settings.gate_own_prompts:
            break
    out = []
    for text in texts:
        messages = [{"role": "system", "content": settings.system_prompt}] if settings.system_prompt else []
        messages.append({"role": "user", "content": text})
        out.append((text, render_prompt(tokenizer, note.apply(messages) if note is not None else messages) + head))
    return (opening + APART_GLUE if opening and not head else opening), out


def verify_case(model: Any, prompt: list[int], reply: list[int]) -> VerifyCase:
    """The candidate's greedy tokens with torch's log-probs and top-2 gaps (call with the
    candidate adapter active): what the promotion check compares llama.cpp against."""
    import torch

    from .scoring import response_logprobs

    logp = response_logprobs(model, [(prompt, reply)])[0]  # [T, V]
    top2 = logp.topk(2, dim=-1).values
    chosen = logp.gather(-1, torch.tensor(reply, device=logp.device)[:, None]).squeeze(-1)
    return VerifyCase(prompt, reply, expected_logprobs=[float(x) for x in chosen],
                      top_gaps=[float(x) for x in top2[:, 0] - top2[:, 1]])


def verify_cases(model: Any, prompts: list[list[int]], replies: list[list[int]]) -> list[VerifyCase]:
    """What promotion asks llama.cpp to reproduce (export/verify.py): the first two general
    prompts' greedy replies, 16 tokens each, with the log-probs torch + peft gave them. The gate
    and ``adapters import`` check a candidate the same way."""
    return [verify_case(model, p, r[:16]) for p, r in list(zip(prompts, replies))[:2] if r]


def _kl(model: Any, use: Callable[[str | None], Any], pairs: list[tuple[list[int], list[int]]]) -> float:
    """Mean per-token KL(served ‖ candidate), full vocabulary, along the given replies."""
    from .scoring import response_logprobs

    total, count = 0.0, 0
    for prompt, response in pairs:
        with use("served"):
            p = response_logprobs(model, [(prompt, response)])[0]
        with use("candidate"):
            q = response_logprobs(model, [(prompt, response)])[0]
        kl = (p.exp() * (p - q)).sum(-1)  # [T]
        total += float(kl.sum())
        count += kl.numel()
    return total / max(1, count)


def objective_verdict(served: list[float], candidate: list[float], settings: Settings) -> ObjectiveVerdict:
    """Refuse only a candidate that is measurably worse on the held-out objective.

    d_i = candidate_i − served_i over the same samples; the candidate passes when
    mean(d) < −gate_objective_margin + gate_objective_noise · se(d). With gate_objective_noise 0
    this is the strict "must be lower" rule."""
    n = len(served)
    diffs = [c - s for c, s in zip(candidate, served)]
    mean_d = sum(diffs) / n
    se = statistics.stdev(diffs) / math.sqrt(n) if n > 1 else math.inf
    allowed = -settings.gate_objective_margin + settings.gate_objective_noise * se
    ok = mean_d < allowed
    served_mean, cand_mean = sum(served) / n, sum(candidate) / n
    text = (f"candidate {cand_mean:+.4f} vs served {served_mean:+.4f} (Δ {mean_d:+.4f} ± {se:.4f} s.e.; "
            f"refused when Δ ≥ {allowed:+.4f})")
    if not ok and n < settings.gate_min_heldout:
        ok, text = True, text + f" — too few samples to decide (< gate_min_heldout={settings.gate_min_heldout}); advisory"
    return ObjectiveVerdict(ok, served_mean, cand_mean, se, text)


def gate(store: Store, settings: Settings, result: TrainResult,
         progress: Callable[[str], None] | None = None) -> tuple[GateDecision, list[VerifyCase]]:
    """Decide whether ``result``'s candidate may be served (see the module docstring)."""
    import torch
    from peft import PeftModel

    from .backend import base_weights_dir, gate_backend, load_base

    say = progress or (lambda _m: None)
    start = time.perf_counter()
    entry = catalog.current_model(store, settings)
    base, tokenizer = load_base(base_weights_dir(entry), gate_backend(settings.train_backend))
    base.eval()
    served_dir = store.get_adapter(result.parent_version).path if result.parent_version is not None else None
    # One model, named adapters: "candidate" always; "served" when a version is served, else the
    # base weights (adapter disabled) play the served role.
    model = PeftModel.from_pretrained(base, result.candidate_path, adapter_name="candidate")
    if served_dir:
        model.load_adapter(served_dir, adapter_name="served")
    model.eval()

    @contextlib.contextmanager
    def use(name: str | None):
        if name is None or (name == "served" and not served_dir):
            with model.disable_adapter():
                yield
        else:
            model.set_adapter(name)
            yield

    from .teacher import load_teacher, release

    decision = GateDecision(accepted=False)
    checks: list[tuple[bool, str]] = []
    teacher = load_teacher(store, settings, tokenizer)  # the objective is scored as the pass scored it
    old_threads = torch.get_num_threads()
    if settings.train_threads:
        torch.set_num_threads(settings.train_threads)
    try:
        decision, cases = _checks(model, tokenizer, use, store, settings, result, decision, checks, say, teacher)
    finally:
        torch.set_num_threads(old_threads)
        release(teacher)
    decision.accepted = all(ok for ok, _ in checks)
    decision.reasons = [("pass  " if ok else "FAIL  ") + text for ok, text in checks]
    decision.seconds = round(time.perf_counter() - start, 2)
    return decision, cases


def _checks(model: Any, tokenizer: Any, use: Any, store: Store, settings: Settings, result: TrainResult,
            decision: GateDecision, checks: list[tuple[bool, str]],
            say: Callable[[str], None], teacher: Any = None) -> tuple[GateDecision, list[VerifyCase]]:
    import torch

    from .data import method_weights, skip_reason
    from .scoring import end_of_turn_ids, render_prompt
    from .step import loss_config, sample_losses, score_config, score_samples
    from .student_context import served_ids, served_messages

    with torch.no_grad():
        # 1. the objective, held out (or in-sample when nothing was held out)
        say("gate: objective on held-out samples")
        method = result.method
        weights = method_weights(method, settings)
        ids = result.heldout_ids or result.trained_ids
        decision.objective_on = "held-out" if result.heldout_ids else "in-sample"
        samples = [s for s in (store.get_sample(i) for i in ids)
                   if skip_reason(s, weights, settings.train_anchor_to_base) is None]
        if settings.train_student_context == "served":  # judged in the prompts the pass trained in
            samples = served_ids(tokenizer, served_messages(store, settings, samples))
        decision.n_heldout = len(samples)
        if samples:
            cfg = loss_config(settings, method)
            score_cfg = score_config(settings, weights, next(model.parameters()).device.type)  # the trainer's
            with use("served"):
                scored = score_samples(model, tokenizer, samples, score_cfg, store, teacher_model=teacher)
                served = sample_losses(model, scored, cfg)
            with use("candidate"):
                cand = sample_losses(model, scored, cfg)
            verdict = objective_verdict(served, cand, settings)
            decision.objective_served, decision.objective_candidate = round(verdict.served, 5), round(verdict.candidate, 5)
            decision.objective_se = None if math.isinf(verdict.se) else round(verdict.se, 5)
            checks.append((verdict.ok, f"objective ({decision.objective_on}, {len(samples)} samples): {verdict.text}"))
        else:
            checks.append((False, "objective: no samples to evaluate"))

        # 2. the user's positively-rated answers
        say("gate: your positively-rated answers")
        positives = [s for s in store.samples() if (s.reward or 0) > 0 and s.source != "demo"][-32:]
        if settings.train_student_context == "served":
            positives = served_ids(tokenizer, served_messages(store, settings, positives))
        decision.n_positive = len(positives)
        if positives:
            pairs = [(s.prompt_token_ids[-settings.train_context_tokens:], s.response_token_ids) for s in positives]
            with use("served"):
                served_nll = sum(_nll(model, pairs)) / len(pairs)
            with use("candidate"):
                cand_nll = sum(_nll(model, pairs)) / len(pairs)
            decision.positive_nll_served, decision.positive_nll_candidate = round(served_nll, 4), round(cand_nll, 4)
            ok = cand_nll - served_nll <= settings.gate_positive_margin
            checks.append((ok, f"positively-rated answers ({len(pairs)}): NLL {served_nll:.3f} → {cand_nll:.3f} "
                               f"(allowed +{settings.gate_positive_margin})"))
        else:
            checks.append((True, "positively-rated answers: none yet"))

        # 3. general prompts: KL, regression NLL, still answering
        say("gate: general prompts")
        eos = end_of_turn_ids(tokenizer)
        prompts = [render_prompt(tokenizer, [{"role": "user", "content": p}]) for p in GENERAL_PROMPTS]
        with use(None):
            base_replies = [greedy(model, p, REPLY_TOKENS, eos) for p in prompts]
            base_nll = _nll(model, list(zip(prompts, base_replies)), settings.gate_skip_opening_tokens)
        pairs = list(zip(prompts, base_replies))
        decision.kl_general = round(_kl(model, use, pairs), 5)
        with use("candidate"):
            cand_nll_general = _nll(model, pairs, settings.gate_skip_opening_tokens)
            cand_replies = [greedy(model, p, REPLY_TOKENS, eos) for p in prompts]
        decision.general_nll_base = round(sum(base_nll) / len(base_nll), 4)
        decision.general_nll_candidate = round(sum(cand_nll_general) / len(cand_nll_general), 4)
        texts = [tokenizer.decode(r, skip_special_tokens=True) for r in cand_replies]
        decision.candidate_replies = texts
        decision.answer_rate_candidate = answer_rate(texts)
        # The 135M base itself loops on some general prompts (greedy, 48 tokens), so a fixed floor
        # could refuse every candidate; the floor is the setting or the base's own rate, if lower.
        decision.answer_rate_base = answer_rate([tokenizer.decode(r, skip_special_tokens=True) for r in base_replies])
        floor = min(settings.gate_min_answer_rate, decision.answer_rate_base)
        rise = decision.general_nll_candidate - decision.general_nll_base
        checks.append((decision.kl_general <= settings.gate_max_kl,
                       f"KL to served on general prompts: {decision.kl_general:.4f} (max {settings.gate_max_kl})"))
        checks.append((rise <= settings.gate_max_nll_increase,
                       f"general NLL vs base{_opening(settings)}: {decision.general_nll_base:.3f} → {decision.general_nll_candidate:.3f} "
                       f"({rise:+.3f}, max +{settings.gate_max_nll_increase})"))
        checks.append((decision.answer_rate_candidate >= floor,
                       f"still answers general prompts: {decision.answer_rate_candidate:.2f} "
                       f"(min {floor:.2f}: {settings.gate_min_answer_rate}, or the base's {decision.answer_rate_base:.2f} if lower)"))
        # 4. the user's own prompts, with the memory as served
        opening, own = own_prompts(store, settings, result, tokenizer)
        decision.n_own = len(own)
        if own:
            say("gate: your prompts, as served")
            answered = {}
            aside = (opening.strip(),) if opening else ()
            draws = settings.gate_own_samples if settings.temperature > 0 else 0
            for name in ("served", "candidate"):
                with use(name):
                    answered[name] = sum(still_answers(text, as_served(opening, tokenizer.decode(reply, skip_special_tokens=True)), aside)
                                         for i, (text, ids) in enumerate(own)
                                         for reply in own_replies(model, ids, eos, settings, draws, seed=i))
            decision.own_answered_served, decision.own_answered_candidate = answered["served"], answered["candidate"]
            decision.own_replies = len(own) * (1 + draws)
            how = f"greedy + {draws} sampled each" if draws else "greedy"
            checks.append((answered["candidate"] >= answered["served"],
                           f"answers your latest prompts, memory as served ({len(own)}, {how}): "
                           f"{answered['candidate']}/{decision.own_replies} (served now: {answered['served']}/{decision.own_replies})"))
        with use("candidate"):
            cases = verify_cases(model, prompts, cand_replies)
    if not cases:
        raise TrainingError("The candidate produces no tokens at all on general prompts; it is not servable.")
    return decision, cases
