"""Judge: m sampled votes of a local model on one (request, response, next state).

Each vote is an independent sample at the judge temperature (0.6); the reward is the majority of
the valid votes (docs/method.md §2) and the hints are the +1 votes' hints (docs/method.md §3). Every raw
vote is returned, failed ones included, so the caller can store and count them.
"""

from __future__ import annotations

import random
from functools import cached_property
from typing import Any

from ..engine import Engine
from ..records import Judgement, Vote
from ..settings import Settings
from . import prompts
from .parse import majority, parse_boxed, parse_hint

# A hint vote writes a reasoning line *and* a hint, so it gets this many tokens more than a
# reward vote (the grammar bounds both to well below the sum).
HINT_EXTRA_TOKENS = 96


class Judge:
    def __init__(self, engine: Engine, votes: int = 3, temperature: float = 0.6, max_tokens: int = 160,
                 grammar: bool = True, seed: int | None = None) -> None:
        self.engine = engine
        self.votes = max(1, votes)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.use_grammar = grammar
        # Fixed seeds make a benchmark repeatable; None = fresh randomness for every vote.
        self._rng = random.Random(seed) if seed is not None else None

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings, **overrides: Any) -> "Judge":
        kw = dict(votes=settings.judge_votes, temperature=settings.judge_temperature,
                  max_tokens=settings.judge_max_tokens, grammar=settings.judge_grammar,
                  seed=settings.judge_seed)
        kw.update(overrides)
        return cls(engine, **kw)

    @property
    def model_name(self) -> str:
        return self.engine.model_name or self.engine.model_path

    @cached_property
    def _grammars(self) -> tuple[Any, Any]:
        from llama_cpp import LlamaGrammar

        return (LlamaGrammar.from_string(prompts.PRM_GRAMMAR, verbose=False),
                LlamaGrammar.from_string(prompts.HINT_GRAMMAR, verbose=False))

    def reward(self, request: str, response: str, next_state: str, role: str = "user") -> Judgement:
        """m PRM votes → the majority value (a tie or no valid vote gives 0)."""
        messages = prompts.prm_messages(request, response, next_state, role)
        grammar = self._grammars[0] if self.use_grammar else None
        votes = [Vote(text, parse_boxed(text)) for text in self._sample(messages, grammar, self.max_tokens)]
        return Judgement(majority([v.value for v in votes]), votes)

    def hints(self, request: str, response: str, next_state: str, role: str = "user") -> Judgement:
        """m hint votes; ``value`` is their majority, each +1 vote carries its hint text."""
        messages = prompts.hint_messages(request, response, next_state, role)
        grammar = self._grammars[1] if self.use_grammar else None
        votes = []
        for text in self._sample(messages, grammar, self.max_tokens + HINT_EXTRA_TOKENS):
            value = parse_boxed(text, allowed=(-1, 1))
            votes.append(Vote(text, value, parse_hint(text) if value == 1 else ""))
        return Judgement(majority([v.value for v in votes]), votes)

    def _sample(self, messages: list[dict[str, str]], grammar: Any, max_tokens: int) -> list[str]:
        out = []
        prompt_ids = None
        for _ in range(self.votes):
            seed = self._rng.randrange(2**31) if self._rng else -1
            if prompt_ids is None:
                # Render once: every vote shares the prompt (llama.cpp reuses its KV cache).
                prompt_ids, _ = self.engine.fit(messages, reserve=max_tokens)
            # Temperature sampling with no nucleus cut and no repeat penalty, as the reference
            # judge samples. top_k 40 instead of "all": at T=0.6 the tokens beyond the top 40 carry
            # negligible mass, and sorting the full 49k vocabulary every step made votes ~4x slower.
            gen = self.engine.generate(prompt_ids=prompt_ids, temperature=self.temperature, top_p=1.0, top_k=40,
                                       repeat_penalty=1.0, max_tokens=max_tokens, seed=seed, grammar=grammar)
            out.append(gen.text)
        return out
