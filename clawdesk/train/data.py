"""Which samples a pass trains on, which it holds out, and in what order.

- The held-out part is chosen by a seeded hash of the *message* id, so a turn and the
  demonstration built from its correction always fall on the same side (no leakage into the gate),
  and the same set of samples always splits the same way — the three ablation methods can be
  compared on exactly the same training and held-out samples.
- A batch whose rewards are mostly −1 pushes probability away from everything the model said and
  nothing toward anything (docs/platform.md: the one-sided batch collapses into short gibberish).
  ``mix_positives`` tops such a pass up with the user's earlier positively-rated turns, already
  trained on, so the RL term also has something to pull toward (docs/method.md §7.4).
- A method uses the samples it has a term for: ``rl`` those with a reward, ``opd`` those with a
  hint, ``combined`` either; demonstrations only when ``w_demo`` > 0, context-distillation samples
  (train/context.py) only when ``w_context`` > 0. The others stay 'ready'.
- A 👎 without a correction says what not to do, never what to do. Pushed down alone, its reply
  drags the small model's ordinary text down with it (a thumbs-only user: ΔNLL +0.34 to +0.40 for
  no gain, docs/choosing-defaults.md). ``guide_negatives`` scales such a sample's RL term by
  ``train_w_unguided_negative``; its reason and comment still teach as hints, and the memory they
  filled teaches through context distillation.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace

from ..records import Sample
from ..settings import Settings

METHODS = ("combined", "rl", "opd")


@dataclass(frozen=True)
class MethodWeights:
    w_rl: float
    w_opd: float
    w_demo: float
    w_context: float = 0.0


def method_weights(method: str, settings: Settings) -> MethodWeights:
    """The ablation switch: 'rl' and 'opd' zero the other term's weight."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    return MethodWeights(w_rl=settings.train_w_rl if method in ("combined", "rl") else 0.0,
                         w_opd=settings.train_w_opd if method in ("combined", "opd") else 0.0,
                         w_demo=settings.train_w_demo, w_context=settings.train_w_context)


def guide_negatives(samples: list[Sample], weight: float) -> list[Sample]:
    """Copies of ``samples`` where a −1 whose turn has no demonstration (no correction) has its
    reward scaled by ``weight`` (0: no RL term; the sample still trains if it has a hint). The
    stored samples are not changed: the scaling is the pass's, not the user's verdict."""
    if weight == 1.0:
        return list(samples)
    corrected = {s.message_id for s in samples if s.source == "demo"}
    return [replace(s, reward=s.reward * weight)
            if s.source != "demo" and (s.reward or 0) < 0 and s.message_id not in corrected else s
            for s in samples]


SILENT_NEGATIVE = ("a 👎 with no correction, reason hint or comment: nothing to learn from it while "
                   "train_w_unguided_negative = 0 (a correction or comment added later brings it back)")


def silent_negatives(guided: list[Sample]) -> list[Sample]:
    """The samples of ``guided`` (after ``guide_negatives``) that no setting of this pass can
    train: a 👎 whose RL term is off and that carries no hint. Left 'ready', they would wait
    for ever and count toward ``train_min_samples`` every night."""
    return [s for s in guided if s.source in ("explicit", "judge") and s.reward == 0 and not s.hints]


def _rank(seed: int, message_id: int) -> str:
    return hashlib.sha256(f"{seed}:{message_id}".encode()).hexdigest()


def split_heldout(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(train, held-out). round(fraction × turns) turns are held out — at least one when the
    fraction is positive and there are two turns or more — chosen by a seeded hash."""
    messages = sorted({s.message_id for s in samples}, key=lambda m: _rank(seed, m))
    n = round(fraction * len(messages))
    if fraction > 0 and n == 0 and len(messages) >= 2:
        n = 1
    held = set(messages[:n])
    return [s for s in samples if s.message_id not in held], [s for s in samples if s.message_id in held]


def skip_reason(sample: Sample, weights: MethodWeights, anchor_to_base: bool = False) -> str | None:
    """Why this method cannot train on the sample, or None if it can."""
    if not sample.response_token_ids or not sample.prompt_token_ids:
        return "no logged token ids"
    if sample.source in ("demo", "transfer"):  # transfer: a correction's edit on another reply
        return None if weights.w_demo > 0 else "demonstration with w_demo = 0"
    if sample.source == "context":
        return None if weights.w_context > 0 and sample.hints else "context sample with w_context = 0"
    has_reward = bool(sample.reward) and weights.w_rl > 0
    has_hint = bool(sample.hints) and bool(sample.prompt_messages) and weights.w_opd > 0
    anchored = anchor_to_base and bool(sample.reward) and weights.w_opd > 0
    if has_reward or has_hint or anchored:
        return None
    return "no term for this method (no reward / no usable hint)"


def epoch_batches(items: list, batch_size: int, epochs: int, seed: int) -> list[list]:
    """Shuffled batches, a fresh seeded order each epoch; the last batch of an epoch may be short."""
    rng = random.Random(seed)
    out = []
    for _ in range(max(1, epochs)):
        order = list(items)
        rng.shuffle(order)
        out += [order[i:i + batch_size] for i in range(0, len(order), max(1, batch_size))]
    return out


def mix_positives(train: list[Sample], earlier: list[Sample], limit: int, exclude_messages: set[int]) -> list[Sample]:
    """Up to ``limit`` earlier positively-rated turns (newest first) so that the pass has at least
    as many +1 as −1 rewards. Demonstrations do not count: they have no RL term. Turns whose
    message is held out (``exclude_messages``) or already in ``train`` are never added."""
    if limit <= 0:
        return []
    rewarded = [s for s in train if s.source != "demo" and s.reward]
    negatives = sum(1 for s in rewarded if s.reward < 0)
    positives = sum(1 for s in rewarded if s.reward > 0)
    need = min(limit, negatives - positives)
    if need <= 0:
        return []
    taken = {s.message_id for s in train} | exclude_messages
    candidates = [s for s in reversed(earlier)
                  if s.source != "demo" and (s.reward or 0) > 0 and s.message_id not in taken
                  and s.response_token_ids and s.prompt_token_ids]
    return candidates[:need]
