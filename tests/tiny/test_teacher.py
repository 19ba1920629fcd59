"""``teacher_model``: the OPD teacher can be another registered GGUF sharing the chat model's
tokenizer (a bigger sibling); one of another family is refused; ``clawdesk doctor`` recommends
a bigger judge and teacher when the chat model is tiny. Tiny random GGUFs (tiny_models.py), real
catalog, store, trainer and CLI."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import TINY, build  # noqa: E402

from clawdesk import catalog  # noqa: E402
from clawdesk.errors import TrainingError  # noqa: E402
from clawdesk.records import Sample  # noqa: E402

QUESTION = [{"role": "user", "content": "How do I boil an egg?"}]


@pytest.fixture
def family(tmp_path, store):
    """A tiny llama chat model and a deeper sibling (same tokenizer, other weights), registered."""
    student, _ = build(TINY["llama"], tmp_path / "student")
    bigger = dataclasses.replace(TINY["llama"], config={**TINY["llama"].config, "num_hidden_layers": 3})
    teacher, _ = build(bigger, tmp_path / "teacher", seed=7)
    catalog.add_model(store, student, "tiny-chat")
    catalog.add_model(store, teacher, "tiny-teacher")
    catalog.use_model(store, "tiny-chat")
    return tmp_path


def _hinted(tokenizer) -> Sample:
    from clawdesk.train.scoring import render_prompt

    eot = tokenizer.convert_tokens_to_ids("<|im_end|>")
    return Sample(id=1, message_id=1, conversation_id=1, prompt_token_ids=render_prompt(tokenizer, QUESTION),
                  response_token_ids=tokenizer.encode("Put it in water.", add_special_tokens=False) + [eot],
                  reward=-1.0, source="explicit", status="ready", hints=["keep it short please"],
                  prompt_messages=QUESTION)


def test_the_teacher_model_scores_the_hinted_context(family, store, settings):
    import torch

    from clawdesk.train.backend import Backend, base_weights_dir, load_base, load_trainable
    from clawdesk.train.data import method_weights
    from clawdesk.train.scoring import render_prompt, response_logprobs, teacher_messages
    from clawdesk.train.step import score_config, score_samples
    from clawdesk.train.teacher import load_teacher

    settings = settings.replace(teacher_model="tiny-teacher", train_threads=1)
    cpu = Backend("lora-cpu-fp32", "cpu", False)
    student, tok = load_trainable(base_weights_dir(catalog.resolve(store, "tiny-chat")), None, settings, cpu)
    teacher = load_teacher(store, settings, tok)
    assert teacher.config.num_hidden_layers == 3
    sample = _hinted(tok)
    cfg = score_config(settings, method_weights("combined", settings), "cpu")
    [with_teacher] = score_samples(student, tok, [sample], cfg, store=None, teacher_model=teacher)
    [own] = score_samples(student, tok, [sample], cfg, store=None)

    reference, _ = load_base(base_weights_dir(catalog.resolve(store, "tiny-teacher")), cpu)
    context = render_prompt(tok, teacher_messages(QUESTION, "keep it short please"))
    with torch.no_grad():
        lp = response_logprobs(reference.eval(), [(context, sample.response_token_ids)])[0]
    expected = lp.gather(-1, torch.tensor(sample.response_token_ids)[:, None]).squeeze(-1)
    assert torch.allclose(with_teacher.teacher_logp, expected, atol=1e-5)
    assert not torch.allclose(with_teacher.teacher_logp, own.teacher_logp, atol=1e-2)  # not the student's own


def test_a_pass_trains_with_the_teacher_and_records_it(family, store, settings):
    from clawdesk.train.run import train_pass

    settings = settings.replace(teacher_model="tiny-teacher", train_threads=1, train_heldout_fraction=0.0,
                                train_epochs=1, train_rank=4, train_alpha=8.0)
    from transformers import AutoTokenizer

    from clawdesk.train.backend import base_weights_dir

    tok = AutoTokenizer.from_pretrained(str(base_weights_dir(catalog.resolve(store, "tiny-chat"))))
    result = train_pass(store, settings, samples=[_hinted(tok)])
    assert result.summary["teacher_model"] == "tiny-teacher" and result.summary["hinted_samples"] == 1
    assert len(result.steps) == 1


def test_a_teacher_of_another_family_is_refused(family, store, settings, tmp_path):
    from clawdesk.train.backend import Backend, base_weights_dir, load_trainable
    from clawdesk.train.teacher import load_teacher

    other, _ = build(TINY["gemma3"], tmp_path / "gemma")  # a SentencePiece vocabulary: other ids
    catalog.add_model(store, other, "tiny-gemma")
    settings = settings.replace(teacher_model="tiny-gemma")
    _, tok = load_trainable(base_weights_dir(catalog.resolve(store, "tiny-chat")), None, settings,
                            Backend("lora-cpu-fp32", "cpu", False))
    with pytest.raises(TrainingError, match="does not share the chat model's tokenizer"):
        load_teacher(store, settings, tok)


def test_doctor_recommends_a_bigger_judge_and_teacher_for_a_tiny_chat_model(family):
    from click.testing import CliRunner

    from clawdesk.cli import cli

    out = CliRunner().invoke(cli, ["doctor"]).output
    assert "the chat model is tiny" in out and "judge_model and teacher_model" in out
