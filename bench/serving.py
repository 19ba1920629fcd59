"""Serving speed: ClawDesk's Engine against raw llama-cpp-python on the same GGUF.

What it measures (medians over ``--reps``; ratios are Engine / raw, measured in the same run):

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

    .venv/bin/python bench/serving.py [--reps 3] [--turns 20] [--threads 0]
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

from bench.common import bundled_model_path, markdown_table, median, ratio, say, write_results  # noqa: E402
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


def bench_decode(engine: Engine, llm: Any, reps: int, tokens: int) -> dict[str, Any]:
    rows: dict[str, list[float]] = {"engine": [], "raw_generate": [], "raw_completion_e2e": [], "engine_e2e": []}
    lengths = []
    for r in range(reps):
        ids = engine.render(messages(f"Session {r}-{time.time_ns()}. You are a storyteller.", LONG_ASK))
        ttft, total, n = engine_generate(engine, ids, tokens)
        rows["engine"].append(decode_rate(ttft, total, n))
        rows["engine_e2e"].append(n / total)
        lengths.append(n)
        llm.reset()
        ttft, total, n = raw_generate(llm, ids, tokens, engine._eog)
        rows["raw_generate"].append(decode_rate(ttft, total, n))
        llm.reset()
        text = llm.detokenize(ids, special=True).decode("utf-8")  # the same prompt as text
        start = time.perf_counter()
        out = llm.create_completion(text, max_tokens=tokens, temperature=0.0, top_k=1, top_p=1.0,
                                    repeat_penalty=1.0)
        rows["raw_completion_e2e"].append(out["usage"]["completion_tokens"] / (time.perf_counter() - start))
        llm.reset()
    return {k: median(v) for k, v in rows.items()} | {"tokens": median(lengths)}


def bench_prefill(engine: Engine, llm: Any, reps: int, target: int) -> dict[str, Any]:
    body = ""
    while len(engine.tokenize(body)) < target:
        body += FILLER
    eng, raw, lengths = [], [], []
    for r in range(reps):
        ids = engine.render(messages(f"Run {r}-{time.time_ns()}.", body + "\nSummarise this."))
        ttft, _, _ = engine_generate(engine, ids, 1)
        eng.append(len(ids) / ttft)
        llm.reset()
        ttft, _, _ = raw_generate(llm, ids, 1, engine._eog)
        raw.append(len(ids) / ttft)
        llm.reset()
        lengths.append(len(ids))
    return {"engine": median(eng), "raw_generate": median(raw), "prompt_tokens": median(lengths)}


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


def bench_conversation(engine: Engine, llm: Any, reps: int, turns: int, reply_tokens: int) -> dict[str, Any]:
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

    modes = {"engine (KV prefix kept)": with_engine(False), "engine, cache reset each turn": with_engine(True),
             "raw generate (prefix kept)": with_raw(False), "raw generate, reset each turn": with_raw(True)}
    out: dict[str, Any] = {}
    for name, step in modes.items():
        say(f"  {name}")
        first, last, mean_all, tokens = [], [], [], []
        for r in range(reps):
            engine._llm.reset()
            llm.reset()
            trace = conversation(step, turns, reply_tokens, f"{name}-{r}-{time.time_ns()}", engine)
            first.append(trace[0][0])
            last.append(trace[-1][0])
            mean_all.append(sum(t for t, _ in trace) / len(trace))
            tokens.append(trace[-1][1])
        out[name] = {"ttft_turn1_ms": 1000 * median(first), f"ttft_turn{turns}_ms": 1000 * median(last),
                     "ttft_mean_ms": 1000 * median(mean_all), "last_prompt_tokens": median(tokens)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--decode-tokens", type=int, default=128)
    ap.add_argument("--prefill-tokens", type=int, default=400)
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--reply-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0 = all cores)")
    ap.add_argument("--out", type=Path, help="Results folder (default bench/results).")
    args = ap.parse_args(argv)

    from llama_cpp import Llama

    path = bundled_model_path()
    engine = Engine(path, n_ctx=4096, n_threads=args.threads)
    llm = Llama(model_path=path, n_ctx=4096, n_threads=engine.n_threads, n_threads_batch=engine.n_threads,
                verbose=False, seed=0)
    try:
        say("decode…")
        decode = bench_decode(engine, llm, args.reps, args.decode_tokens)
        say("prefill…")
        prefill = bench_prefill(engine, llm, args.reps, args.prefill_tokens)
        say(f"{args.turns}-turn conversations…")
        conv = bench_conversation(engine, llm, args.reps, args.turns, args.reply_tokens)
    finally:
        engine.close()
        llm.close()

    key_last = f"ttft_turn{args.turns}_ms"
    rows = [
        ["decode tokens/s", decode["engine"], decode["raw_generate"], ratio(decode["engine"], decode["raw_generate"])],
        ["end-to-end tokens/s (vs create_completion)", decode["engine_e2e"], decode["raw_completion_e2e"],
         ratio(decode["engine_e2e"], decode["raw_completion_e2e"])],
        [f"prefill tokens/s ({prefill['prompt_tokens']:.0f}-token prompt)", prefill["engine"], prefill["raw_generate"],
         ratio(prefill["engine"], prefill["raw_generate"])],
    ]
    ce, cr = conv["engine (KV prefix kept)"], conv["raw generate (prefix kept)"]
    rows.append(["TTFT ms, turn 1", ce["ttft_turn1_ms"], cr["ttft_turn1_ms"], ratio(ce["ttft_turn1_ms"], cr["ttft_turn1_ms"])])
    rows.append([f"TTFT ms, turn {args.turns} ({ce['last_prompt_tokens']:.0f}-token context)", ce[key_last],
                 cr[key_last], ratio(ce[key_last], cr[key_last])])
    table = markdown_table(["measure", "Engine", "raw llama-cpp-python", "Engine / raw"], rows)
    reset = conv["engine, cache reset each turn"]
    conv_rows = [[name, m["ttft_turn1_ms"], m[key_last], m["ttft_mean_ms"], ratio(m["ttft_mean_ms"], reset["ttft_mean_ms"])]
                 for name, m in conv.items()]
    conv_table = markdown_table(["conversation mode", "TTFT turn 1 (ms)", f"TTFT turn {args.turns} (ms)",
                                 "mean TTFT (ms)", "mean vs Engine with reset"], conv_rows)
    print(table + "\n\n" + conv_table)
    path_out = write_results("serving", {"args": vars(args) | {"out": str(args.out or "")}, "decode": decode,
                                         "prefill": prefill, "conversation": conv}, args.out)
    say(f"results: {path_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
