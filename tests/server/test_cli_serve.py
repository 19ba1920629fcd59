"""`clawdesk serve` as a user starts it: a separate process, the token from `--show-token`, the
openai client in another "terminal", Ctrl-C / SIGTERM to stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command_answers_the_openai_client_and_stops_on_sigterm(model_path, clawdesk_home):
    env = {**os.environ, "CLAWDESK_N_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    token = subprocess.run([sys.executable, "-m", "clawdesk", "serve", "--show-token"], capture_output=True,
                           text=True, env=env, cwd=ROOT, check=True).stdout.strip()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "clawdesk", "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "clawdesk serve did not come up"
            time.sleep(0.2)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=token, max_retries=0)
        reply = client.chat.completions.create(model="clawdesk", messages=[{"role": "user", "content": "Hi!"}],
                                               max_tokens=6, temperature=0)
        assert reply.choices[0].message.content
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status says "terminated"
    # (systemd counts SIGTERM as a clean stop)
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Traceback" not in out
    assert f"http://127.0.0.1:{port}/v1" in out and "serve-token" in out
