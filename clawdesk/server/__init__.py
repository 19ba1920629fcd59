"""``clawdesk serve``: an OpenAI-compatible HTTP endpoint, so any agent learns through ClawDesk.

The OpenClaw-RL system ClawDesk is built from is, at heart, such a proxy: an agent sends its chat
requests through it, and the next request of a session is the *next state* of the previous turn
(docs/method.md §1). Here that proxy is the ChatService itself behind HTTP, on the same store,
judge, trainer, gate and hot reload as the TUI:

- ``app.py``: the routes (Starlette on uvicorn): ``POST /v1/chat/completions`` (JSON or SSE),
  ``GET /v1/models``, ``POST /v1/feedback`` (``feedback.py``), ``GET /health``.
- ``protocol.py``: the OpenAI wire format in and out.
- ``sessions.py``: ``X-Session-Id`` / ``X-Turn-Type`` / ``X-Session-Done`` → a conversation tree,
  with the request's history matched against it so that nothing is logged twice.
- ``worker.py``: one engine, many clients — requests queue on one thread; promoted versions
  swap in between requests; a client that hangs up stops its generation.
- ``auth.py``, ``limits.py``, ``errors.py``: bearer token, body size limit, OpenAI-style 4xx.

A served turn is logged exactly like a TUI turn (``ChatService.reply``): the exact prompt and
response token ids, model, adapter version, sampling and timing.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from ..engine import Engine
from ..settings import Settings
from .app import ServeState, create_app
from .auth import load_or_create_token, token_path

__all__ = ["ServeState", "create_app", "is_loopback", "load_or_create_token", "run", "token_path"]


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(db_path: Path, engine: Engine, settings: Settings, host: str, port: int, token: str,
        model: str | None = None) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM end it cleanly: uvicorn handles both)."""
    import uvicorn

    app = create_app(ServeState(db_path, engine, settings, token, model))
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    server.run()
