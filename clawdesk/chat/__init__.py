"""The chat service: one code path for every way a person (or the benchmark's simulated user)
talks to ClawDesk — the TUI, ``clawdesk ask`` and ``bench/personalize.py`` all go through it.

It turns a user message into a logged turn: the user message is written *before* generation
(so a crash or Ctrl-C mid-answer loses nothing the user typed), then the assistant message with
its exact prompt/response token ids, model, adapter version, sampling parameters and timing.
Feedback methods write one feedback row each, immediately.
"""

from .service import ChatService, Turn, open_engine, served_adapter

__all__ = ["ChatService", "Turn", "open_engine", "served_adapter"]
