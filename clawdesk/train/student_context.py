"""Which prompt the student is trained in: the one a reply was generated with, or today's.

By default (``train_student_context = "logged"``) the student's context is the prompt exactly as
llama.cpp logged it (docs/method.md §1: on-policy, never re-tokenised). A turn rated before a wish
was in the preference memory was generated without the memory's note, so the weights learn the
wish *unconditionally* — and the chat then serves those weights with the note in the prompt as
well. On the small model that is the wish applied twice: weights that learned "short" plus a note
asking for it again gave replies too short to answer ("The answer is:") on a thumbs-only user
(docs/choosing-defaults.md, "the wish applied twice").

``"served"`` trains every turn in the prompt the chat would build for it *now*: the same branch
with the memory's current note placed as served (``memory.render``). The hinted teacher gets the
same note, so OPD teaches what the hint adds beyond the note, and RL pushes a reply up or down in
the context the model will actually see. A wish the user deletes also stops being taught from
turns logged while it was in the memory.

The gate judges the candidate in the same prompts: its held-out objective and the NLL of your
positively-rated answers are read in today's served prompt too (train/gate.py, checks 1 and 2).

The price is that the replies were sampled from a slightly different context (π_old is the served
weights in today's context; the logged reply is off-policy by the note's words). This is an
experiment behind a setting until the personalisation benchmark decides it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..memory import Memory
from ..records import Sample
from ..settings import Settings
from ..signals import turn_messages
from ..store import Store
from .scoring import render_prompt

STUDENT_CONTEXTS = ("logged", "served")


def served_messages(store: Store, settings: Settings, samples: list[Sample]) -> list[Sample]:
    """Copies of ``samples`` whose ``prompt_messages`` are today's served prompt for their turn
    (the context-distillation samples, which have their own contexts, are kept as they are).
    The token ids are re-rendered later, by ``served_ids``, once a tokenizer is loaded."""
    note = Memory(store, settings).note()
    return [s if s.source == "context" else
            replace(s, prompt_messages=turn_messages(store, store.get_message(s.message_id), note))
            for s in samples]


def served_ids(tokenizer: Any, samples: list[Sample]) -> list[Sample]:
    """Copies of ``samples`` whose student prompt ids are their ``prompt_messages`` rendered by the
    HF chat template (the same ids llama.cpp renders: tests/test_train_pass.py checks it)."""
    return [replace(s, prompt_token_ids=render_prompt(tokenizer, s.prompt_messages))
            if s.source != "context" and s.prompt_messages else s for s in samples]
