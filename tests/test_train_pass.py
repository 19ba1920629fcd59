"""Training internals on the real bundled model: the chat-template check, a pinned tiny run, the
CPU QLoRA step, the extension settings. Real logged turns, real SQLite, real torch.

Kept short on purpose (2 CPU cores shared): tiny replies (≤ 10 tokens), 1–3 samples, LoRA rank 4.
"""

from __future__ import annotations

import pytest
import torch
from train_samples import (  # noqa: F401 (fixtures)
    add_demo, add_sample, chat, log_turn, one_torch_thread, tiny)

from clawdesk.train.backend import Backend, choose_backend, load_trainable, trainable_parameters
from clawdesk.train.loss import LossConfig
from clawdesk.train.run import _corrected_reply, evaluate_loss, loss_batch, loss_config, train_step
from clawdesk.train.scoring import HINT_TAG, ScoreConfig, render_prompt, score_sample, teacher_messages

pytestmark = pytest.mark.slow


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
    settings = tiny(settings, train_w_rl=1.0)  # docs/method.md's weights: the pin does not move with the default
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


def test_qlora_on_the_cpu_takes_a_real_step(chat, settings, shared_hf):
    """bitsandbytes' CPU kernels: a 4-bit NF4 base, LoRA on top, one optimizer step."""
    from bitsandbytes.nn import Linear4bit

    settings = tiny(settings, train_backend="qlora")
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


def test_extension_settings_support_subsets_v1_kl_demo_and_anchor(chat, settings, shared_hf):
    """Issue 9's loss-side switches on the real model. With no served adapter, a fresh LoRA (B = 0)
    *is* the base, so the base-weight reference and teacher must equal π_old exactly."""
    rated = add_sample(chat, "What is the capital of France?", reward=-1.0, hints=["Answer in one word."],
                       seed=12, max_tokens=6)
    plain = add_sample(chat, "Say hi.", reward=1.0, seed=13, max_tokens=6)
    demo = add_demo(chat, rated, "Paris.")
    model, tokenizer = load_trainable(shared_hf, None, tiny(settings), choose_backend("lora"))

    union = score_sample(model, tokenizer, rated, ScoreConfig(support="union", need_ref=True, teacher="base"))
    assert union.support_ids.shape[-1] == 8 and union.support_mask[:, :4].all()
    # a teacher token already in the student's top-4 is not counted twice
    for ids, mask in zip(union.support_ids, union.support_mask):
        assert len(set(ids[mask].tolist())) == int(mask.sum())
    torch.testing.assert_close(union.ref_logp, union.old_logp)
    student_only = score_sample(model, tokenizer, rated, ScoreConfig(support="student", teacher="base"))
    teacher_only = score_sample(model, tokenizer, rated, ScoreConfig(support="teacher", teacher="base"))
    assert student_only.support_ids.tolist() == union.support_ids[:, :4].tolist()
    assert teacher_only.support_ids.tolist() == union.support_ids[:, 4:].tolist()

    assert not score_sample(model, tokenizer, plain, ScoreConfig()).has_hint  # reward, no hint: no OPD
    anchored = score_sample(model, tokenizer, plain, ScoreConfig(anchor_to_base=True))
    assert anchored.has_hint and anchored.hint == ""
    torch.testing.assert_close(anchored.teacher_logp, anchored.old_logp)  # base == π_old here

    demo_item = score_sample(model, tokenizer, demo, ScoreConfig())
    assert demo_item.is_demo and demo_item.response_ids[-1] == 2  # the corrected text + <|im_end|>
    assert demo_item.token_weights is None  # train_demo_copy_weight 1.0: plain NLL
    original = _corrected_reply(chat.store, demo)  # the reply the user corrected, as logged
    assert original == rated.response_token_ids and _corrected_reply(chat.store, rated) is None
    focused = score_sample(model, tokenizer, demo, ScoreConfig(demo_copy_weight=0.1), original)
    assert focused.token_weights is not None and float(focused.token_weights.mean()) == pytest.approx(1.0)
    items = [score_sample(model, tokenizer, rated, ScoreConfig(need_ref=True)), anchored, demo_item]
    items[1].ref_logp = items[1].old_logp
    cfg = LossConfig(w_demo=1.0, kl_coef=0.05, opd_variant="v1")
    params = trainable_parameters(model)
    metrics = train_step(model, torch.optim.AdamW(params, lr=5e-4), params, items, cfg, tiny(settings), 1)
    assert metrics["demo_loss"] > 0 and metrics["kl_ref"] is None  # KL is 0 at θ = π_ref, before the step
    assert torch.isfinite(torch.tensor([metrics["loss"], metrics["grad_norm"]])).all()
    after = train_step(model, torch.optim.AdamW(params, lr=5e-4), params, items, cfg, tiny(settings), 1)
    assert after["kl_ref"] is not None and after["kl_ref"] > 0  # the step moved θ away from the base


def test_cpu_path_does_not_import_gpu_only_packages():
    """On a machine without CUDA, choosing and describing the back end must not touch unsloth."""
    import subprocess
    import sys

    code = ("import sys; from clawdesk.train.backend import choose_backend; import clawdesk.train.run; "
            "b = choose_backend('auto'); print(b.name, 'unsloth' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["lora-cpu-fp32", "False"]


def test_the_engines_quoted_words_are_left_out_of_the_on_policy_terms(chat, settings, shared_hf):
    """A reply that opened with the memory's quoted words: those ids were written by the engine, not
    sampled, so RL and OPD skip them (docs/memory.md) — the rest of the reply trains as usual."""
    from clawdesk.train.step import forced_spans

    chat.memory.add("Start every answer with 'Hi Sam!'")
    sample = add_sample(chat, "What is the capital of France?", reward=1.0, seed=0, max_tokens=10)
    message = chat.store.get_message(sample.message_id)
    [[start, end]] = forced_spans(chat.store, sample)
    assert (start, end) == (0, len(chat.engine.tokenize("Hi Sam!")))
    assert chat.engine.detokenize(message.response_token_ids[start:end]) == "Hi Sam!"

    model, tokenizer = load_trainable(shared_hf, None, tiny(settings), choose_backend("lora"))
    item = score_sample(model, tokenizer, sample, ScoreConfig(), forced=forced_spans(chat.store, sample))
    with torch.no_grad():
        b = loss_batch(model, [item])
    assert not b.mask[0, :end].any() and b.mask[0, end:].all()


def test_the_gate_asks_your_prompts_as_served_the_quoted_opening_included(chat, settings, shared_hf):
    """Check 4 (your latest prompts, memory as served) continues from what the served model
    continues from: the note in the message and a quoted opening that leads into the reply
    ("TL;DR:") already written. A greeting ("Hi Sam!") the engine writes apart from the reply
    (engine/shape.py), so there the reply starts fresh and the greeting is put before it. Before
    either, a candidate that chatted on after "Hi Sam!" ("Hi Sam! Hello! How can I help you
    today?") passed the check and was promoted (greet, seed 0, session 16)."""
    from transformers import AutoTokenizer

    from clawdesk.records import TrainResult
    from clawdesk.train.gate import as_served, own_prompts, still_answers

    tokenizer = AutoTokenizer.from_pretrained(str(shared_hf))
    chat.memory.add("Start every answer with 'TL;DR:'")
    chat.memory.add("Call me Dana.")  # a note in the message as well
    sample = add_sample(chat, "How do magnets work?", reward=1.0, seed=0, max_tokens=10)
    served = chat.store.get_message(sample.message_id)
    result = TrainResult(run_id=1, method="combined", backend="lora", candidate_path="", trained_ids=[sample.id])
    opening, own = own_prompts(chat.store, settings, result, tokenizer)
    assert opening == "TL;DR:"
    [(text, ids)] = own
    head = len(chat.engine.tokenize("TL;DR:"))
    assert text == "How do magnets work?" and ids == served.prompt_token_ids + served.response_token_ids[:head]

    for wish in chat.store.wishes():
        if "TL;DR" in wish.text:
            chat.memory.remove(wish.id)
    chat.memory.add("Start every answer with 'Hi Sam!'")
    opening, [(_, greeted_ids)] = own_prompts(chat.store, settings, result, tokenizer)
    assert opening == "Hi Sam! " and greeted_ids == served.prompt_token_ids  # the same note, no greeting in it
    # the engine's words are set aside: a greeting alone, or with chat after it, answers nothing
    assert not still_answers(text, "Hi Sam! Hello! How can I help you today?", ("Hi Sam!",))
    assert still_answers(text, "Hi Sam! Magnets pull on iron through their magnetic field.", ("Hi Sam!",))
    # a candidate that greets by itself is read as the engine serves it: the greeting once
    assert as_served(opening, "Hi Sam! Magnets pull on iron.") == "Hi Sam! Magnets pull on iron."
    assert as_served(opening, "Magnets pull on iron.") == "Hi Sam! Magnets pull on iron."
    assert as_served(opening, "Hi Sam,\n\nMagnets pull on iron.") == "Hi Sam!\n\nMagnets pull on iron."
    assert as_served("TL;DR:", " TL;DR: magnets.") == "TL;DR: TL;DR: magnets."  # continued from: as written
    assert own_prompts(chat.store, settings.replace(gate_own_prompts=0), result, tokenizer) == ("", [])
