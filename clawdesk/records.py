"""The data shapes ClawDesk passes between its layers.

The store turns rows into these and back; services and UIs only see these. A shape that one
module makes and only its callers read lives next to that module instead (the gate's
``GateDecision`` in train/gate.py, the judge pass's ``JudgeReport`` in judge/pipeline.py, the
pipeline's ``PipelineReport``, ``forget``'s ``ForgetReport``, ``Engine.score``'s ``TokenScores``).
Token ids are kept exactly as the engine produced them: training must score the tokens that
were sampled, never a re-tokenisation of the text (docs/method.md §1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FEEDBACK_KINDS = ("thumbs_up", "thumbs_down", "correction", "regenerate", "stop", "exclude", "comment")
THUMBS_DOWN_REASONS = ("wrong", "too long", "too short", "bad format", "not what I asked", "unsafe", "other")


@dataclass
class Conversation:
    id: int
    name: str
    system_prompt: str = ""
    model: str = ""
    exclude: bool = False
    created_at: str = ""
    updated_at: str = ""


@dataclass
class Message:
    id: int
    conversation_id: int
    parent_id: int | None
    role: str  # system | user | assistant | tool
    content: str
    prompt_token_ids: list[int] | None = None
    response_token_ids: list[int] | None = None
    model: str = ""
    adapter_version: int | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    finish_reason: str = ""  # stop | length | cancelled
    prompt_tokens: int = 0
    response_tokens: int = 0
    ttft_ms: float | None = None
    duration_ms: float | None = None
    truncated_tokens: int = 0
    exclude: bool = False
    created_at: str = ""


@dataclass
class Feedback:
    id: int
    message_id: int
    kind: str
    reason: str = ""
    comment: str = ""
    correction: str = ""
    created_at: str = ""


@dataclass
class ModelEntry:
    """A GGUF model the user can chat with: bundled (from a manifest) or added by the user."""

    name: str
    path: str
    sha256: str = ""
    source: str = ""
    license: str = ""
    template_notes: str = ""
    hf_checkpoint: str = ""  # optional original HF checkpoint dir for training
    bundled: bool = False


@dataclass
class Generation:
    """One reply as the engine produced it, with everything needed to train on it later."""

    text: str
    prompt_token_ids: list[int]
    response_token_ids: list[int]
    finish_reason: str
    ttft_s: float
    duration_s: float
    truncated_tokens: int = 0
    sampling: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        decode = self.duration_s - self.ttft_s
        return len(self.response_token_ids) / decode if decode > 0 else 0.0


@dataclass
class Vote:
    """One raw judge vote, kept verbatim so format failures stay visible."""

    text: str
    value: int | None  # None = failed vote (no parsable \\boxed{})
    hint: str = ""


@dataclass
class Sample:
    """A judged turn, ready (or not) for training."""

    id: int
    message_id: int
    conversation_id: int
    prompt_token_ids: list[int]
    response_token_ids: list[int]
    reward: float | None
    source: str  # explicit | judge | demo
    status: str  # ready | dropped | used
    hints: list[str] = field(default_factory=list)
    votes: list[dict[str, Any]] = field(default_factory=list)
    failed_votes: int = 0
    drop_reason: str = ""
    next_state: str = ""
    prompt_messages: list[dict[str, str]] = field(default_factory=list)
    created_at: str = ""
    judge_model: str = ""  # the model that cast the votes ('' for explicit feedback and demos)


@dataclass
class TrainingRun:
    id: int
    status: str  # running | done | failed | refused | promoted
    method: str
    started_at: str = ""
    finished_at: str = ""
    n_samples: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    candidate_path: str = ""
    error: str = ""
    pid: int | None = None  # the process that ran it: a dead pid with status running = crashed


@dataclass
class AdapterVersion:
    version: int
    path: str
    parent_version: int | None = None
    run_id: int | None = None
    gguf_path: str = ""
    kind: str = "adapter"  # adapter | merged
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    promoted_at: str | None = None
    rolled_back_at: str | None = None
    trained_on_forgotten: bool = False


@dataclass
class TrainProgress:
    """One progress report from the training pass (phase: load | score | train | save)."""

    phase: str
    done: int
    total: int
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainResult:
    """What one training pass produced; the gate/promotion code consumes it."""

    run_id: int
    method: str
    backend: str
    candidate_path: str
    trained_ids: list[int] = field(default_factory=list)  # samples trained on (now status 'used')
    heldout_ids: list[int] = field(default_factory=list)  # held out for the gate (still 'ready')
    skipped_ids: list[int] = field(default_factory=list)  # ready samples this method cannot use
    parent_version: int | None = None  # the adapter version training started from
    steps: list[dict[str, Any]] = field(default_factory=list)  # per-step curves
    summary: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0


@dataclass
class NextState:
    """What followed an assistant message, found by ``clawdesk.signals`` (docs/method.md §1).

    ``feedback`` summarises explicit feedback (ratings, corrections, comments); ``text``/``role``
    are the conversational next state the judges read (the user's next message, a re-asked
    request, a comment, a tool result). ``reward`` is set only by explicit feedback; ``None``
    means the PRM judge decides."""

    kind: str  # thumbs_up | thumbs_down | correction | regenerate | reask | comment | user | tool | none
    text: str = ""
    role: str = ""  # user | tool
    reward: float | None = None
    feedback: str = ""
    hints: list[str] = field(default_factory=list)  # explicit hint candidates (always kept)
    correction: str = ""  # the newest corrected answer → a demonstration sample (docs/method.md §7.1)
    stopped: bool = False  # the user stopped the reply while it was generated

    @property
    def source(self) -> str:
        """'explicit' (feedback sets r), 'judge' (a judge reads ``text``) or 'none'."""
        if self.reward is not None:
            return "explicit"
        return "judge" if self.text else "none"

    @property
    def summary(self) -> str:
        """The text stored as a sample's ``next_state``; a change in it means "judge again"."""
        parts = [self.feedback] if self.feedback else []
        if self.text:
            parts.append(f"[{self.kind} · {self.role}] {self.text}")
        return "\n".join(parts)


@dataclass
class Judgement:
    """m votes of one judge on one turn: the majority value and every raw vote."""

    value: int  # majority of valid votes; a tie or no valid vote gives 0
    votes: list[Vote] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(v.value is None for v in self.votes)

    @property
    def valid(self) -> int:
        return len(self.votes) - self.failed


@dataclass
class VerifyCase:
    """A prompt and the greedy continuation torch + peft produced for a candidate; promotion
    checks that llama.cpp serving the exported files reproduces it."""

    prompt_ids: list[int]
    expected_ids: list[int]
    expected_logprobs: list[float] | None = None  # torch's log-prob of each expected token
    top_gaps: list[float] | None = None  # torch's top-1 minus top-2 log-prob at each position


@dataclass
class TransferReport:
    """What ``clawdesk import`` added (records already present with the same content are skipped)."""

    added: dict[str, int] = field(default_factory=dict)  # record type → rows inserted
    skipped: dict[str, int] = field(default_factory=dict)  # record type → identical rows already there
    lines: int = 0


@dataclass
class RepairReport:
    """What ``clawdesk doctor --repair`` salvaged from a damaged database."""

    original: str  # where the damaged file was kept
    recovered: dict[str, int] = field(default_factory=dict)  # table → rows copied to the new database
    lost: dict[str, int] = field(default_factory=dict)  # table → rows known to exist but unreadable/orphaned
    unreadable_tables: list[str] = field(default_factory=list)  # tables SQLite could not read at all
    integrity: str = ""  # integrity_check of the new database


@dataclass
class ServedTurn:
    """An assistant reply ``clawdesk serve`` gave, by the completion id the client knows it by."""

    completion_id: str
    message_id: int
    session_key: str
    turn_type: str  # main | side (side turns are served and logged, never trained on)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    created_at: str = ""


@dataclass
class WishSource:
    """Where a wish came from: the turn (``message_id``: the reply the feedback is on, or the
    user's own message) and, for feedback, the row (``feedback_id``), with the words quoted."""

    message_id: int | None
    feedback_id: int | None
    conversation_id: int | None
    channel: str  # correction | comment | thumbs_down | message | judge
    quote: str = ""
    created_at: str = ""


@dataclass
class Wish:
    """One entry of the preference memory ("what ClawDesk knows about you", docs/memory.md).

    ``slot`` groups wishes that replace each other (a new length wish replaces the old one);
    '' is a free-form wish. A deleted wish stays as a tombstone (``status`` 'deleted') with its
    sources, so the turns it came from never bring it back."""

    id: int
    text: str
    slot: str = ""  # length | name | opening | ending | format | language | tone | emoji | ''
    origin: str = "rule"  # rule | judge | user
    status: str = "active"  # active | deleted
    created_at: str = ""
    confirmed_at: str = ""  # the last time a turn stated it (again)
    sources: list[WishSource] = field(default_factory=list)


@dataclass(frozen=True)
class MemoryNote:
    """What the preference memory added to one reply's prompt, kept with the reply so that the
    messages the model saw can be rebuilt exactly (the judge's teacher context, docs/method.md §3).

    ``placement``: 'user' appends ``text`` to the latest user message (the default: measured in
    docs/memory.md), 'user_tag' appends it under the teacher context's hint tag, 'user_prefix'
    puts it before the message, 'system' adds it to the system prompt. How a whole conversation
    is rendered with the notes of its earlier replies: ``clawdesk.memory.prompt.render``."""

    placement: str
    text: str
    wish_ids: tuple[int, ...] = ()

    def same_words(self, other: MemoryNote | None) -> bool:
        """The same note in the prompt (which wishes it came from aside)."""
        return other is not None and (self.placement, self.text) == (other.placement, other.text)

    def decorate(self, content: str) -> str:
        """A user message's text with the note placed in it (the three user placements)."""
        if self.placement == "user_prefix":
            return f"{self.text}\n\n{content}"
        if self.placement == "user_tag":
            return f"{content}\n\n[user's hint / instruction]\n{self.text}"
        return f"{content}\n\n({self.text})"

    def apply(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        """A copy of ``messages`` with the note placed (unchanged if there is nowhere to put it)."""
        out = [dict(m) for m in messages]
        if not self.text:
            return out
        if self.placement == "system":
            if out and out[0]["role"] == "system":
                out[0]["content"] = f"{out[0]['content']}\n\n{self.text}"
            else:
                out.insert(0, {"role": "system", "content": self.text})
            return out
        for m in reversed(out):
            if m["role"] == "user":
                m["content"] = self.decorate(m["content"])
                break
        return out
