"""Context distillation: the preference memory, distilled into the weights overnight.

Why: the memory (docs/memory.md) makes a wish count from the next reply, but only while it sits in
the prompt, and a short model follows a wish in its prompt only partly. Distilling the profile
into the weights makes the served model behave as if the note were there — and better still with
it there. The recipe is on-policy context distillation (arXiv 2602.12275; the reference
repository's ``oel`` module, Online Experiential Learning, arXiv 2603.16856), in the terms of
docs/method.md §3:

- **student**: the served weights on the user's own logged prompts *without* the memory note;
- **replies**: the student's own, sampled now by llama.cpp from the served version at the chat
  temperature with a fixed seed per prompt — on-policy, as OPD wants;
- **teacher**: the same weights with the whole profile in the prompt, placed as it is served
  (``memory_placement``; ``memory.render`` decides which user messages carry it), scoring the
  same reply tokens. A wish the engine holds every reply to (plain text, a number of words) is
  not in the served note, so it is not in the teacher's either: the logged replies already keep it;
- **loss**: top-k OPD (train/loss.py), weighted ``train_w_context`` and logged as its own part.

Every logged prompt counts, not only rated ones — the memory says what the user wants of every
reply — up to ``train_context_prompts``, most recent first; a user message answered twice
(regenerated) counts once. Excluded replies and conversations (side turns are excluded
conversations) never count. The prompt token ids are those llama.cpp rendered for the sampled
reply, never re-tokenised text (docs/method.md §1).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ..engine import Engine
from ..memory import Memory, render
from ..records import MemoryNote, Sample
from ..settings import Settings
from ..store import Store

log = logging.getLogger(__name__)

SOURCE = "context"


@dataclass
class ContextSample(Sample):
    """A sample the pass makes for itself and never stores: ``prompt_messages`` and
    ``prompt_token_ids`` are the student's context (no memory), ``teacher_messages`` the same
    turn as served with the memory, and ``hints`` holds the note's words (what the teacher read)."""

    teacher_messages: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ContextPrompt:
    """One logged prompt, in both contexts. ``message_id`` is a reply that was generated for it
    (a forgotten conversation flags the adapters trained on its turns through it)."""

    message_id: int
    conversation_id: int
    student: list[dict[str, str]]
    teacher: list[dict[str, str]]


def context_prompts(store: Store, note: MemoryNote, limit: int) -> list[ContextPrompt]:
    """The ``limit`` most recent logged prompts (user messages that got a reply, excluded ones
    never), each without the memory and with ``note`` placed as served."""
    out: list[ContextPrompt] = []
    seen: set[int] = set()
    for reply in reversed(store.assistant_messages()):
        if len(out) >= limit:
            break
        if reply.parent_id is None or reply.parent_id in seen:
            continue
        path = store.path_to(reply.parent_id)
        if not path or path[-1].role != "user":
            continue  # a reply to a tool result: not a prompt the user wrote
        seen.add(reply.parent_id)
        conv = store.get_conversation(reply.conversation_id)
        notes = store.notes_of([m.id for m in path if m.role == "assistant"])
        out.append(ContextPrompt(reply.id, reply.conversation_id, render(conv.system_prompt, path, {}, None),
                                 render(conv.system_prompt, path, notes, note)))
    return out


def context_samples(store: Store, settings: Settings, engine: Engine | None = None,
                    progress: Callable[[int, int], None] | None = None) -> list[ContextSample]:
    """The pass's context-distillation samples (see the module docstring); none when the term is
    off, the memory is empty or not placed (``memory_placement = off``: nothing is served with it).

    ``engine``: the served model in llama.cpp; opened here (the served version, as the chat
    opens it) and closed again when not given."""
    if settings.train_w_context <= 0 or settings.train_context_prompts <= 0:
        return []
    note = Memory(store, settings).note()
    if note is None:
        return []
    prompts = context_prompts(store, note, settings.train_context_prompts)
    if not prompts:
        return []
    opened = None
    if engine is None:
        from ..chat.service import open_engine

        engine = opened = open_engine(store, settings)
    out: list[ContextSample] = []
    try:
        for i, p in enumerate(prompts):
            if progress:
                progress(i, len(prompts))
            gen = engine.generate(p.student, temperature=settings.temperature, top_p=settings.top_p,
                                  top_k=settings.top_k, repeat_penalty=settings.repeat_penalty,
                                  max_tokens=settings.train_context_max_tokens,
                                  seed=(settings.train_seed * 1_000_003 + p.message_id) % 2**31)
            if not gen.response_token_ids or not gen.prompt_token_ids:
                continue
            out.append(ContextSample(
                id=0, message_id=p.message_id, conversation_id=p.conversation_id,
                prompt_token_ids=list(gen.prompt_token_ids), response_token_ids=list(gen.response_token_ids),
                reward=0.0, source=SOURCE, status="ready", hints=[note.text], prompt_messages=p.student,
                teacher_messages=p.teacher))
        if progress:
            progress(len(prompts), len(prompts))
    finally:
        if opened is not None:
            opened.close()
    log.info("context distillation: %d of the memory's replies sampled (%d prompts; note %r)",
             len(out), len(prompts), note.text)
    return out

