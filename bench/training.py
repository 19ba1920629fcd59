"""Training and judging speed, through the trainer's and judge's own public functions.

Setup: ``--samples`` real turns logged by ChatService on the bundled model (each a sample with a
reward and a hint, as the judge would leave it), in a temp ``CLAWDESK_HOME``; the model loaded
for training exactly as a pass loads it (``clawdesk.train.backend.load_trainable``: LoRA on the
fp32 base on the CPU, gradient checkpointing per the setting).

Measured (medians over ``--reps``):

- **scoring** — ``clawdesk.train.scoring.score_sample``: the student (π_old) and teacher
  (π_old with the hint in context) log-prob passes of one sample, seconds per sample;
- **training step** — ``clawdesk.train.step.train_step`` on a batch of all samples (the combined
  objective), samples/s and response tokens/s, against the baseline: a plain peft
  forward/backward/AdamW step on the same batch with the ordinary next-token loss on the same
  response tokens (same model, same micro-batching);
- **judge votes/s** — ``clawdesk.judge.Judge`` PRM and hint votes (grammar on, m votes) on
  the logged turns, with the next state a complaint.

    .venv/bin/python bench/training.py [--samples 8] [--reps 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import bundled_model_path, isolated_home, markdown_table, median, ratio, say, write_results  # noqa: E402

QUESTIONS = ["Why is the sky blue?", "How do vaccines work?", "What is inflation?", "Why do we have seasons?",
             "How do airplanes fly?", "What causes thunder?", "What is a black hole?", "Why do we need sleep?"]
HINT = "Keep the answer under 30 words."


def log_samples(chat, n: int, max_tokens: int) -> list[Any]:
    """Real turns → ready samples with a reward and a hint (what a judged complaint yields)."""
    from clawdesk.records import Sample

    out = []
    for i in range(n):
        conv = chat.new_conversation()
        turn = chat.send(conv.id, QUESTIONS[i % len(QUESTIONS)], seed=i, max_tokens=max_tokens, temperature=0.7)
        out.append(chat.store.upsert_sample(Sample(
            id=0, message_id=turn.assistant.id, conversation_id=conv.id,
            prompt_token_ids=turn.assistant.prompt_token_ids, response_token_ids=turn.assistant.response_token_ids,
            reward=-1.0 if i % 2 else 1.0, source="judge", status="ready", hints=[HINT],
            prompt_messages=chat.context(conv, turn.user.id), next_state="(bench)")))
    return out


def plain_step(model, optimizer, params, batch, micro_batch: int) -> float:
    """The baseline: next-token cross-entropy on the response tokens, forward/backward/step."""
    import torch

    start = time.perf_counter()
    model.train()
    optimizer.zero_grad(set_to_none=True)
    for i in range(0, len(batch), micro_batch):
        for s in batch[i:i + micro_batch]:
            ids = torch.tensor([s.prompt_ids + s.response_ids])
            labels = ids.clone()
            labels[:, : len(s.prompt_ids)] = -100  # loss on the response tokens only, as the trainer's
            loss = model(input_ids=ids, labels=labels, use_cache=False).loss / len(batch)
            loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    model.eval()
    return time.perf_counter() - start


def bench_train(samples, settings, reps: int) -> dict[str, Any]:
    import torch

    from clawdesk.engine.torch_model import hf_dir_for
    from clawdesk.train.backend import choose_backend, load_trainable, trainable_parameters
    from clawdesk.train.data import method_weights
    from clawdesk.train.scoring import score_sample
    from clawdesk.train.step import loss_config, score_config, train_step

    backend = choose_backend("lora")
    start = time.perf_counter()
    model, tokenizer = load_trainable(hf_dir_for(bundled_model_path()), None, settings, backend)
    load_s = time.perf_counter() - start
    cfg = score_config(settings, method_weights("combined", settings), backend.device)
    score_times, scored = [], []
    for s in samples:
        start = time.perf_counter()
        scored.append(score_sample(model, tokenizer, s, cfg))
        score_times.append(time.perf_counter() - start)
    params = trainable_parameters(model)
    tokens = sum(len(s.response_ids) for s in scored)
    lcfg = loss_config(settings, "combined")
    step_times, plain_times = [], []
    for _ in range(reps):
        opt = torch.optim.AdamW(params, lr=settings.train_lr)
        start = time.perf_counter()
        train_step(model, opt, params, scored, lcfg, settings, cfg.micro_batch)
        step_times.append(time.perf_counter() - start)
        opt = torch.optim.AdamW(params, lr=settings.train_lr)
        plain_times.append(plain_step(model, opt, params, scored, cfg.micro_batch))
    return {"backend": backend.name, "load_s": load_s, "score_s_per_sample": median(score_times),
            "step_s": median(step_times), "plain_step_s": median(plain_times), "batch": len(scored),
            "response_tokens": tokens, "prompt_tokens": sum(len(s.prompt_ids) for s in scored)}


def bench_judge(engine, samples, settings, votes: int, cases: int) -> dict[str, Any]:
    from clawdesk.judge import Judge

    judge = Judge.from_settings(engine, settings, votes=votes, seed=0)
    reward_n = hint_n = 0
    reward_s = hint_s = 0.0
    failed = 0
    for s in samples[:cases]:
        request = s.prompt_messages[-1]["content"]
        response = engine.detokenize(s.response_token_ids).replace("<|im_end|>", "")
        start = time.perf_counter()
        j = judge.reward(request, response, "Too long. Please keep it under 30 words.")
        reward_s += time.perf_counter() - start
        reward_n += len(j.votes)
        failed += j.failed
        start = time.perf_counter()
        h = judge.hints(request, response, "Too long. Please keep it under 30 words.")
        hint_s += time.perf_counter() - start
        hint_n += len(h.votes)
        failed += h.failed
    return {"reward_votes_per_s": reward_n / reward_s if reward_s else float("nan"),
            "hint_votes_per_s": hint_n / hint_s if hint_s else float("nan"),
            "votes": reward_n + hint_n, "failed_votes": failed, "grammar": settings.judge_grammar}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=8, help="Samples in the batch.")
    ap.add_argument("--max-tokens", type=int, default=64, help="Length of the logged replies.")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--judge-cases", type=int, default=4)
    ap.add_argument("--votes", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch and llama.cpp threads.")
    ap.add_argument("--no-judge", action="store_true")
    ap.add_argument("--out", type=Path, help="Results folder (default bench/results).")
    args = ap.parse_args(argv)

    import torch

    from clawdesk import locations
    from clawdesk.chat import ChatService
    from clawdesk.engine import Engine
    from clawdesk.settings import load_settings
    from clawdesk.store import open_store

    torch.set_num_threads(args.threads)
    with isolated_home():
        settings = load_settings(env={}).replace(n_threads=args.threads, train_threads=args.threads)
        store = open_store(locations.db_path())
        engine = Engine(bundled_model_path(), n_ctx=2048, n_threads=args.threads)
        try:
            say(f"logging {args.samples} turns…")
            samples = log_samples(ChatService(store, engine, settings), args.samples, args.max_tokens)
            say("training step vs plain peft step…")
            train = bench_train(samples, settings, args.reps)
            judge = None if args.no_judge else (say("judge votes…") or
                                                bench_judge(engine, samples, settings, args.votes, args.judge_cases))
        finally:
            engine.close()
            store.close()

    b, tok = train["batch"], train["response_tokens"]
    rows = [["training step (combined objective)", b / train["step_s"], tok / train["step_s"], train["step_s"]],
            ["plain peft forward/backward/step", b / train["plain_step_s"], tok / train["plain_step_s"], train["plain_step_s"]],
            ["ratio (ClawDesk / plain)", ratio(train["plain_step_s"], train["step_s"]),
             ratio(train["plain_step_s"], train["step_s"]), ratio(train["step_s"], train["plain_step_s"])]]
    text = markdown_table(["training (" + train["backend"] + f", batch {b}, {tok} response tokens)", "samples/s",
                           "response tokens/s", "s/step"], rows)
    text += "\n\n" + markdown_table(["measure", "value"], [
        ["student + teacher log-prob scoring, s/sample", train["score_s_per_sample"]],
        ["model load for training, s", train["load_s"]]]
        + ([["judge PRM votes/s", judge["reward_votes_per_s"]], ["judge hint votes/s", judge["hint_votes_per_s"]],
            ["failed votes", f"{judge['failed_votes']}/{judge['votes']}"]] if judge else []))
    print(text)
    out = write_results("training", {"args": {k: str(v) for k, v in vars(args).items()}, "train": train, "judge": judge},
                        args.out)
    say(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
