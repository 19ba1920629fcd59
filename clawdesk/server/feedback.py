"""``POST /v1/feedback``: a thumbs, a correction or "don't learn", for a reply by its completion id.

The same ChatService calls the TUI's keys make, so a rating from an agent's UI is the same
training signal as one from the chat (docs/method.md §1: explicit feedback overrides the judge).

Body: ``{"id": "chatcmpl-…", "thumbs": "up" | "down", "reason": "too long", "comment": "…",
"correction": "…", "exclude": true}`` — any combination, at least one. ``reason`` is one of the
TUI's thumbs-down reasons (each becomes a hint for the teacher); ``comment`` may stand alone.
"""

from __future__ import annotations

from typing import Any

from ..chat import ChatService
from ..records import THUMBS_DOWN_REASONS
from .errors import ApiError, bad_request


def record_feedback(chat: ChatService, body: dict[str, Any]) -> dict[str, Any]:
    completion_id = body.get("id") or body.get("completion_id")
    if not isinstance(completion_id, str) or not completion_id:
        raise bad_request("Give the reply's completion `id` (the `id` of the chat completion).", "id")
    served = chat.store.served_turn(completion_id)
    if served is None:
        raise ApiError(404, f"No reply with the id {completion_id!r} was served here (or its conversation "
                            f"was deleted).", "completion_not_found", "id")
    thumbs, reason = body.get("thumbs"), body.get("reason") or ""
    comment, correction = _text(body, "comment"), _text(body, "correction")
    exclude = body.get("exclude", body.get("dont_learn", False))
    if thumbs not in (None, "up", "down"):
        raise bad_request("`thumbs` must be \"up\" or \"down\".", "thumbs")
    if reason and (thumbs != "down" or reason not in THUMBS_DOWN_REASONS):
        raise bad_request(f"`reason` goes with thumbs \"down\" and is one of: {', '.join(THUMBS_DOWN_REASONS)}.",
                          "reason")
    if not isinstance(exclude, bool):
        raise bad_request("`exclude` must be true or false.", "exclude")
    if thumbs is None and not correction and not comment and not exclude:
        raise bad_request("Nothing to record: give `thumbs`, `correction`, `comment` or `exclude`.")

    mid = served.message_id
    recorded = []
    if thumbs == "up":
        chat.thumbs_up(mid)
        recorded.append("thumbs_up")
    elif thumbs == "down":
        chat.thumbs_down(mid, reason=reason, comment=comment)
        recorded.append("thumbs_down")
    if comment and thumbs is None:
        chat.comment(mid, comment)  # through the chat service: a comment can teach a lasting wish
        recorded.append("comment")
    if correction:
        chat.correct(mid, correction)
        recorded.append("correction")
    if exclude:
        chat.exclude(mid)
        recorded.append("exclude")
    return {"object": "feedback", "id": completion_id, "message_id": mid, "turn_type": served.turn_type,
            "recorded": recorded}


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key) or ""
    if not isinstance(value, str):
        raise bad_request(f"`{key}` must be a string.", key)
    return value.strip()
