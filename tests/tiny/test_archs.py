"""Every architecture ClawDesk trains, end to end on a tiny random GGUF (tests/tiny/tiny_models.py):
GGUF → torch (the app's own dequantise-and-cache) → a LoRA on the architecture's projections →
one real training step (train/step.py) → GGUF LoRA (export/) → llama.cpp loads it → the promotion
check (``verify_served``): llama.cpp + adapter reproduces torch + peft.

Nothing is downloaded and nothing is mocked; each architecture takes a few seconds. Weights are
random, so these tests say the conversions are right (names, q/k permutation, fused tensors, norm
offsets, tied heads, head sizes), not that anything learns well.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import TINY, build  # noqa: E402

from clawdesk.errors import TrainingError  # noqa: E402
from clawdesk.records import Sample  # noqa: E402
from clawdesk.settings import Settings  # noqa: E402

THREADS = 1
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny")


def _settings() -> Settings:
    return Settings().replace(train_rank=4, train_alpha=8.0, train_batch_size=2, train_epochs=1, train_lr=1e-3,
                              train_threads=THREADS, train_heldout_fraction=0.0)


def _samples(tokenizer, eot: int) -> list[Sample]:
    """Two rated replies: one with a hint (so the OPD term and the teacher context run), one without."""
    from clawdesk.train.scoring import render_prompt

    prompt = render_prompt(tokenizer, QUESTION)
    reply = tokenizer.encode("Paris is the capital.", add_special_tokens=False) + [eot]
    other = tokenizer.encode("Put it in water.", add_special_tokens=False) + [eot]
    return [Sample(id=1, message_id=1, conversation_id=1, prompt_token_ids=prompt, response_token_ids=reply,
                   reward=1.0, source="explicit", status="ready", hints=["keep it short please"],
                   prompt_messages=QUESTION),
            Sample(id=2, message_id=2, conversation_id=2, prompt_token_ids=prompt, response_token_ids=other,
                   reward=-1.0, source="explicit", status="ready", prompt_messages=QUESTION)]


def _expectation(model, prompt: list[int], n: int, eos: set[int]):
    """torch + peft's greedy continuation with its log-probs and top-2 gaps (what the promotion
    check compares llama.cpp against, as train/gate.py builds it)."""
    import torch

    from clawdesk.train.scoring import response_logprobs

    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1].argmax())
            ids.append(nxt)
            if nxt in eos:
                break
        reply = ids[len(prompt):]
        logp = response_logprobs(model, [(prompt, reply)])[0]
    top2 = logp.topk(2, dim=-1).values
    chosen = logp.gather(-1, torch.tensor(reply)[:, None]).squeeze(-1)
    return reply, [float(x) for x in chosen], [float(x) for x in top2[:, 0] - top2[:, 1]]


@pytest.mark.parametrize("name", list(TINY))
def test_architecture_trains_exports_and_llama_cpp_reproduces_torch(name, tiny_dir):
    import torch

    from clawdesk.engine import Engine
    from clawdesk.engine.archs import ARCHS
    from clawdesk.engine.torch_model import hf_dir_for, load_model
    from clawdesk.export import peft_to_gguf_lora, verify_served
    from clawdesk.train.backend import Backend, load_trainable
    from clawdesk.train.data import method_weights
    from clawdesk.train.scoring import end_of_turn_ids
    from clawdesk.train.step import run_steps, score_config, score_samples

    spec = TINY[name]
    gguf_path, original = build(spec, tiny_dir / name)

    # GGUF → torch: the app's conversion computes exactly what the model that was written computes.
    base, tokenizer = load_model(gguf_path)
    probe = torch.tensor([[5, 60, 70, 80, 90, 100, 110, 120]])
    with torch.no_grad():
        assert torch.allclose(base(probe).logits, original(probe).logits, atol=1e-4)
    # The chat template: HF's rendering (the trainer's teacher context) gives llama.cpp's ids.
    from clawdesk.train.scoring import render_prompt

    engine = Engine(gguf_path, n_ctx=256, n_threads=THREADS)
    try:
        assert render_prompt(tokenizer, QUESTION) == engine.render(QUESTION)
    finally:
        engine.close()

    # LoRA on the architecture's projections, one real step of the combined objective.
    settings = _settings()
    model, tokenizer = load_trainable(hf_dir_for(gguf_path), None, settings, Backend("lora-cpu-fp32", "cpu", False))
    trained = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules() if n.endswith(tuple(ARCHS[spec.gguf_arch].targets))}
    assert trained == set(ARCHS[spec.gguf_arch].targets)
    eot = tokenizer.convert_tokens_to_ids(spec.eos)
    assert eot in end_of_turn_ids(tokenizer)
    samples = _samples(tokenizer, eot)
    scored = score_samples(model, tokenizer, samples, score_config(settings, method_weights("combined", settings), "cpu"),
                           store=None)
    assert scored[0].has_hint  # the teacher context rendered and scored
    [step] = run_steps(model, scored, settings, "combined", micro_batch=1)
    assert step["grad_norm"] > 0 and torch.isfinite(torch.tensor(step["loss"]))

    # One step moves the LoRA by ~lr; give B a size that changes every answer, so a wrong export
    # (rows, names, scale) could not pass as right.
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    model.eval()
    peft_dir = tiny_dir / name / "peft"
    model.save_pretrained(peft_dir)
    adapter = peft_to_gguf_lora(peft_dir, gguf_path, tiny_dir / name / "adapter.gguf")

    prompt = samples[0].prompt_token_ids
    expected, logprobs, gaps = _expectation(model, prompt, 12, end_of_turn_ids(tokenizer))
    with model.disable_adapter():
        without, _, _ = _expectation(model, prompt, 12, end_of_turn_ids(tokenizer))
    assert expected != without  # the adapter matters, so the check below can tell
    check = dict(expected_logprobs=logprobs, top_gaps=gaps, max_mean_drift=0.05, n_threads=THREADS)
    assert verify_served(gguf_path, adapter, None, prompt, expected, **check)
    assert not verify_served(gguf_path, None, None, prompt, expected, **check)  # the base alone does not


def test_unsupported_architecture_is_named_at_models_add_and_refused_before_a_pass(tmp_path, store, settings):
    """A GGUF llama.cpp may chat with but ClawDesk cannot train: `models add` registers it and says
    so in one line; a training pass refuses it before loading anything or recording a run."""
    import gguf
    import numpy as np
    from click.testing import CliRunner

    from clawdesk import catalog
    from clawdesk.cli import cli
    from clawdesk.train.run import train_pass

    path = tmp_path / "tiny-gpt2.gguf"
    w = gguf.GGUFWriter(str(path), "gpt2")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    result = CliRunner().invoke(cli, ["models", "add", str(path), "--name", "gpt2-tiny"])
    assert result.exit_code == 0, result.output
    assert "chat works; training needs one of these architectures" in result.output
    assert "'gpt2'" in result.output

    catalog.use_model(store, "gpt2-tiny")
    sample = Sample(id=1, message_id=1, conversation_id=1, prompt_token_ids=[1, 2], response_token_ids=[3],
                    reward=1.0, source="explicit", status="ready")
    with pytest.raises(TrainingError, match="Chat works; training needs"):
        train_pass(store, settings, samples=[sample])
    assert store.runs() == []
