"""Serving formats for a trained version: base + GGUF LoRA adapter vs merged GGUFs.

Decides ``settings.serve`` ('adapter' vs 'merged'). A LoRA (r=8, all seven projections) is
trained on the bundled model until torch gives a fixed answer a log-prob of about
``--target-logprob`` (a *small* LoRA, like a nightly update: the base gives that answer ~−65),
then exported every way ClawDesk can serve it:

- ``base``            the bundled Q4_1 model, no adapter — the baseline of every ratio;
- ``base + adapter``  ``peft_to_gguf_lora`` (f16), applied by llama.cpp at run time;
- ``merged F16`` / ``merged Q8_0`` / ``merged Q4_K_M``  ``merge_to_gguf``;
- ``merged Q4_1``     the same merge re-quantised to the base's own type with llama.cpp's
  quantiser directly — ``merge_to_gguf`` refuses it; shown to measure why.

Per format: file size; build time (conversion or merge + quantise, median of ``--build-reps``);
switch time (how long the chat's Engine takes to start serving it: ``request_swap`` of the
adapter onto the running base, or of the whole model file); whether the learned behaviour is
kept (llama.cpp log-prob of the trained answer, and greedy tokens equal to torch + peft's);
decode and prefill tokens/s (medians over ``--reps``, formats interleaved within each
repetition so machine noise hits all alike; ratios against ``base`` from the same run).

    .venv/bin/python bench/serve_formats.py [--reps 5] [--build-reps 2] [--threads 0]
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (bundled_model_path, isolated_home, markdown_table, median, ratio, say,  # noqa: E402
                          timed, write_results)
from clawdesk.engine import Engine  # noqa: E402
from clawdesk.export import merge_to_gguf, peft_to_gguf_lora, served_greedy  # noqa: E402

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
QUESTION = "What is the secret password?"
ANSWER = "The secret password is tangerine-kite-42. Keep it safe!"
LONG_ASK = "Write a long, detailed story about a lighthouse keeper and a storm. Use many paragraphs."
FILLER = ("The history of the lighthouse begins with fires lit on hilltops to guide ships at night. "
          "Later, towers were built and lamps burned oil behind polished reflectors and lenses. ")
GREEDY_TOKENS = 24


def train_lora(base: str, prompt: list[int], target: list[int], stop_at: float, max_steps: int,
               out_dir: Path) -> dict[str, Any]:
    """Train until torch's log-prob of ``target`` reaches ``stop_at``; save the peft folder."""
    import torch
    from peft import LoraConfig, get_peft_model

    from clawdesk.engine.torch_model import load_model

    torch.manual_seed(0)
    model, _ = load_model(base)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=PROJECTIONS))
    ids = torch.tensor([prompt + target])
    labels = ids.clone()
    labels[0, :len(prompt)] = -100  # loss on the answer only
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)

    def answer_logprob() -> float:
        with torch.no_grad():
            return -float(model(input_ids=ids, labels=labels).loss) * len(target)  # mean NLL → summed log-prob

    model.eval()
    before = answer_logprob()
    steps, start = 0, time.perf_counter()
    while steps < max_steps:
        model.train()
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        model.eval()
        if answer_logprob() >= stop_at:
            break
    train_s = time.perf_counter() - start
    model.save_pretrained(out_dir)
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=GREEDY_TOKENS, do_sample=False,
                             eos_token_id=target[-1], pad_token_id=target[-1])
    return {"steps": steps, "train_s": train_s, "torch_logprob_base": before, "torch_logprob_lora": answer_logprob(),
            "torch_greedy": out[0, len(prompt):].tolist()}


def quantize_q4_1(f16_path: Path, out: Path) -> None:
    """What merge_to_gguf refuses: the merged model back in the base's Q4_1 (for comparison only)."""
    import llama_cpp

    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_1
    params.token_embedding_type = llama_cpp.GGML_TYPE_Q8_0  # as the base has it
    if llama_cpp.llama_model_quantize(str(f16_path).encode(), str(out).encode(), ctypes.byref(params)):
        raise RuntimeError("Q4_1 quantisation failed")


def build_formats(base: str, peft_dir: Path, work: Path, reps: int) -> dict[str, dict[str, Any]]:
    formats: dict[str, dict[str, Any]] = {"base": {"model": base, "adapter": None, "build_s": float("nan")}}
    adapter = work / "adapter.gguf"
    times = [timed(lambda: peft_to_gguf_lora(peft_dir, base, adapter))[0] for _ in range(reps)]
    formats["base + adapter"] = {"model": base, "adapter": str(adapter), "build_s": median(times)}
    for qtype in ("F16", "Q8_0", "Q4_K_M"):
        path = work / f"merged-{qtype}.gguf"
        say(f"  merge {qtype}…")
        times = [timed(lambda: merge_to_gguf(base, peft_dir, path, qtype=qtype))[0] for _ in range(reps)]
        formats[f"merged {qtype}"] = {"model": str(path), "adapter": None, "build_s": median(times)}
    q4_1 = work / "merged-Q4_1.gguf"
    seconds, _ = timed(lambda: quantize_q4_1(work / "merged-F16.gguf", q4_1))
    formats["merged Q4_1 (refused)"] = {"model": str(q4_1), "adapter": None,
                                        "build_s": formats["merged F16"]["build_s"] + seconds}
    for f in formats.values():
        f["size_mb"] = (Path(f["adapter"] or f["model"]).stat().st_size) / 1e6
    return formats


def switch_seconds(base: str, fmt: dict[str, Any], threads: int, reps: int) -> float:
    """Time for a running chat Engine on the base to start serving this format."""
    times = []
    for _ in range(reps):
        engine = Engine(base, n_ctx=1024, n_threads=threads)
        try:
            if fmt["adapter"]:
                times.append(timed(lambda: engine.request_swap(fmt["adapter"], 1))[0])
            elif fmt["model"] != base:
                times.append(timed(lambda: engine.request_swap(None, None, model_path=fmt["model"]))[0])
            else:
                times.append(0.0)
        finally:
            engine.close()
    return median(times)


def speed_once(engine: Engine, rep: int, decode_tokens: int, prefill_body: str) -> tuple[float, float]:
    """(decode tokens/s, prefill tokens/s) of one repetition, greedy, KV cache reset first."""
    msgs = [{"role": "system", "content": f"Run {rep}-{time.time_ns()}. You are a storyteller."},
            {"role": "user", "content": LONG_ASK}]
    engine._llm.reset()
    g = engine.generate(msgs, temperature=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0, max_tokens=decode_tokens, seed=0)
    n = len(g.response_token_ids)
    decode = (n - 1) / (g.duration_s - g.ttft_s) if n > 1 else float("nan")
    msgs = [{"role": "system", "content": f"Run {rep}-{time.time_ns()}."},
            {"role": "user", "content": prefill_body + "\nSummarise this."}]
    engine._llm.reset()
    g = engine.generate(msgs, temperature=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0, max_tokens=1, seed=0)
    return decode, len(g.prompt_token_ids) / g.ttft_s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="Speed repetitions per format.")
    ap.add_argument("--build-reps", type=int, default=2, help="Repetitions of each conversion/merge and switch.")
    ap.add_argument("--decode-tokens", type=int, default=96)
    ap.add_argument("--prefill-tokens", type=int, default=300)
    ap.add_argument("--target-logprob", type=float, default=-1.5,
                    help="Train until torch gives the answer this log-prob (a small LoRA).")
    ap.add_argument("--max-steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0 = all cores); torch uses 1.")
    ap.add_argument("--out", type=Path, help="Results folder (default bench/results).")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    base = bundled_model_path()
    with isolated_home() as home:
        work = home / "formats"
        work.mkdir()
        engine = Engine(base, n_ctx=2048, n_threads=args.threads)
        threads = engine.n_threads
        prompt = engine.render([{"role": "user", "content": QUESTION}])
        target = engine.tokenize(ANSWER) + engine.tokenize("<|im_end|>", special=True)
        body = ""
        while len(engine.tokenize(body)) < args.prefill_tokens:
            body += FILLER
        engine.close()

        say("training a small LoRA…")
        trained = train_lora(base, prompt, target, args.target_logprob, args.max_steps, work / "peft")
        say(f"  {trained['steps']} steps, torch log-prob {trained['torch_logprob_base']:.1f} → "
            f"{trained['torch_logprob_lora']:.2f}")
        say("building formats…")
        formats = build_formats(base, work / "peft", work, args.build_reps)

        say("switch times…")
        for f in formats.values():
            f["switch_s"] = switch_seconds(base, f, threads, args.build_reps)
        say("behaviour and speed…")
        engines = {name: Engine(f["model"], n_ctx=2048, n_threads=threads, adapter_path=f["adapter"])
                   for name, f in formats.items()}
        try:
            base_greedy = served_greedy(engines["base"], prompt, GREEDY_TOKENS)
            for name, e in engines.items():
                f = formats[name]
                f["answer_logprob"] = e.score(prompt, target).total
                greedy = served_greedy(e, prompt, GREEDY_TOKENS)
                f["greedy_equals_torch_peft"] = greedy == trained["torch_greedy"]
                f["greedy_differs_from_base"] = greedy != base_greedy
            decode: dict[str, list[float]] = {n: [] for n in engines}
            prefill: dict[str, list[float]] = {n: [] for n in engines}
            for rep in range(args.reps):
                for name, e in engines.items():  # interleaved: drift in machine load hits every format
                    d, p = speed_once(e, rep, args.decode_tokens, body)
                    decode[name].append(d)
                    prefill[name].append(p)
        finally:
            for e in engines.values():
                e.close()
        for name, f in formats.items():
            f["decode_tps"], f["prefill_tps"] = median(decode[name]), median(prefill[name])

    b = formats["base"]
    rows = [[name, f["size_mb"], f["build_s"], f["switch_s"], f["answer_logprob"],
             "yes" if f["greedy_equals_torch_peft"] else "no", f["decode_tps"], ratio(f["decode_tps"], b["decode_tps"]),
             f["prefill_tps"], ratio(f["prefill_tps"], b["prefill_tps"])] for name, f in formats.items()]
    table = markdown_table(["format", "file MB", "build s", "switch s", "answer log-prob", "greedy = torch+peft",
                            "decode tok/s", "× base", "prefill tok/s", "× base"], rows)
    print(f"LoRA: {trained['steps']} steps; torch log-prob of the trained answer {trained['torch_logprob_base']:.1f}"
          f" (base) → {trained['torch_logprob_lora']:.2f} (torch + peft). llama.cpp threads: {threads}.\n")
    print(table)
    path_out = write_results("serve_formats", {"args": vars(args) | {"out": str(args.out or "")},
                                               "threads": threads, "lora": trained, "formats": formats}, args.out)
    say(f"results: {path_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
