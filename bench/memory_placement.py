"""Where in the prompt does the bundled model follow a wish? The preference memory's placement.

For each scenario (``bench/scenarios/*.toml``, and the held-back ones with ``--heldback``), the
scenario's wish is put into a one-turn prompt at each placement and the reply is scored by the
scenario's own rules (``bench/scenarios.py``: compliance if it still answers, else 0):

- ``none``: no wish (the base rate);
- ``system``: the wish as the system prompt (it replaces the template's default persona);
- ``user``: appended to the user's message in parentheses — "question\\n\\n(wish)";
- ``user_tag``: appended under the teacher context's tag (docs/method.md §3);
- ``user_prefix``: before the user's message;
- ``exact``: as served by default — ``user``, with the quoted opening/ending words written by the
  engine and those wishes out of the note (``memory_literal``; needs ``--wording extracted``);
- ``limit``: ``exact``, and a length wish with a number held to it by the engine
  (``memory_word_limit``; needs ``--wording extracted``);
- ``format``: ``limit``, and a plain-text wish kept off Markdown's markers (``memory_plain_text``);
  the length wish is still stated in the note (served so until session 22);
- ``held``: ``format`` with the held length wish out of the note (served since session 22): the
  engine's limit alone keeps the reply short.

The placement is applied by ``MemoryNote.apply`` — the product's own code, the same that
ChatService uses — and every placement sees the same prompts with the same seeds (paired).
``--wording extracted`` states each wish the way the memory holds it after the scenario's complaints
went through the extraction rules and the profile, instead of the scenario's own sentence.

``--ttft`` also measures what the memory costs the KV-prefix reuse: a conversation of ``--turns``
turns through ChatService with the memory off, at the system prompt and at ``user``, reporting per
turn the time to first token and how many prompt tokens llama.cpp had to evaluate (the prompt
minus its common prefix with the previous turn's prompt and reply — a count, immune to the load
of a shared machine).

    .venv/bin/python bench/memory_placement.py [--heldback] [--samples 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, bundled_model_path, isolated_home, markdown_table, say, write_results  # noqa: E402
from bench.scenarios import SCENARIO_DIR, Scenario, load_scenarios  # noqa: E402

PLACEMENTS = ("none", "system", "user", "user_tag", "user_prefix", "exact", "limit", "format", "held")


def mean_se(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return statistics.fmean(values), se


def wish_text(scenario: Scenario, wording: str, literal: bool = False, word_limit: bool = False,
              plain: bool = False) -> tuple[str, Any]:
    """The scenario's own sentence, or the note the memory holds after the scenario's complaints,
    each sent as the next message after a reply (the real extraction and profile, in a temp store);
    with ``literal``, the note and the quoted words as served with ``memory_literal`` on."""
    from clawdesk.memory import Literals, Memory

    if wording == "preference":
        return scenario.preference, Literals()
    from clawdesk.settings import Settings
    from clawdesk.store import open_store

    with isolated_home() as home:
        store = open_store(home / "wishes.db")
        memory = Memory(store, Settings().replace(memory_literal=literal, memory_word_limit=word_limit,
                                                  memory_plain_text=plain))
        cid, parent = store.new_conversation("bench").id, None
        for complaint in scenario.complaints:
            question = store.add_message(cid, "user", "A question.", parent_id=parent)
            reply = store.add_message(cid, "assistant", "An answer.", parent_id=question.id)
            said = store.add_message(cid, "user", complaint, parent_id=reply.id)
            memory.learn_from_message(said, after_reply=True)
            parent = said.id
        note, literals = memory.note(), memory.literals()
        store.close()
    return (note.text if note else ""), literals


def run_placements(args: argparse.Namespace, scenarios: list[Scenario]) -> list[dict[str, Any]]:
    from clawdesk.engine import Engine
    from clawdesk.records import MemoryNote

    engine = Engine(bundled_model_path(), n_ctx=2048, n_threads=args.threads)
    rows: list[dict[str, Any]] = []
    for sc in scenarios:
        wish, _ = wish_text(sc, args.wording)
        # one reading of the complaints; each served placement holds the reply to part of it. The
        # note without the word limit held keeps the length wish (exact, limit, format); held's not.
        exact_wish, _ = wish_text(sc, args.wording, literal=True, word_limit=False, plain=True)
        held_wish, formatted = wish_text(sc, args.wording, literal=True, word_limit=True, plain=True)
        limited = dataclasses.replace(formatted, plain=False)
        literals = dataclasses.replace(limited, max_words=0)
        prompts = (sc.heldout if args.pool == "heldout" else sc.train)[: args.prompts]
        start = time.perf_counter()
        for placement in args.placements:
            served = placement in ("exact", "limit", "format", "held")
            words = held_wish if placement == "held" else exact_wish if served else wish
            written = {"exact": literals, "limit": limited, "format": formatted, "held": formatted}.get(placement)
            note = MemoryNote("user" if served else placement, words) \
                if placement != "none" and words else None
            for i, prompt in enumerate(prompts):
                for sample in range(args.samples):
                    messages = [{"role": "user", "content": prompt.text}]
                    if note is not None:
                        messages = note.apply(messages)
                    seed = args.seed + 1000 * sample + i  # the same for every placement: paired
                    gen = engine.generate(messages, temperature=args.temperature, top_p=0.95, top_k=40,
                                          repeat_penalty=1.1, max_tokens=args.max_tokens, seed=seed,
                                          **(written.generate_args() if written else {}))
                    s = sc.score(gen.text, prompt)
                    rows.append({"scenario": sc.name, "placement": placement, "prompt": prompt.text, "seed": seed,
                                 "score": s.score, "compliance": s.compliance, "answers": s.answers,
                                 "finish": gen.finish_reason, "reply": gen.text})
        got = {p: statistics.fmean(r["score"] for r in rows if r["scenario"] == sc.name and r["placement"] == p)
               for p in args.placements}
        say(f"{sc.name}: " + "  ".join(f"{p} {v:.2f}" for p, v in got.items())
            + f"  ({time.perf_counter() - start:.0f} s; wish: {wish!r})")
    engine.close()
    return rows


def summarise(rows: list[dict[str, Any]], placements: list[str]) -> dict[str, Any]:
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    table: dict[str, Any] = {}
    for p in placements:
        mine = [r for r in rows if r["placement"] == p]
        per = {sc: statistics.fmean(r["score"] for r in mine if r["scenario"] == sc) for sc in scenarios}
        m, se = mean_se([r["score"] for r in mine])
        table[p] = {"per_scenario": per, "mean": m, "se": se,
                    "compliance": statistics.fmean(r["compliance"] for r in mine),
                    "answer_rate": statistics.fmean(r["answers"] for r in mine)}
        if "system" in placements and p != "system":
            table[p]["vs_system"] = paired(rows, p, "system")
    return {"scenarios": scenarios, "placements": table}


def paired(rows: list[dict[str, Any]], a: str, b: str) -> tuple[float, float]:
    """Mean ± s.e. of score(a) − score(b) over the replies both placements got (same prompt, same seed)."""
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return r["scenario"], r["prompt"], r.get("seed", r.get("sample")), r.get("run", 0)

    other = {key(r): r["score"] for r in rows if r["placement"] == b}
    return mean_se([r["score"] - other[key(r)] for r in rows if r["placement"] == a and key(r) in other])


def table(summary: dict[str, Any]) -> str:
    headers = ["placement", *summary["scenarios"], "mean ± s.e.", "vs system (paired)", "compliance", "answers"]
    return markdown_table(headers, [[p, *[v["per_scenario"][s] for s in summary["scenarios"]],
                                     f"{v['mean']:.2f} ± {v['se']:.2f}",
                                     f"{v['vs_system'][0]:+.2f} ± {v['vs_system'][1]:.2f}" if "vs_system" in v else "–",
                                     v["compliance"], v["answer_rate"]]
                                    for p, v in summary["placements"].items()])


def merge(args: argparse.Namespace) -> dict[str, Any]:
    runs = [json.loads(path.read_text()) for path in args.merge]
    common = [p for p in runs[0]["summary"]["placements"] if all(p in r["summary"]["placements"] for r in runs)]
    rows = [{**row, "run": i} for i, r in enumerate(runs) for row in r["rows"] if row["placement"] in common]
    summary = summarise(rows, common)
    print(table(summary))
    result = {"merged": [str(p) for p in args.merge], "summary": summary, "rows": rows}
    say(f"wrote {write_results(args.name + '-merged', result, args.out)}")
    return result


def run_ttft(args: argparse.Namespace) -> dict[str, Any]:
    """Time to first token per turn of one conversation, memory off / system / user (ChatService)."""
    from clawdesk.chat import ChatService
    from clawdesk.engine import Engine
    from clawdesk.settings import Settings
    from clawdesk.store import open_store

    questions = ["What is a volcano?", "Why do cats purr?", "How do tides work?", "What is gravity?",
                 "How do bees make honey?", "What is electricity?", "Why do we dream?", "What is a haiku?",
                 "How do magnets work?", "What is inflation?", "How do vaccines work?", "What is a black hole?"]
    out: dict[str, Any] = {}
    engine = Engine(bundled_model_path(), n_ctx=2048, n_threads=args.threads)
    for placement in ("off", "system", "user"):
        with isolated_home() as home:
            store = open_store(home / "ttft.db")
            settings = Settings().replace(temperature=0.0, seed=0, max_tokens=args.ttft_tokens, memory_placement=placement)
            chat = ChatService(store, engine, settings)
            chat.memory.add("Keep every answer under 30 words.")
            chat.memory.add("Call me Dana.")
            cid = chat.new_conversation().id
            engine.generate([{"role": "user", "content": "warm up"}], max_tokens=1)  # empty the KV cache's prefix
            turns: list[dict[str, Any]] = []
            cache: list[int] = []  # what llama.cpp holds after the previous turn: its prompt and reply
            for q in questions[: args.turns]:
                gen = chat.send(cid, q).generation
                ids = gen.prompt_token_ids
                kept = next((i for i, (a, b) in enumerate(zip(ids, cache)) if a != b), min(len(ids), len(cache)))
                turns.append({"ttft_ms": gen.ttft_s * 1000, "prompt_tokens": len(ids), "evaluated": len(ids) - kept})
                cache = ids + gen.response_token_ids
            store.close()
        out[placement] = turns
        say(f"ttft {placement}: " + " ".join(f"{t['ttft_ms']:.0f}" for t in turns) + " ms; evaluated "
            + " ".join(str(t["evaluated"]) for t in turns) + " tokens")
    engine.close()
    return out


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bench/memory_placement.py", description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", help="Comma-separated scenario names (default all).")
    ap.add_argument("--heldback", action="store_true", help="Also the held-back scenarios (bench/scenarios/heldback).")
    ap.add_argument("--placements", default=",".join(PLACEMENTS), help=f"Comma-separated, of {', '.join(PLACEMENTS)}.")
    ap.add_argument("--wording", choices=("preference", "extracted"), default="preference",
                    help="The scenario's own sentence, or the wish the extraction rules make of its complaints.")
    ap.add_argument("--pool", choices=("heldout", "train"), default="heldout", help="Which prompt pool (default heldout).")
    ap.add_argument("--prompts", type=int, default=8, help="Prompts per scenario (default 8).")
    ap.add_argument("--samples", type=int, default=1, help="Replies per prompt and placement (default 1).")
    ap.add_argument("--seed", type=int, default=0, help="Base sampling seed; another one gives more samples to --merge.")
    ap.add_argument("--temperature", type=float, default=0.5, help="Sampling temperature (default 0.5).")
    ap.add_argument("--max-tokens", dest="max_tokens", type=int, default=160, help="Longest reply (default 160).")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1).")
    ap.add_argument("--ttft", action="store_true", help="Also time the first token per turn with the memory on/off.")
    ap.add_argument("--turns", type=int, default=8, help="Turns of the --ttft conversation (default 8).")
    ap.add_argument("--ttft-tokens", dest="ttft_tokens", type=int, default=48, help="Reply length in --ttft (default 48).")
    ap.add_argument("--out", type=Path, default=RESULTS, help="Where the JSON goes.")
    ap.add_argument("--name", default="memory_placement", help="Results file name prefix.")
    ap.add_argument("--merge", nargs="+", type=Path, help="Only summarise the rows of these result files together "
                                                         "(runs with different --seed), for the placements all have.")
    return ap


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    if args.merge:
        return merge(args)
    args.placements = [p.strip() for p in args.placements.split(",") if p.strip()]
    unknown = set(args.placements) - set(PLACEMENTS)
    if unknown:
        raise SystemExit(f"unknown placement(s): {', '.join(sorted(unknown))}")
    names = args.scenarios.split(",") if args.scenarios else None
    held = SCENARIO_DIR / "heldback"
    if names:  # with --heldback, a name may be a held-back scenario
        heldback = {p.stem for p in held.glob("*.toml")} if args.heldback else set()
        scenarios = [load_scenarios([n], folder=held if n in heldback else SCENARIO_DIR)[0] for n in names]
    else:
        scenarios = load_scenarios() + (load_scenarios(folder=held) if args.heldback else [])
    rows = run_placements(args, scenarios)
    summary = summarise(rows, args.placements)
    result: dict[str, Any] = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "summary": summary, "rows": rows}
    if args.ttft:
        result["ttft"] = run_ttft(args)
    print(table(summary))
    if args.ttft:
        ttft = result["ttft"]
        n = len(next(iter(ttft.values())))
        print()
        print(markdown_table(["turn", *[f"{p}: ttft ms, tokens evaluated / prompt" for p in ttft]],
                             [[i + 1, *[f"{ttft[p][i]['ttft_ms']:.0f}, {ttft[p][i]['evaluated']} / {ttft[p][i]['prompt_tokens']}"
                                        for p in ttft]] for i in range(n)]))
    path = write_results(args.name, result, args.out)
    say(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
