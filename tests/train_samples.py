"""Building training samples for the trainer's tests: real turns logged by ChatService on the real
bundled model, turned into Sample rows with Store.upsert_sample (the judge is not needed here)."""

from __future__ import annotations

import pytest

from clawdesk.chat import ChatService
from clawdesk.records import Sample

IM_END = 2  # <|im_end|> in SmolLM2's vocabulary


def log_turn(chat: ChatService, question: str, seed: int, max_tokens: int = 12, temperature: float = 0.7):
    conv = chat.new_conversation()
    turn = chat.send(conv.id, question, seed=seed, max_tokens=max_tokens, temperature=temperature)
    return conv, turn


def add_sample(chat: ChatService, question: str, *, reward: float | None, hints: list[str] | None = None,
               seed: int = 0, max_tokens: int = 12, temperature: float = 0.7, source: str = "explicit") -> Sample:
    """Log one real turn and store it as a ready sample with the given reward and hints."""
    conv, turn = log_turn(chat, question, seed, max_tokens, temperature)
    return chat.store.upsert_sample(Sample(
        id=0, message_id=turn.assistant.id, conversation_id=conv.id,
        prompt_token_ids=turn.assistant.prompt_token_ids, response_token_ids=turn.assistant.response_token_ids,
        reward=reward, source=source, status="ready", hints=list(hints or []),
        prompt_messages=chat.context(conv, turn.user.id), next_state="(test)"))


def add_demo(chat: ChatService, base: Sample, corrected: str) -> Sample:
    """A demonstration: the same turn with the user's corrected text (+ <|im_end|>) as response."""
    ids = chat.engine.tokenize(corrected) + [IM_END]
    return chat.store.upsert_sample(Sample(
        id=0, message_id=base.message_id, conversation_id=base.conversation_id,
        prompt_token_ids=base.prompt_token_ids, response_token_ids=ids, reward=1.0, source="demo",
        status="ready", prompt_messages=base.prompt_messages, next_state="(correction)"))


@pytest.fixture
def chat(store, engine, settings, hf_cache) -> ChatService:
    return ChatService(store, engine, settings)


def tiny(settings, **changes):
    """Small, fast training settings for tests (rank 4, nothing held out unless asked)."""
    base = dict(train_rank=4, train_alpha=8.0, train_batch_size=4, train_epochs=1, train_lr=5e-4,
                train_heldout_fraction=0.0, train_seed=0, train_threads=1)  # independent of the product defaults
    return settings.replace(**{**base, **changes})


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread: on 2 cores shared with llama.cpp and other jobs, two threads ran a forward
    pass 5-8x slower than one (measured: 0.54 s vs 2.5-4.4 s)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
