"""The training pass on the real bundled model: real logged turns, a real SQLite store, real torch.

Kept short on purpose (2 CPU cores shared): tiny replies (≤ 12 tokens), 2–4 samples, LoRA rank 4.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from train_samples import add_demo, add_sample, log_turn

from clawdesk import locations
from clawdesk.chat import ChatService
from clawdesk.cli import cli
from clawdesk.engine.torch_model import hf_dir_for
from clawdesk.train import train_pass
from clawdesk.train.backend import Backend, choose_backend, load_trainable, trainable_parameters
from clawdesk.train.run import evaluate_loss, loss_batch, loss_config, train_step
from clawdesk.train.scoring import HINT_TAG, ScoreConfig, render_prompt, score_sample, teacher_messages

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared_hf(tmp_path_factory: pytest.TempPathFactory, model_path: str) -> Path:
    """Dequantise the bundled GGUF once per module (~20 s) instead of once per test."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLAWDESK_HOME", str(tmp_path_factory.mktemp("hfhome")))
        return hf_dir_for(model_path)


@pytest.fixture(autouse=True)
def _link_hf_cache(shared_hf: Path, clawdesk_home: Path) -> None:
    target = locations.cache_dir() / "hf" / shared_hf.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(shared_hf, target_is_directory=True)


@pytest.fixture
def chat(store, engine, settings) -> ChatService:
    return ChatService(store, engine, settings)


def _tiny(settings, **changes):
    base = dict(train_rank=4, train_alpha=8.0, train_batch_size=4, train_heldout_fraction=0.0, train_seed=0)
    return settings.replace(**{**base, **changes})


def test_hf_chat_template_renders_the_ids_llama_cpp_logged(chat, shared_hf):
    """The teacher context is rendered by the HF tokenizer; the student prompt was rendered by
    llama.cpp. Both must agree token for token, with and without a system prompt, over turns."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(shared_hf))
    conv, turn = log_turn(chat, "What is 2 + 2?", seed=1, max_tokens=6)
    assert render_prompt(tokenizer, chat.context(conv, turn.user.id)) == turn.assistant.prompt_token_ids
    second = chat.send(conv.id, "And 3 + 3?", seed=2, max_tokens=6)
    assert render_prompt(tokenizer, chat.context(conv, second.user.id)) == second.assistant.prompt_token_ids
    sys_conv = chat.new_conversation(system_prompt="You answer in French.")
    third = chat.send(sys_conv.id, "Hello!", seed=3, max_tokens=6)
    assert render_prompt(tokenizer, chat.context(sys_conv, third.user.id)) == third.assistant.prompt_token_ids
    # the teacher's context: the hint goes at the end of the last user message only
    msgs = teacher_messages(chat.context(conv, second.user.id), "Be brief.")
    assert msgs[-1]["content"] == "And 3 + 3?" + HINT_TAG + "Be brief."
    assert msgs[0]["content"] == "What is 2 + 2?"
    assert chat.engine.render(msgs) == render_prompt(tokenizer, msgs)


# Pinned loss trajectory of the tiny run below: [before, step 1, step 2, after]. Greedy turns,
# fixed seed, fp32: reproducible to ~1e-5 here; the tolerance leaves room for other CPUs' math.
PINNED = [0.953397, 0.953397, 0.867716, 0.841997]


def test_tiny_run_lowers_the_loss_and_raises_teacher_preferred_tokens(chat, settings, shared_hf):
    settings = _tiny(settings)
    hint = "Answer with only the one word: Paris."
    samples = [
        add_sample(chat, "What is the capital of France?", reward=-1.0, hints=[hint, "Mention the Eiffel Tower."],
                   seed=0, max_tokens=10, temperature=0.0),
        add_sample(chat, "Which city is the capital of France?", reward=None, hints=[hint], seed=0,
                   max_tokens=10, temperature=0.0),
        add_sample(chat, "Name the capital city of France.", reward=-1.0, hints=[hint], seed=0, max_tokens=10,
                   temperature=0.0),
    ]
    model, tokenizer = load_trainable(shared_hf, None, settings, choose_backend("lora"))
    items = [score_sample(model, tokenizer, s, ScoreConfig()) for s in samples]
    assert all(s.has_hint for s in items)
    assert items[0].hint == hint  # overlap-guided selection picked the hint the student's top-k agrees with

    cfg = loss_config(settings, "combined")
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(params, lr=settings.train_lr, weight_decay=0.0)

    def preferred_logp() -> float:
        """Mean log π_θ of the support token the teacher favours most over π_old, per position."""
        with torch.no_grad():
            b = loss_batch(model, items)
        gain = b.support_teacher_logp - b.support_old_logp  # [B, T, K]
        best = gain.masked_fill(~b.support_mask, float("-inf")).argmax(-1, keepdim=True)
        return float(b.support_logp.gather(-1, best).squeeze(-1)[b.mask].mean())

    before, pref_before = evaluate_loss(model, items, cfg), preferred_logp()
    s1 = train_step(model, optimizer, params, items, cfg, settings, micro_batch=1)
    s2 = train_step(model, optimizer, params, items, cfg, settings, micro_batch=1)
    after, pref_after = evaluate_loss(model, items, cfg), preferred_logp()

    assert s1["loss"] == pytest.approx(before, abs=1e-4)  # step 1 runs at θ = π_old: same objective
    assert after < before
    assert pref_after > pref_before
    trajectory = [before, s1["loss"], s2["loss"], after]
    assert trajectory == pytest.approx(PINNED, abs=2e-3), trajectory


def test_train_now_cli_produces_a_candidate_and_a_run_record(chat, monkeypatch):
    for key, value in {"TRAIN_RANK": "4", "TRAIN_ALPHA": "8", "TRAIN_BATCH_SIZE": "2", "TRAIN_W_DEMO": "1.0",
                       "TRAIN_HELDOUT_FRACTION": "0.25"}.items():
        monkeypatch.setenv(f"CLAWDESK_{key}", value)
    store = chat.store
    down = add_sample(chat, "Describe the sea.", reward=-1.0, hints=["Keep it under ten words."], seed=4)
    add_sample(chat, "Say hello.", reward=1.0, seed=5)
    add_sample(chat, "What is a cat?", reward=-1.0, seed=6)
    add_sample(chat, "Name a colour.", reward=1.0, seed=7)
    add_demo(chat, down, "The sea is vast and blue.")

    result = CliRunner().invoke(cli, ["train", "--now"])
    assert result.exit_code == 0, result.output
    assert "Candidate adapter:" in result.output and "held out for the gate" in result.output

    run = store.runs()[0]
    assert run.status == "done" and run.method == "combined"
    candidate = Path(run.candidate_path)
    assert candidate == locations.runs_dir() / str(run.id) / "candidate"
    assert (candidate / "adapter_config.json").exists() and (candidate / "adapter_model.safetensors").exists()
    assert json.loads((candidate / "adapter_config.json").read_text())["r"] == 4
    assert not list(candidate.parent.glob("candidate.tmp*"))
    steps = run.metrics["steps"]
    assert len(steps) == 2  # 4 trained samples (5 minus 1 held-out turn), batches of 2
    for key in ("loss", "reward_mean", "opd_adv_mean", "clip_frac", "kl_old", "grad_norm", "tokens_per_s"):
        assert key in steps[0]
    heldout = set(run.metrics["heldout_ids"])
    trained = set(run.metrics["trained_ids"])
    assert len(heldout) == 1 and not heldout & trained
    statuses = {s.id: s.status for s in store.samples()}
    assert all(statuses[i] == "used" for i in trained) and all(statuses[i] == "ready" for i in heldout)
    assert store.served_version() is None  # the served adapter is untouched until the gate promotes

    listing = CliRunner().invoke(cli, ["runs", "list"])
    assert listing.exit_code == 0 and f"{run.id:>4}" in listing.output and "done" in listing.output
    shown = CliRunner().invoke(cli, ["runs", "show", str(run.id)])
    assert shown.exit_code == 0 and "grad_norm" in shown.output and "tokens_per_s" in shown.output


def test_interrupted_run_leaves_everything_retrainable_and_learning_accumulates(chat, settings):
    store = chat.store
    settings = _tiny(settings, train_batch_size=1)
    samples = [add_sample(chat, "Tell me a joke.", reward=-1.0, hints=["Make it about cats."], seed=8),
               add_sample(chat, "Say thanks.", reward=1.0, seed=9)]
    crashed = store.start_run("combined", {}, 2)  # a pass that died without a word (same pid = not alive)

    def interrupt(p):
        if p.phase == "train":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_pass(store, settings, progress=interrupt)
    runs = {r.id: r for r in store.runs()}
    assert runs[crashed.id].status == "failed" and "interrupted" in runs[crashed.id].error
    interrupted = max(runs)
    assert runs[interrupted].status == "failed" and runs[interrupted].error == "interrupted"
    assert all(s.status == "ready" for s in store.samples())
    assert not (locations.runs_dir() / str(interrupted) / "candidate").exists()

    first = train_pass(store, settings)  # re-run: same samples, a fresh record
    assert first.parent_version is None and sorted(first.trained_ids) == sorted(s.id for s in samples)
    assert all(s.status == "used" for s in store.samples())

    version = store.add_adapter(first.candidate_path, run_id=first.run_id).version
    store.set_state("served_adapter", str(version))
    new = [add_sample(chat, "Say thanks again.", reward=1.0, seed=10)]
    second = train_pass(store, settings.replace(train_rank=8), method="rl", samples=new)
    assert second.parent_version == version
    # it continued the served rank-4 adapter instead of starting a fresh rank-8 one
    assert json.loads((Path(second.candidate_path) / "adapter_config.json").read_text())["r"] == 4
    assert store.get_run(second.run_id).settings["parent_version"] == version


def test_qlora_on_the_cpu_takes_a_real_step(chat, settings, shared_hf):
    """bitsandbytes' CPU kernels: a 4-bit NF4 base, LoRA on top, one optimizer step."""
    from bitsandbytes.nn import Linear4bit

    settings = _tiny(settings, train_backend="qlora")
    backend = choose_backend("qlora")
    assert backend == Backend("qlora-cpu-nf4", "cpu", quantized=True)
    sample = add_sample(chat, "What is the capital of France?", reward=-1.0, hints=["Answer in one word."], seed=11,
                        max_tokens=6)
    model, tokenizer = load_trainable(shared_hf, None, settings, backend)
    assert any(isinstance(m, Linear4bit) for m in model.modules())
    items = [score_sample(model, tokenizer, sample, ScoreConfig())]
    params = trainable_parameters(model)
    lora_b = {n: p for n, p in model.named_parameters() if "lora_B" in n}
    assert all(p.abs().sum() == 0 for p in lora_b.values())  # a fresh LoRA starts as the identity
    metrics = train_step(model, torch.optim.AdamW(params, lr=1e-3), params, items,
                         loss_config(settings, "combined"), settings, micro_batch=1)
    assert torch.isfinite(torch.tensor(metrics["loss"])) and metrics["grad_norm"] > 0
    # every LoRA B matrix moved, q/k/v/gate/up included (eval-mode NF4 repacking would zero those)
    assert [n for n, p in lora_b.items() if p.abs().sum() == 0] == []


def test_cpu_path_does_not_import_gpu_only_packages():
    """On a machine without CUDA, choosing and describing the back end must not touch unsloth."""
    import subprocess
    import sys

    code = ("import sys; from clawdesk.train.backend import choose_backend; import clawdesk.train.run; "
            "b = choose_backend('auto'); print(b.name, 'unsloth' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["lora-cpu-fp32", "False"]
