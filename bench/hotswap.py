"""Hot swap: from "a new version is promoted" to "the next turn is served by it".

Setup: two real LoRA adapters for the bundled model (tiny peft LoRAs with random B matrices,
written to GGUF by ``clawdesk.export.adapter.peft_to_gguf_lora``), registered as versions in a
store in a temp ``CLAWDESK_HOME``. A promotion is what the pipeline does: one state change in the
store (``served_adapter``), possibly from another process.

Measured (medians over ``--reps``):

1. **swap apply** — ``Engine.request_swap`` on an idle engine (llama.cpp loads the adapter
   into the running model and drops the KV cache);
2. **promotion → next turn served by it, engine level** — a watcher polls the store the way
   the TUI does (every ``--poll`` s) and requests the swap; time from ``set_served`` to the
   swap being applied, and the next turn's logged ``adapter_version``;
3. **a turn in progress finishes on the old weights** — a swap requested while a greedy reply
   is being generated; the reply must be token-identical to the same reply without any swap,
   and the turn after it must carry the new version;
4. **TUI, keystrokes during a swap** — the real ``ClawDeskApp`` driven by Textual's Pilot:
   a promotion happens while a sentence is being typed into the prompt; time until the status
   bar shows the new version, and whether every keystroke arrived.

    .venv/bin/python bench/hotswap.py [--reps 5] [--poll 0.25] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import bundled_model_path, isolated_home, markdown_table, median, say, write_results  # noqa: E402

TYPED = "does every key survive a swap?"


def make_adapters(model_path: str, out: Path, n: int = 2, rank: int = 4) -> list[tuple[Path, Path]]:
    """``n`` (peft folder, adapter GGUF) pairs with different random B matrices."""
    import torch
    from peft import LoraConfig, get_peft_model

    from clawdesk.engine.torch_model import load_model
    from clawdesk.export.adapter import peft_to_gguf_lora

    base, _ = load_model(model_path)
    pairs = []
    for i in range(n):
        torch.manual_seed(i + 1)
        cfg = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=[
            "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], task_type="CAUSAL_LM")
        model = get_peft_model(base, cfg)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0.0, 0.02)  # peft starts B at 0 (no effect); make the adapter change outputs
        peft_dir = out / f"peft{i}"
        model.save_pretrained(str(peft_dir))
        gguf = peft_to_gguf_lora(peft_dir, model_path, out / f"adapter{i}.gguf")
        pairs.append((peft_dir, gguf))
        base = model.unload()  # back to the plain base for the next adapter
    return pairs


def register(store, pairs: list[tuple[Path, Path]]) -> list[int]:
    return [store.add_adapter(str(peft), gguf_path=str(gguf)).version for peft, gguf in pairs]


def greedy(engine, ids: list[int], n: int, on_text=None):
    return engine.generate(prompt_ids=ids, temperature=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0,
                           max_tokens=n, seed=0, on_text=on_text)


def bench_apply(engine, store, versions: list[int], reps: int) -> list[float]:
    times = []
    for r in range(reps):
        v = versions[r % len(versions)]
        start = time.perf_counter()
        engine.request_swap(store.get_adapter(v).gguf_path, v)
        times.append(time.perf_counter() - start)
    engine.request_swap(None, None)
    return times


def bench_promotion(engine, chat, store, versions: list[int], reps: int, poll: float) -> dict[str, Any]:
    """A watcher thread polls the store like the TUI does; the user sends a turn right after."""
    from clawdesk.chat import served_adapter

    applied: dict[int | None, float] = {}
    engine.on_swap = lambda version: applied.__setitem__(version, time.perf_counter())
    stop = threading.Event()

    def watch(seen: str | None) -> None:
        while not stop.is_set():
            value = store_w.get_state("served_adapter")
            if value != seen:
                seen = value
                adapter, version, merged = served_adapter(store_w)
                engine.request_swap(adapter, version, model_path=merged)
            stop.wait(poll)

    from clawdesk import locations
    from clawdesk.store import open_store

    store_w = open_store(locations.db_path())  # the watcher's own connection, as the TUI has
    # Read the current value before the thread starts: a promotion racing the thread's first
    # read would otherwise go unnoticed.
    watcher = threading.Thread(target=watch, args=(store_w.get_state("served_adapter"),), daemon=True)
    watcher.start()
    latency, served_ok = [], 0
    conv = chat.new_conversation()
    try:
        for r in range(reps):
            v = versions[r % len(versions)]
            applied.pop(v, None)
            t0 = time.perf_counter()
            store.set_served(v)  # the promotion
            while v not in applied and time.perf_counter() - t0 < 30:
                time.sleep(0.005)
            latency.append(applied.get(v, float("nan")) - t0)
            turn = chat.send(conv.id, "Say hi.", max_tokens=4, temperature=0.0, seed=0)
            served_ok += int(turn.assistant.adapter_version == v)
    finally:
        stop.set()
        watcher.join()
        store_w.close()
        engine.on_swap = None
        store.set_served(None)
        engine.request_swap(None, None)
    return {"latency_s": latency, "next_turn_on_new_version": f"{served_ok}/{reps}"}


def bench_in_progress(engine, store, versions: list[int], reps: int, tokens: int) -> dict[str, Any]:
    """Swap requested mid-reply: the reply must equal the no-swap reply, token for token."""
    ids = engine.render([{"role": "user", "content": "Tell me about the ocean in detail."}])
    engine.request_swap(None, None)
    reference = greedy(engine, ids, tokens).response_token_ids
    same, next_new, requested_at = 0, 0, []  # requested_at: tokens out when the swap was asked for
    for r in range(reps):
        v = versions[r % len(versions)]
        engine.request_swap(None, None)
        swapper = threading.Thread(target=engine.request_swap, args=(store.get_adapter(v).gguf_path, v))
        count = [0]

        def on_text(_piece: str) -> None:
            count[0] += 1
            if count[0] == 3:
                swapper.start()  # from another thread, as the TUI's swap worker does

        gen = greedy(engine, ids, tokens, on_text=on_text)
        swapper.join()  # the request is in (pending, or applied if the turn had already ended)
        requested_at.append(count[0])
        same += int(gen.response_token_ids == reference)
        after = greedy(engine, ids, tokens)  # the next turn
        next_new += int(engine.adapter_version == v and after.response_token_ids != reference)
    engine.request_swap(None, None)
    return {"turn_finished_on_old_weights": f"{same}/{reps}", "next_turn_on_new_weights": f"{next_new}/{reps}",
            "reference_tokens": len(reference), "swap_requested_after_tokens": requested_at}


def bench_tui(engine, settings, versions: list[int], poll: float) -> dict[str, Any]:
    """Type into the real TUI while a promotion is applied; did every keystroke arrive?"""
    from textual.widgets import TextArea

    from clawdesk import locations
    from clawdesk.store import open_store
    from clawdesk.tui import ClawDeskApp

    async def drive() -> dict[str, Any]:
        app = ClawDeskApp(settings=settings, engine=engine, poll_seconds=poll)
        other = open_store(locations.db_path())  # the pipeline writes from its own connection
        result: dict[str, Any] = {}
        try:
            async with app.run_test(size=(100, 30)) as pilot:
                await pilot.pause(0.2)
                half = len(TYPED) // 2
                for ch in TYPED[:half]:
                    await pilot.press("space" if ch == " " else ch)
                want = f"v{versions[0]}"
                seen_at = None
                t0 = time.perf_counter()
                other.set_served(versions[0])
                for ch in TYPED[half:]:
                    await pilot.press("space" if ch == " " else ch)
                    if seen_at is None and want in str(app.status.adapter):
                        seen_at = time.perf_counter()
                deadline = time.perf_counter() + 30
                while seen_at is None and time.perf_counter() < deadline:
                    await pilot.pause(0.01)
                    if want in str(app.status.adapter):
                        seen_at = time.perf_counter()
                result["promotion_to_status_s"] = (seen_at or float("nan")) - t0
                result["engine_version"] = engine.adapter_version
                text = app.query_one("#prompt", TextArea).text
                result["typed"] = len(TYPED)
                result["received"] = len(text)
                result["keystrokes_lost"] = int(text != TYPED)
                result["status_adapter"] = str(app.status.adapter)
        finally:
            other.set_served(None)
            other.close()
        return result

    try:
        return asyncio.run(drive())
    finally:
        engine.request_swap(None, None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--poll", type=float, default=2.0, help="Store poll interval, as the TUI's (seconds).")
    ap.add_argument("--tokens", type=int, default=32, help="Length of the in-progress reply.")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads (1: robust on a busy 2-core box).")
    ap.add_argument("--no-tui", action="store_true", help="Skip the Pilot part.")
    ap.add_argument("--out", type=Path, help="Results folder (default bench/results).")
    args = ap.parse_args(argv)

    from clawdesk import locations
    from clawdesk.chat import ChatService
    from clawdesk.engine import Engine
    from clawdesk.settings import load_settings
    from clawdesk.store import open_store

    model_path = bundled_model_path()
    with isolated_home() as home:
        say("writing two LoRA adapters (peft → GGUF)…")
        start = time.perf_counter()
        pairs = make_adapters(model_path, home / "adapters-src")
        make_s = time.perf_counter() - start
        store = open_store(locations.db_path())
        versions = register(store, pairs)
        settings = load_settings(env={}).replace(n_threads=args.threads, temperature=0.0, seed=0, max_tokens=8)
        engine = Engine(model_path, n_ctx=1024, n_threads=args.threads)
        try:
            say("swap apply…")
            apply = bench_apply(engine, store, versions, args.reps)
            say("promotion → next turn…")
            promo = bench_promotion(engine, ChatService(store, engine, settings), store, versions, args.reps, args.poll)
            say("swap during a turn…")
            progress = bench_in_progress(engine, store, versions, args.reps, args.tokens)
            tui = None if args.no_tui else (say("TUI (Pilot)…") or bench_tui(engine, settings, versions, args.poll))
        finally:
            engine.close()
            store.close()

    rows = [["swap apply (request_swap, idle engine)", f"{1000 * median(apply):.1f} ms", ""],
            [f"promotion → swap applied (poll every {args.poll:g} s)", f"{1000 * median(promo['latency_s']):.0f} ms",
             f"next turn on the new version: {promo['next_turn_on_new_version']}"],
            ["swap requested mid-reply", "", f"reply unchanged (old weights): {progress['turn_finished_on_old_weights']}; "
             f"next turn on new weights: {progress['next_turn_on_new_weights']}"]]
    if tui:
        rows.append(["TUI: promotion → status bar shows it", f"{1000 * tui['promotion_to_status_s']:.0f} ms",
                     f"keystrokes lost: {tui['keystrokes_lost']} ({tui['received']}/{tui['typed']} chars arrived)"])
    print(markdown_table(["measure", "median", "check"], rows))
    out = write_results("hotswap", {"args": {k: str(v) for k, v in vars(args).items()}, "adapter_build_s": make_s,
                                    "apply_s": apply, "promotion": promo, "in_progress": progress, "tui": tui},
                        args.out)
    say(f"results: {out}")
    failed = progress["turn_finished_on_old_weights"] != f"{args.reps}/{args.reps}" or (tui and tui["keystrokes_lost"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
