"""A simulated user who talks to ClawDesk the way a person does, through the TUI's own code path
(``ChatService``: every turn logged with its token ids, feedback written as rows).

For each reply the user reads it with the scenario's program (no model) and reacts:

- **satisfied** (it follows the wish and answers): thumbs up (``thumbs_up_fraction`` of the
  time) or simply moves on — the next prompt in the same conversation, which the judge reads as
  progress;
- **not satisfied**, chosen by ``explicit_fraction``:
  - *explicit*: thumbs down with the scenario's reason, plus (``correction_fraction`` of the
    time) a correction written by rule (the reply truncated / stripped of Markdown / greeted,
    checked to still answer); when no correction can be written (the reply does not answer and
    there is no reference answer), a thumbs down with the complaint as comment. A user who only
    ever presses thumbs is ``explicit_fraction=1, correction_fraction=0``: the reason chip and
    nothing else;
  - *implicit*: a follow-up message that complains and re-asks ("No lists please, just tell me
    in plain words: <the question>"), so the judge path (PRM + hints) is exercised. The reply to
    the re-ask is read the same way, but re-asked at most once.

Conversations hold ``prompts_per_conversation`` prompts, then the user starts a new one (small
contexts keep the 2-core benchmark fast). Every random choice and every sampling seed comes from
``seed``, so a run is repeatable.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from itertools import cycle
from typing import Any

from clawdesk.chat import ChatService

from .scenarios import Prompt, Scenario


@dataclass
class UserPolicy:
    explicit_fraction: float = 0.5  # of unsatisfied replies: thumbs down + correction (else a complaint)
    thumbs_up_fraction: float = 0.5  # of satisfied replies: thumbs up (else just move on)
    correction_fraction: float = 1.0  # of explicit thumbs down: also write a correction (else the reason only)
    prompts_per_conversation: int = 3
    max_tokens: int = 256
    temperature: float | None = None  # None = the chat setting


@dataclass
class SessionStats:
    turns: int = 0  # assistant replies produced
    satisfied: int = 0
    thumbs_up: int = 0
    moved_on: int = 0  # satisfied and followed by the next prompt (implicit +)
    thumbs_down: int = 0
    corrections: int = 0
    complaints: int = 0  # implicit: complaint + re-ask
    conversations: int = 0
    scores: list[float] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)  # a few (prompt, reply, reaction)

    @property
    def feedback_turns(self) -> int:
        """Turns that carry a next state: explicit feedback, a complaint, or a next prompt."""
        return self.thumbs_up + self.thumbs_down + self.complaints + self.moved_on

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["feedback_turns"] = self.feedback_turns
        d["mean_score"] = sum(self.scores) / len(self.scores) if self.scores else None
        return d


class SimulatedUser:
    def __init__(self, chat: ChatService, scenario: Scenario, policy: UserPolicy, seed: int) -> None:
        self.chat, self.scenario, self.policy = chat, scenario, policy
        self.rng = random.Random(f"{scenario.name}:{seed}")
        self.seed = seed
        self._prompts = cycle(scenario.train)
        self._skip = self.rng.randrange(len(scenario.train))  # each seed starts elsewhere in the pool
        for _ in range(self._skip):
            next(self._prompts)
        self._conversation: int | None = None
        self._in_conversation = 0
        self._pending_move_on = False  # the previous reply was fine: the next prompt rewards it
        self._turn_seed = 0

    def session(self, n_turns: int, stats: SessionStats | None = None) -> SessionStats:
        """Produce ``n_turns`` assistant replies and react to each one."""
        stats = stats or SessionStats()
        target = stats.turns + n_turns
        while stats.turns < target:
            prompt = next(self._prompts)
            if self._conversation is None or self._in_conversation >= self.policy.prompts_per_conversation:
                self._new_conversation(stats)
            if self._pending_move_on:
                stats.moved_on += 1  # the reply before gets its next state now
                self._pending_move_on = False
            self._in_conversation += 1
            self._ask(prompt, prompt.text, stats, may_reask=True, target=target)
        return stats

    def _new_conversation(self, stats: SessionStats) -> None:
        self._conversation = self.chat.new_conversation(name=f"bench {self.scenario.name}").id
        self._in_conversation = 0
        self._pending_move_on = False  # a new conversation: the last reply stays without a next state
        stats.conversations += 1

    def _send(self, text: str):
        self._turn_seed += 1
        sampling: dict[str, Any] = {"seed": self.seed * 100_003 + self._turn_seed, "max_tokens": self.policy.max_tokens}
        if self.policy.temperature is not None:
            sampling["temperature"] = self.policy.temperature
        assert self._conversation is not None
        return self.chat.send(self._conversation, text, **sampling)

    def _ask(self, prompt: Prompt, text: str, stats: SessionStats, may_reask: bool, target: int) -> None:
        turn = self._send(text)
        reply = turn.assistant.content
        score = self.scenario.score(reply, prompt)
        stats.turns += 1
        stats.scores.append(score.score)
        if score.score == 1.0:
            stats.satisfied += 1
            if self.rng.random() < self.policy.thumbs_up_fraction:
                self.chat.thumbs_up(turn.assistant.id)
                stats.thumbs_up += 1
                reaction = "thumbs up"
            else:
                self._pending_move_on = True
                reaction = "moves on"
        elif may_reask and stats.turns < target and self.rng.random() >= self.policy.explicit_fraction:
            complaint = self.rng.choice(self.scenario.complaints)
            stats.complaints += 1
            self._note(stats, prompt, reply, score, f"complains: {complaint}")
            self._ask(prompt, f"{complaint} {prompt.text}", stats, may_reask=False, target=target)
            return
        elif self.rng.random() >= self.policy.correction_fraction:
            self.chat.thumbs_down(turn.assistant.id, reason=self.scenario.thumbs_down_reason)
            stats.thumbs_down += 1
            reaction = "thumbs down"
        else:
            corrected = self.scenario.correct(reply, prompt)
            if corrected is not None:
                fb = self.chat.thumbs_down(turn.assistant.id, reason=self.scenario.thumbs_down_reason)
                self.chat.correct(turn.assistant.id, corrected)
                stats.corrections += 1
                reaction = f"thumbs down ({fb.reason}) + correction"
            else:
                self.chat.thumbs_down(turn.assistant.id, reason=self.scenario.thumbs_down_reason,
                                      comment=self.rng.choice(self.scenario.complaints))
                reaction = "thumbs down + comment"
            stats.thumbs_down += 1
        self._note(stats, prompt, reply, score, reaction)

    def _note(self, stats: SessionStats, prompt: Prompt, reply: str, score: Any, reaction: str) -> None:
        if len(stats.examples) < 6:
            stats.examples.append({"prompt": prompt.text, "reply": reply[:400], "score": score.score,
                                   "compliance": score.compliance, "why_not": score.why_not,
                                   "reaction": reaction})
