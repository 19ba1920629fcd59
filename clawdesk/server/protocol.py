"""The OpenAI chat-completions wire format: parse a request, shape a reply or a stream chunk.

Parsing is by hand rather than by a schema library so that each refusal names the field and
says what would be accepted, in the OpenAI error shape (``errors.py``). What ClawDesk reads:

- ``messages``: system/developer messages become the conversation's system prompt (joined in
  order); user, assistant and tool messages become the turns. Content may be a string or a list
  of parts (only text parts are read). An assistant message with ``tool_calls`` and no text is
  kept as the calls' JSON, so that a client resending it matches what was stored.
- sampling: ``temperature``, ``top_p``, ``max_tokens`` (or ``max_completion_tokens``), ``stop``,
  ``seed``; ``n`` must be 1.
- ``tools`` / ``tool_choice``: stored with the turn, passed to the chat template when it can
  render them.
- ClawDesk's session fields, the body fallbacks of the ``X-Session-*`` headers: ``session_id``,
  ``turn_type``, ``session_done``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import bad_request

TURN_ROLES = ("user", "assistant", "tool")
SYSTEM_ROLES = ("system", "developer")


@dataclass
class ChatRequest:
    model: str
    system: str
    turns: list[tuple[str, str]]  # (role, text), oldest first; the last is a user or tool message
    sampling: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    session_id: str = ""
    turn_type: str = ""
    session_done: bool = False


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Bytes of a ``POST /v1/chat/completions`` body → ChatRequest, or an ApiError (400)."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request(f"The request body is not valid JSON ({e}).", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    system, turns = _messages(body.get("messages"))
    n = body.get("n", 1)
    if n not in (1, None):
        raise bad_request("Only n = 1 is supported: one engine answers one reply at a time.", "n")
    stream = _bool(body, "stream")
    options = body.get("stream_options") or {}
    tools = body.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        raise bad_request("`tools` must be a list of tool objects.", "tools")
    return ChatRequest(
        model=_str(body, "model"), system=system, turns=turns, sampling=_sampling(body), stream=stream,
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        tools=tools or None, tool_choice=body.get("tool_choice"), session_id=_str(body, "session_id"),
        turn_type=_str(body, "turn_type"), session_done=_truthy(body.get("session_done")))


def text_of(content: Any) -> str:
    """A message's text: a string, or the text parts of a content list (images etc. are skipped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content
                         if isinstance(p, dict) and p.get("type") in ("text", "input_text"))
    raise bad_request("A message's `content` must be a string or a list of content parts.", "messages")


def _messages(value: Any) -> tuple[str, list[tuple[str, str]]]:
    if not isinstance(value, list) or not value:
        raise bad_request("`messages` must be a non-empty list of {role, content} objects.", "messages")
    system: list[str] = []
    turns: list[tuple[str, str]] = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in TURN_ROLES + SYSTEM_ROLES:
            raise bad_request(f"messages[{i}] needs a role of system, developer, user, assistant or tool.",
                              f"messages[{i}].role")
        text = text_of(m.get("content"))
        if m["role"] in SYSTEM_ROLES:
            system.append(text)
            continue
        if m["role"] == "assistant" and not text and m.get("tool_calls"):
            text = json.dumps(m["tool_calls"], ensure_ascii=False, separators=(",", ":"))
        turns.append((m["role"], text))
    if not turns or turns[-1][0] not in ("user", "tool"):
        raise bad_request("The last message must be a user message or a tool result: that is what the "
                          "model answers.", "messages")
    return "\n\n".join(s for s in system if s), turns


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, low, high in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
        if body.get(key) is not None:
            value = body[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise bad_request(f"`{key}` must be a number from {low} to {high}.", key)
            out[key] = float(value)
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise bad_request("`max_tokens` must be a positive integer.", "max_tokens")
        out["max_tokens"] = limit
    if body.get("seed") is not None:
        if isinstance(body["seed"], bool) or not isinstance(body["seed"], int):
            raise bad_request("`seed` must be an integer.", "seed")
        out["seed"] = body["seed"] % 2**31
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) for s in stops):
            raise bad_request("`stop` must be a string or a list of up to 4 strings.", "stop")
        if stops:
            out["stop"] = stops
    return out


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request(f"`{key}` must be a string.", key)
    return value


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"`{key}` must be true or false.", key)
    return value


def _truthy(value: Any) -> bool:
    """Header and body flags as agents send them: true, 1, "yes", "on"."""
    return str(value).strip().lower() in {"1", "true", "yes", "on"} if value is not None else False


# --- replies -------------------------------------------------------------------------------------
def completion(cid: str, model: str, text: str, finish: str, prompt_tokens: int, completion_tokens: int,
               fingerprint: str) -> dict[str, Any]:
    return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "system_fingerprint": fingerprint,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": finish}],
            "usage": _usage(prompt_tokens, completion_tokens)}


def chunk(cid: str, model: str, fingerprint: str, delta: dict[str, Any] | None = None,
          finish: str | None = None, usage: tuple[int, int] | None = None) -> str:
    """One SSE event of a streamed reply (``data: {...}`` and a blank line)."""
    body: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                            "model": model, "system_fingerprint": fingerprint,
                            "choices": [] if usage else [{"index": 0, "delta": delta or {}, "logprobs": None,
                                                          "finish_reason": finish}]}
    if usage:
        body["usage"] = _usage(*usage)
    return f"data: {json.dumps(body, ensure_ascii=False, separators=(',', ':'))}\n\n"


class PieceChunks:
    """The per-token chunk, cheaply: everything but the text is the same for a whole reply, so it
    is serialised once and only the text is encoded per token (a reply is hundreds of chunks)."""

    def __init__(self, cid: str, model: str, fingerprint: str) -> None:
        head = chunk(cid, model, fingerprint, {"content": "\x00"})
        self._before, self._after = head.split(json.dumps("\x00"), 1)

    def __call__(self, text: str) -> str:
        return self._before + json.dumps(text, ensure_ascii=False) + self._after


DONE = "data: [DONE]\n\n"


def finish_reason(engine_finish: str) -> str:
    """The engine's reasons in OpenAI's words ('cancelled' never reaches a client: it left)."""
    return "length" if engine_finish == "length" else "stop"


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
