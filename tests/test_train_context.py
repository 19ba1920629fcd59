"""Context distillation (train/context.py) and the thumbs-only rule (data.guide_negatives).

On the real bundled model and a real SQLite home: turns logged by ChatService, a wish in the
preference memory, the context samples the nightly pass makes, and one tiny training step that
moves the student toward the memory-reading teacher. Tiny replies, LoRA rank 4 (2 shared cores).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_samples import add_sample, chat, log_turn, one_torch_thread, tiny  # noqa: F401 (fixtures)

from clawdesk.errors import ConfigError
from clawdesk.records import Sample
from clawdesk.settings import Settings
from clawdesk.train.backend import choose_backend, load_trainable, trainable_parameters
from clawdesk.train.context import context_samples
from clawdesk.train.data import guide_negatives, method_weights, skip_reason
from clawdesk.train.run import loss_batch, loss_config, train_pass, train_step
from clawdesk.train.scoring import ScoreConfig, score_sample, teacher_messages
from clawdesk.train.student_context import served_ids, served_messages

WISH = "Keep answers short and to the point."  # no number: a held word limit is not in the note


@pytest.fixture
def home_with_memory(chat, settings):
    """Three logged prompts before the wish, one after it (its logged prompt carries the note),
    a regenerated reply (the same prompt twice) and an excluded conversation."""
    for i, q in enumerate(["What is the capital of France?", "Name a red fruit.", "How many legs has a cat?"]):
        conv, turn = log_turn(chat, q, seed=i, max_tokens=6)
    chat.regenerate(turn.assistant.id, seed=9, max_tokens=6)
    chat.memory.add(WISH)
    conv, after = log_turn(chat, "Why is the sky blue?", seed=4, max_tokens=6)
    hidden, secret = log_turn(chat, "My secret question.", seed=5, max_tokens=6)
    chat.store.update_conversation(hidden.id, exclude=True)
    return after, secret


def test_context_samples_hold_the_memory_out_of_the_student_and_in_the_teacher(chat, settings, home_with_memory):
    after, secret = home_with_memory
    assert WISH in chat.engine.detokenize(after.assistant.prompt_token_ids)  # the chat logged it with the note
    settings = settings.replace(train_w_context=1.0, train_context_prompts=10, train_context_max_tokens=8)
    samples = context_samples(chat.store, settings, engine=chat.engine)

    prompts = [s.prompt_messages[-1]["content"] for s in samples]
    assert prompts == ["Why is the sky blue?", "How many legs has a cat?", "Name a red fruit.",
                       "What is the capital of France?"]  # most recent first; the regenerated prompt once
    assert secret.assistant.id not in {s.message_id for s in samples}  # excluded: never distilled
    for s in samples:
        assert s.source == "context" and s.reward == 0.0 and s.hints == [WISH]
        assert WISH not in chat.engine.detokenize(s.prompt_token_ids)  # student: no memory
        assert s.prompt_token_ids == chat.engine.render(s.prompt_messages)  # the ids llama.cpp rendered
        assert s.teacher_messages[-1]["content"] == s.prompt_messages[-1]["content"] + f"\n\n({WISH})"
        assert s.teacher_messages[:-1] == s.prompt_messages[:-1]
        assert 0 < len(s.response_token_ids) <= 8
    # the cap, and nothing when the term is off or the memory is empty
    assert len(context_samples(chat.store, settings.replace(train_context_prompts=2), engine=chat.engine)) == 2
    assert context_samples(chat.store, settings.replace(train_w_context=0.0), engine=chat.engine) == []
    assert context_samples(chat.store, settings.replace(memory_placement="off"), engine=chat.engine) == []


def test_the_context_term_moves_the_student_toward_the_memory_teacher(chat, settings, shared_hf, home_with_memory):
    settings = tiny(settings, train_w_rl=0.0, train_w_opd=0.0, train_w_demo=0.0, train_w_context=1.0,
                    train_context_prompts=3, train_context_max_tokens=8, train_lr=2e-3)
    samples = context_samples(chat.store, settings, engine=chat.engine)
    weights = method_weights("combined", settings)
    assert all(skip_reason(s, weights) is None for s in samples)
    assert skip_reason(samples[0], method_weights("combined", settings.replace(train_w_context=0.0))) is not None

    model, tokenizer = load_trainable(shared_hf, None, settings, choose_backend("lora"))
    items = [score_sample(model, tokenizer, s, ScoreConfig(use_opd=False, use_context=True)) for s in samples]
    assert all(i.is_context and i.has_hint for i in items)
    # the teacher read the memory: its log-probs of the student's own reply differ from π_old's
    assert any(float((i.support_teacher_logp - i.support_old_logp).abs().max()) > 1e-3 for i in items)

    def preferred_logp() -> float:
        """Mean log π_θ of the support token the teacher favours most over π_old, per position."""
        with torch.no_grad():
            b = loss_batch(model, items)
        gain = b.support_teacher_logp - b.support_old_logp
        best = gain.masked_fill(~b.support_mask, float("-inf")).argmax(-1, keepdim=True)
        return float(b.support_logp.gather(-1, best).squeeze(-1)[b.mask].mean())

    cfg = loss_config(settings, "combined")
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(params, lr=settings.train_lr, weight_decay=0.0)
    before = preferred_logp()
    first = train_step(model, optimizer, params, items, cfg, settings, micro_batch=1)
    train_step(model, optimizer, params, items, cfg, settings, micro_batch=1)
    assert preferred_logp() > before
    assert first["context_loss"] != 0.0 and first["opd_loss"] == 0.0  # its own part of the logged loss
    assert first["loss"] == pytest.approx(first["context_loss"], abs=1e-6)


def _sample(message_id: int, reward: float | None, source: str = "explicit", hints=()) -> Sample:
    return Sample(id=message_id, message_id=message_id, conversation_id=1, prompt_token_ids=[1],
                  response_token_ids=[2], reward=reward, source=source, status="ready", hints=list(hints),
                  prompt_messages=[{"role": "user", "content": "q"}])


def test_a_thumbs_down_without_a_correction_has_no_rl_term_by_default():
    settings = Settings()
    bare, hinted, corrected, demo, liked = (_sample(1, -1.0), _sample(2, -1.0, hints=["Keep it short."]),
                                            _sample(3, -1.0), _sample(3, None, "demo"), _sample(4, 1.0))
    guided = guide_negatives([bare, hinted, corrected, demo, liked], settings.train_w_unguided_negative)
    assert [s.reward for s in guided] == [0.0, 0.0, -1.0, None, 1.0]
    assert bare.reward == -1.0  # the stored sample (the user's verdict) is untouched
    weights = method_weights("combined", settings)
    assert skip_reason(guided[0], weights) is not None  # nothing left to teach: not trained on
    assert skip_reason(guided[1], weights) is None  # its reason still teaches, as a hint
    assert [s.reward for s in guide_negatives([bare], 1.0)] == [-1.0]  # the reference method


@pytest.mark.parametrize("name,value", [("train_w_context", -1), ("train_context_prompts", -1),
                                        ("train_context_max_tokens", 4), ("train_w_unguided_negative", -0.5)])
def test_context_settings_have_ranges(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings().replace(**{name: value})


def test_a_bare_thumbs_down_is_dropped_with_its_reason_not_left_waiting(chat, settings):
    """With nothing to teach (no correction, no hint) a 👎 would stay 'ready' for ever and count
    toward train_min_samples each night; the pass drops it and says why."""
    from clawdesk.errors import TrainingError
    from clawdesk.train import train_pass
    from clawdesk.train.data import SILENT_NEGATIVE
    from train_samples import add_sample

    bare = add_sample(chat, "Name a colour.", reward=-1.0)
    with pytest.raises(TrainingError, match="Nothing to train on: 1 👎 without a correction"):
        train_pass(chat.store, settings.replace(train_w_context=0.0))
    dropped = chat.store.samples(status="dropped")
    assert [s.id for s in dropped] == [bare.id] and dropped[0].drop_reason == SILENT_NEGATIVE
    assert chat.store.runs() == []  # refused before a run record or a model load


def test_the_served_student_context_is_todays_prompt_with_todays_memory(chat, settings, shared_hf):
    """train_student_context = "served": a turn rated before the wish is trained with the note in
    its prompt, as the chat would serve it now; a deleted wish leaves the prompts it was in."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(shared_hf))
    before = add_sample(chat, "Name a blue thing.", reward=-1.0, hints=["Keep the answer much shorter."], max_tokens=6)
    wish = chat.memory.add(WISH)
    after = add_sample(chat, "Name a green thing.", reward=1.0, seed=1, max_tokens=6)
    text = chat.engine.detokenize
    assert WISH not in text(before.prompt_token_ids) and WISH in text(after.prompt_token_ids)

    served = served_ids(tokenizer, served_messages(chat.store, settings, [before, after]))
    assert WISH in text(served[0].prompt_token_ids)  # today's memory, placed as served
    assert served[0].prompt_token_ids == chat.engine.render(served[0].prompt_messages)  # llama.cpp's ids
    assert served[1].prompt_token_ids == after.prompt_token_ids  # logged with today's note: unchanged
    assert served[0].response_token_ids == before.response_token_ids and served[0].reward == -1.0
    assert WISH in teacher_messages(served[0].prompt_messages, before.hints[0])[-1]["content"]  # the teacher too
    assert chat.store.samples(status="ready")[0].prompt_token_ids == before.prompt_token_ids  # the stored row is not changed

    result = train_pass(chat.store, tiny(settings, train_student_context="served"))  # the pass runs on them
    assert Path(result.candidate_path).exists() and {s.status for s in chat.store.samples()} == {"used"}

    chat.memory.remove(wish.id)
    gone = served_ids(tokenizer, served_messages(chat.store, settings, [after]))
    assert WISH not in text(gone[0].prompt_token_ids)  # deleted: no longer taught from its turns
    assert Settings().train_student_context == "logged"  # the default until measured
    with pytest.raises(ConfigError, match="train_student_context"):
        Settings().replace(train_student_context="today")
