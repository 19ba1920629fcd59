"""Serving speed: ClawDesk's Engine against raw llama-cpp-python on the same GGUF.

What it measures (ratios are Engine / raw, measured in the same run). Each measure runs in paired
rounds — one Engine run and one raw run back to back, their order alternating — until the 95%
confidence interval of the ratio is within ±``--ci`` (bench/paired.py): a ratio of two medians
taken one after the other moved by ±10% between quiet runs at 3 repetitions.

- **decode tokens/s** — greedy continuation of a prompt that makes the model write at length,
  timed after the first token; raw = ``Llama.generate`` token loop, and end-to-end tokens/s of
  ``Llama.create_completion`` on the same prompt text as a second baseline;
- **prefill tokens/s** — a ~``--prefill-tokens`` prompt, one token generated, prompt tokens / time
  to first token;
- **time to first token in a conversation** — turn 1 vs turn ``--turns`` of a conversation that
  grows as a chat does (each reply goes back into the context). The Engine keeps the KV cache of
  the previous turn and only evaluates the new tokens (llama.cpp's prompt cache); the
  comparison resets the cache before every turn, so the whole history is evaluated again.

Every repetition starts with a system line of its own, so nothing is reused *between*
repetitions by accident. The base model with an adapter vs merged is bench/serve_formats.py.

    .venv/bin/python bench/serving.py [--ci 0.03] [--min-rounds 6] [--max-rounds 30] [--turns 20] [--threads 1]
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

from bench.common import bundled_model_path, markdown_table, say, write_results  # noqa: E402
from bench.paired import interleave  # noqa: E402
from clawdesk.engine import Engine  # noqa: E402

LONG_ASK = "Write a long, detailed story about a lighthouse keeper and a storm. Use many paragraphs."
FILLER = ("The history of the lighthouse begins with fires lit on hilltops to guide ships at night. "
          "Later, towers were built and lamps burned oil behind polished reflectors and lenses. ")
CHAT = ["What is a good name for a cat?", "Why that one?", "What do cats eat?", "How often should I feed it?",
        "Is milk good for cats?", "How do I keep it indoors happily?", "What toys do cats like?",
        "How long do cats sleep?", "Why do cats purr?", "How do I trim its claws?"]


def messages(system: str, user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def raw_generate(llm: Any, prompt_ids: list[int], max_tokens: int, eog) -> tuple[float, float, int]:
    """(ttft, total seconds, tokens) of the plain ``Llama.generate`` loop, greedy."""
    start = time.perf_counter()
    ttft, n = 0.0, 0
    gen = llm.generate(prompt_ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0)
    try:
        for tok in gen:
            if n == 0:
                ttft = time.perf_counter() - start
            n += 1
            if eog(tok) or n >= max_tokens:
                break
    finally:
        gen.close()
    return ttft, time.perf_counter() - start, n


def engine_generate(engine: Engine, prompt_ids: list[int], max_tokens: int) -> tuple[float, float, int]:
    g = engine.generate(prompt_ids=prompt_ids, temperature=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0,
                        max_tokens=max_tokens, seed=0)
    return g.ttft_s, g.duration_s, len(g.response_token_ids)


def decode_rate(ttft: float, total: float, n: int) -> float:
    return (n - 1) / (total - ttft) if n > 1 and total > ttft else float("nan")


def decode_sides(engine: Engine, llm: Any, tokens: int):
    """(raw, engine) measures of one round: decode tokens/s after the first token, and
    end-to-end tokens/s (raw: ``create_completion`` on the same prompt as text)."""
    def prompt(r: int, side: str) -> list[int]:
        return engine.render(messages(f"Session {r}-{side}-{time.time_ns()}. You are a storyteller.", LONG_ASK))

    def raw(r: int) -> dict[str, float]:
        ids = prompt(r, "raw")
        llm.reset()
        ttft, total, n = raw_generate(llm, ids, tokens, engine._eog)
        llm.reset()
        text = llm.detokenize(ids, special=True).decode("utf-8")
        start = time.perf_counter()
        out = llm.create_completion(text, max_tokens=tokens, temperature=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0)
        llm.reset()
        return {"decode": decode_rate(ttft, total, n), "e2e": out["usage"]["completion_tokens"] / (time.perf_counter() - start)}

    def eng(r: int) -> dict[str, float]:
        ttft, total, n = engine_generate(engine, prompt(r, "engine"), tokens)
        return {"decode": decode_rate(ttft, total, n), "e2e": n / total}
    return raw, eng


def prefill_sides(engine: Engine, llm: Any, target: int):
    """(raw, engine): prompt tokens per second of time to first token on a ~``target``-token prompt."""
    body = ""
    while len(engine.tokenize(body)) < target:
        body += FILLER

    def prompt(r: int, side: str) -> list[int]:
        return engine.render(messages(f"Run {r}-{side}-{time.time_ns()}.", body + "\nSummarise this."))

    def raw(r: int) -> dict[str, float]:
        ids = prompt(r, "raw")
        llm.reset()
        ttft, _, _ = raw_generate(llm, ids, 1, engine._eog)
        llm.reset()
        return {"prefill": len(ids) / ttft, "prompt_tokens": len(ids)}

    def eng(r: int) -> dict[str, float]:
        ids = prompt(r, "engine")
        ttft, _, _ = engine_generate(engine, ids, 1)
        return {"prefill": len(ids) / ttft}
    return raw, eng


def conversation(step, turns: int, reply_tokens: int, tag: str, engine: Engine) -> list[tuple[float, int]]:
    """Play a conversation of ``turns`` turns; ``step(prompt_ids)`` → (ttft, reply ids).
    Returns (ttft, prompt tokens) per turn."""
    history = [{"role": "system", "content": f"Conversation {tag}. You are a helpful assistant."}]
    out = []
    for t in range(turns):
        history.append({"role": "user", "content": CHAT[t % len(CHAT)]})
        ids = engine.render(history)
        ttft, reply = step(ids)
        out.append((ttft, len(ids)))
        history.append({"role": "assistant", "content": engine.detokenize(reply).replace("<|im_end|>", "")})
    return out


def bench_conversation(engine: Engine, llm: Any, turns: int, reply_tokens: int, rounds: dict[str, Any]) -> dict[str, Any]:
    def with_engine(reset: bool):
        def step(ids):
            if reset:
                engine._llm.reset()  # forget the KV prefix: the whole history is evaluated again
            g = engine.generate(prompt_ids=ids, temperature=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0,
                                max_tokens=reply_tokens, seed=0)
            return g.ttft_s, g.response_token_ids
        return step

    def with_raw(reset: bool):
        def step(ids):
            if reset:
                llm.reset()
            start = time.perf_counter()
            ttft, reply = 0.0, []
            gen = llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0)
            try:
                for tok in gen:
                    if not reply:
                        ttft = time.perf_counter() - start
                    reply.append(int(tok))
                    if engine._eog(tok) or len(reply) >= reply_tokens:
                        break
            finally:
                gen.close()
            return ttft, reply
        return step

    def sides(name_a: str, step_a, name_b: str, step_b, turns_n: int):
        def run(step, name):
            def measure(r: int) -> dict[str, float]:
                engine._llm.reset()
                llm.reset()
                trace = conversation(step, turns_n, reply_tokens, f"{name}-{r}-{time.time_ns()}", engine)
                return {"ttft_turn1_ms": 1000 * trace[0][0], "ttft_last_ms": 1000 * trace[-1][0],
                        "ttft_mean_ms": 1000 * sum(t for t, _ in trace) / len(trace), "last_prompt_tokens": trace[-1][1]}
            return measure
        return run(step_a, name_a), run(step_b, name_b)

    out: dict[str, Any] = {}
    # Engine vs raw, both keeping the KV prefix: the Engine's own overhead.
    raw_m, eng_m = sides("raw", with_raw(False), "engine", with_engine(False), turns)
    say("  Engine vs raw generate, KV prefix kept by both")
    out["engine_vs_raw"] = interleave(raw_m, eng_m, ["ttft_turn1_ms", "ttft_last_ms", "ttft_mean_ms"], **rounds)
    # The Engine keeping its prefix vs the Engine re-evaluating the history: what the cache buys.
    reset_m, kept_m = sides("reset", with_engine(True), "kept", with_engine(False), turns)
    say("  Engine, prefix kept vs cache reset each turn")
    out["kept_vs_reset"] = interleave(reset_m, kept_m, ["ttft_last_ms", "ttft_mean_ms"], **rounds)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ci", type=float, default=0.03, help="stop when each ratio's 95%% CI is within ± this fraction")
    ap.add_argument("--min-rounds", type=int, default=6)
    ap.add_argument("--max-rounds", type=int, default=30)
    ap.add_argument("--decode-tokens", type=int, default=128)
    ap.add_argument("--prefill-tokens", type=int, default=400)
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--reply-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads (1: least noise; 0 = all cores)")
    ap.add_argument("--out", type=Path, help="Results folder (default bench/results).")
    args = ap.parse_args(argv)
    rounds = {"min_rounds": args.min_rounds, "max_rounds": args.max_rounds, "rel_halfwidth": args.ci}

    from llama_cpp import Llama

    path = bundled_model_path()
    engine = Engine(path, n_ctx=4096, n_threads=args.threads)
    llm = Llama(model_path=path, n_ctx=4096, n_threads=engine.n_threads, n_threads_batch=engine.n_threads,
                verbose=False, seed=0)
    try:
        say("decode…")
        decode = interleave(*decode_sides(engine, llm, args.decode_tokens), ["decode", "e2e"], **rounds)
        say("prefill…")
        prefill = interleave(*prefill_sides(engine, llm, args.prefill_tokens), ["prefill"], **rounds)
        say(f"{args.turns}-turn conversations…")
        conv = bench_conversation(engine, llm, args.turns, args.reply_tokens, rounds)
    finally:
        engine.close()
        llm.close()

    def row(label: str, result: dict[str, Any], name: str) -> list[Any]:
        m = result["measures"][name]
        low, high = m["ci95"]
        return [label, m["b_median"], m["a_median"], m["ratio"], f"{low:.3f}–{high:.3f}", m["rounds"]]

    ev = conv["engine_vs_raw"]
    rows = [row("decode tokens/s", decode, "decode"),
            row("end-to-end tokens/s (raw: create_completion)", decode, "e2e"),
            row(f"prefill tokens/s (~{args.prefill_tokens}-token prompt)", prefill, "prefill"),
            row("TTFT ms, turn 1", ev, "ttft_turn1_ms"),
            row(f"TTFT ms, turn {args.turns}", ev, "ttft_last_ms")]
    table = markdown_table(["measure", "Engine (median)", "raw llama-cpp-python (median)", "Engine / raw",
                            "95% CI", "rounds"], rows)
    kr = conv["kept_vs_reset"]
    conv_table = markdown_table(["Engine, KV prefix kept vs reset each turn", "kept (median)", "reset (median)",
                                 "kept / reset", "95% CI", "rounds"],
                                [row(f"TTFT ms, turn {args.turns}", kr, "ttft_last_ms"),
                                 row("mean TTFT ms over the conversation", kr, "ttft_mean_ms")])
    print(table + "\n\n" + conv_table)
    path_out = write_results("serving", {"args": vars(args) | {"out": str(args.out or "")}, "decode": decode,
                                         "prefill": prefill, "conversation": conv}, args.out)
    say(f"results: {path_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
