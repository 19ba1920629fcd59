"""Check that llama.cpp serves what was trained, before anything is promoted.

An export can go wrong silently: a wrong row permutation, a wrong alpha or a dropped tensor
all load and run, they just answer differently. So the promotion step asks the real serving
path — ``Engine`` with the adapter swapped in through the same llama.cpp calls the chat uses,
or the merged GGUF loaded as the model — to reproduce a continuation the trainer produced
with torch + peft (greedy tokens on a fixed prompt).

``verify_served`` scores the expected ids teacher-forced (``Engine.score``): a position passes
when llama.cpp's own top-1 token is the expected one, which is exactly "greedy decoding
reproduces the sequence". ``margin`` relaxes that to "within ``margin`` nats of llama.cpp's
top-1": torch fp32 and llama.cpp's quantised kernels differ by ~0.05 nats per token on
average (docs/platform.md), so an expectation computed in torch can flip a near-tie.
A broken export misses by many nats, not by a fraction of one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from ..engine import Engine

log = logging.getLogger(__name__)


@contextlib.contextmanager
def open_served(base_gguf: str | Path, adapter_gguf: str | Path | None = None,
                merged_gguf: str | Path | None = None, n_threads: int = 0, n_ctx: int = 1024) -> Iterator[Engine]:
    """An Engine on what would be served: base + adapter, or the merged model alone (closed on
    exit). Raises ModelNotFound / ModelCorrupt for a missing, truncated or mismatched file."""
    if adapter_gguf and merged_gguf:
        raise ValueError("serve either an adapter on the base or a merged model, not both")
    engine = Engine(merged_gguf or base_gguf, n_ctx=n_ctx, n_threads=n_threads, adapter_path=adapter_gguf)
    try:
        yield engine
    finally:
        engine.close()


def served_greedy(engine: Engine, prompt_ids: list[int], n_tokens: int) -> list[int]:
    """Greedy continuation (stops early at an end-of-turn token, which is included)."""
    gen = engine.generate(prompt_ids=list(prompt_ids), temperature=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0,
                          max_tokens=n_tokens, seed=0)
    return gen.response_token_ids


def verify_served(base_gguf: str | Path, adapter_gguf: str | Path | None, merged_gguf: str | Path | None,
                  prompt_ids: list[int], expected_ids: list[int], *, margin: float = 0.0,
                  n_threads: int = 0, expected_logprobs: list[float] | None = None,
                  top_gaps: list[float] | None = None, decisive_gap: float = 0.5,
                  max_mean_drift: float | None = None) -> bool:
    """True when the served weights would greedily produce ``expected_ids`` after ``prompt_ids``
    (each expected token within ``margin`` nats of llama.cpp's top-1).

    With torch's own numbers for the case (``top_gaps``: top-1 minus top-2 log-prob at each
    position; ``expected_logprobs``), the check is made robust to near-ties and stricter on the
    export: positions where torch itself hesitated (gap < ``decisive_gap``) may flip — measured
    on a trained candidate, a 0.17-nat tie in torch became a 0.47-nat preference the other way in
    llama.cpp, which failed a correct export — while the mean |llama.cpp − torch| log-prob of the
    expected tokens must stay under ``max_mean_drift`` (measured ~0.04 for a correct adapter on
    the bundled model; a wrong export drifts by > 0.3)."""
    if not expected_ids:
        raise ValueError("verify_served needs at least one expected token")
    with open_served(base_gguf, adapter_gguf, merged_gguf, n_threads=n_threads,
                     n_ctx=max(256, len(prompt_ids) + len(expected_ids) + 8)) as engine:
        scores = engine.score(prompt_ids, expected_ids)
    gaps = top_gaps or [float("inf")] * len(expected_ids)
    for i, (want, top, lp, top_lp, gap) in enumerate(zip(expected_ids, scores.top_ids, scores.logprobs,
                                                          scores.top_logprobs, gaps)):
        if want != top and top_lp - lp > margin and gap >= decisive_gap:
            log.warning("served model departs from the expected tokens at position %d: wants %d (%.2f nats), "
                        "picks %d (%.2f nats); torch's top-2 gap there was %.2f", i, want, lp, top, top_lp, gap)
            return False
    if expected_logprobs is not None and max_mean_drift is not None:
        drift = sum(abs(a - b) for a, b in zip(scores.logprobs, expected_logprobs)) / len(expected_ids)
        if drift > max_mean_drift:
            log.warning("served model's log-probs drift from torch's by %.3f nats/token on average (max %.3f)",
                        drift, max_mean_drift)
            return False
    return True
