"""`clawdesk serve` against llama-cpp-python's own OpenAI server and against the Engine called
directly: decode tokens/s, time to first token, and throughput with 1, 2 and 4 clients.

Three sides, same GGUF (the bundled model), same context (2048), same threads, greedy, same
repeat penalty, same prompt (a fresh system line per round, so every side evaluates the whole
prompt):

- **Engine**: ``Engine.generate`` in this process, pieces timed by its ``on_text`` callback;
- **clawdesk serve**: the real command in a subprocess (its own store in a temp home), streamed
  over HTTP; it logs every turn to SQLite as it would for a user;
- **llama_cpp.server**: ``python -m llama_cpp.server`` in a subprocess, streamed the same way.

TTFT is request sent → first text piece received; decode tokens/s is (pieces − 1) / (last piece −
first piece); CPU ms per token is the CPU time the side's process spent on the request (prefill
included) per piece — on a shared machine the wall-clock measures mostly time the *other* load,
while CPU time is what a side itself costs, so it is the measure that resolves a few percent. Each comparison is interleaved ABAB and repeated until the 95% confidence interval
of the ratio is within ±``--ci`` (bench/paired.py), then printed with its interval and spread.
Throughput: N clients each send ``--requests`` non-streamed requests at once; completion tokens
/ wall time, clawdesk vs llama_cpp.server, also interleaved.

    .venv/bin/python bench/serve.py [--threads 1] [--tokens 64] [--ci 0.02] [--max-rounds 40]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import bundled_model_path, isolated_home, markdown_table, say, write_results  # noqa: E402
from bench.paired import interleave  # noqa: E402

import psutil  # noqa: E402

ASK = "Write a long, detailed story about a lighthouse keeper and a storm. Use many paragraphs."
N_CTX = 2048
REPEAT_PENALTY = 1.1  # ClawDesk's default; sent to llama_cpp.server, which defaults to 1.0


def messages(tag: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": f"Session {tag}. You are a storyteller."}, {"role": "user", "content": ASK}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu(pid: int) -> float:
    """CPU seconds a process has used so far (all its threads: llama.cpp's and Python's)."""
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def _timing(start: float, times: list[float], cpu_s: float) -> dict[str, float]:
    """Wall-clock measures, and CPU per piece: the one that other load on the machine hardly moves
    (a side's overhead shows up as CPU it spends, however long it waits for a core)."""
    if not times:
        return {"ttft_ms": float("nan"), "decode_tps": float("nan"), "cpu_ms_per_token": float("nan"), "pieces": 0}
    decode = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else float("nan")
    return {"ttft_ms": 1000 * (times[0] - start), "decode_tps": decode, "cpu_ms_per_token": 1000 * cpu_s / len(times),
            "pieces": len(times)}


class HttpSide:
    """An OpenAI-compatible server in a subprocess, measured by streaming one request."""

    def __init__(self, name: str, cmd: list[str], port: int, env: dict[str, str], token: str = "") -> None:
        import httpx

        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        self.headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
        # the log goes to a file: a pipe nobody reads fills up with llama.cpp's load log and blocks
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self.http = httpx.Client(timeout=300)
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"{name} exited: {self.log.read().decode(errors='replace')[-2000:]}")
            try:
                if self.http.get(f"http://127.0.0.1:{port}/v1/models", headers=self.headers).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.2)

    def body(self, tag: str, tokens: int, stream: bool) -> dict[str, Any]:
        return {"model": "clawdesk", "messages": messages(tag), "max_tokens": tokens, "temperature": 0,
                "repeat_penalty": REPEAT_PENALTY, "stream": stream}

    def stream(self, tag: str, tokens: int) -> dict[str, float]:
        times: list[float] = []
        cpu = _cpu(self.proc.pid)
        start = time.perf_counter()
        with self.http.stream("POST", self.url, headers=self.headers, json=self.body(tag, tokens, True)) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    choices = json.loads(line[6:]).get("choices") or [{}]
                    if choices[0].get("delta", {}).get("content"):
                        times.append(time.perf_counter())
        return _timing(start, times, _cpu(self.proc.pid) - cpu)

    def complete(self, client: Any, tag: str, tokens: int) -> int:
        r = client.post(self.url, headers=self.headers, json=self.body(tag, tokens, False))
        r.raise_for_status()
        return int(r.json()["usage"]["completion_tokens"])

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class EngineSide:
    """The Engine in this process: what the server adds its HTTP, queue and logging to."""

    name = "Engine"

    def __init__(self, path: str, threads: int) -> None:
        from clawdesk.engine import Engine

        self.engine = Engine(path, n_ctx=N_CTX, n_threads=threads)

    def stream(self, tag: str, tokens: int) -> dict[str, float]:
        times: list[float] = []
        cpu = _cpu(os.getpid())
        start = time.perf_counter()
        self.engine.generate(messages(tag), temperature=0.0, repeat_penalty=REPEAT_PENALTY, max_tokens=tokens,
                             on_text=lambda _piece: times.append(time.perf_counter()))
        return _timing(start, times, _cpu(os.getpid()) - cpu)

    def close(self) -> None:
        self.engine.close()


def throughput(side: HttpSide, clients: int, requests: int, tokens: int, tag: str) -> float:
    """Completion tokens per second with ``clients`` clients sending ``requests`` each at once."""
    import httpx

    def client(n: int) -> int:
        with httpx.Client(timeout=600) as http:
            return sum(side.complete(http, f"{tag}-{n}-{i}", tokens) for i in range(requests))

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(client, range(clients)))
    return total / (time.perf_counter() - start)


def start_sides(stack: ExitStack, path: str, threads: int) -> tuple[HttpSide, HttpSide, EngineSide]:
    home = stack.enter_context(isolated_home())
    env = {**os.environ, "CLAWDESK_HOME": str(home), "CLAWDESK_N_THREADS": str(threads),
           "CLAWDESK_N_CTX": str(N_CTX), "PYTHONUNBUFFERED": "1"}
    token = subprocess.run([sys.executable, "-m", "clawdesk", "serve", "--show-token"], env=env, cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.strip()
    port = _free_port()
    clawdesk = HttpSide("clawdesk serve", [sys.executable, "-m", "clawdesk", "serve", "--port", str(port)], port, env,
                        token)
    stack.callback(clawdesk.close)
    port = _free_port()
    llama = HttpSide("llama_cpp.server", [sys.executable, "-m", "llama_cpp.server", "--model", path, "--n_ctx",
                                          str(N_CTX), "--n_threads", str(threads), "--n_threads_batch", str(threads),
                                          "--host", "127.0.0.1", "--port", str(port)], port, env)
    stack.callback(llama.close)
    engine = EngineSide(path, threads)
    stack.callback(engine.close)
    return clawdesk, llama, engine


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads for every side (1: least noise)")
    ap.add_argument("--tokens", type=int, default=64, help="max_tokens of each measured reply")
    ap.add_argument("--ci", type=float, default=0.02, help="stop when the 95%% CI is within ± this fraction")
    ap.add_argument("--min-rounds", type=int, default=6)
    ap.add_argument("--max-rounds", type=int, default=40)
    ap.add_argument("--clients", default="1,2,4", help="concurrent clients for the throughput runs")
    ap.add_argument("--requests", type=int, default=3, help="requests per client in a throughput run")
    ap.add_argument("--throughput-rounds", type=int, default=4)
    ap.add_argument("--out", type=Path, help="Results folder (default bench/results).")
    args = ap.parse_args(argv)
    path = bundled_model_path()
    measures = ["cpu_ms_per_token", "decode_tps", "ttft_ms"]
    results: dict[str, Any] = {"args": vars(args) | {"out": str(args.out or "")}}
    with ExitStack() as stack:
        clawdesk, llama, engine = start_sides(stack, path, args.threads)
        nonce = str(time.time_ns())
        for other in (engine, llama):
            say(f"clawdesk serve vs {other.name} (ABAB until the 95% CI is within ±{args.ci:.0%})…")
            results[f"vs {other.name}"] = interleave(
                lambda r, o=other: o.stream(f"{nonce}-{o.name}-{r}", args.tokens),
                lambda r, o=other: clawdesk.stream(f"{nonce}-{o.name}-{r}", args.tokens),
                measures, args.min_rounds, args.max_rounds, args.ci,
                on_round=lambda n, ratios: say(f"  round {n}: " + ", ".join(f"{k} {v.text()}"
                                                                            for k, v in ratios.items())))
        results["throughput"] = {}
        for clients in (int(c) for c in args.clients.split(",")):
            say(f"throughput, {clients} client(s)…")
            results["throughput"][str(clients)] = interleave(
                lambda r, c=clients: {"tokens_per_s": throughput(llama, c, args.requests, args.tokens, f"{nonce}-tl-{c}-{r}")},
                lambda r, c=clients: {"tokens_per_s": throughput(clawdesk, c, args.requests, args.tokens, f"{nonce}-tc-{c}-{r}")},
                ["tokens_per_s"], min(args.throughput_rounds, args.max_rounds), args.throughput_rounds, args.ci)
    print(report(results))
    out = write_results("serve", results, args.out)
    say(f"results: {out}")
    return 0


def report(results: dict[str, Any]) -> str:
    rows = []
    for other in ("Engine", "llama_cpp.server"):
        res = results[f"vs {other}"]
        for measure, label in (("cpu_ms_per_token", "CPU ms per token"), ("decode_tps", "decode tokens/s"),
                               ("ttft_ms", "TTFT ms")):
            m = res["measures"][measure]
            rows.append([f"{label}: clawdesk / {other}", m["b_median"], m["a_median"], res["text"][measure],
                         f"{m['spread']['min']:.3f}–{m['spread']['max']:.3f}", "yes" if res["converged"] else "no"])
    for clients, res in results["throughput"].items():
        m = res["measures"]["tokens_per_s"]
        rows.append([f"throughput tokens/s, {clients} client(s): clawdesk / llama_cpp.server", m["b_median"],
                     m["a_median"], res["text"]["tokens_per_s"], f"{m['spread']['min']:.3f}–{m['spread']['max']:.3f}",
                     "yes" if res["converged"] else "no"])
    return markdown_table(["measure", "clawdesk (median)", "other (median)", "ratio (95% CI)", "round ratios",
                           "CI reached"], rows)


if __name__ == "__main__":
    sys.exit(main())
