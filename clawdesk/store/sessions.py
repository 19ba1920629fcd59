"""What ``clawdesk serve`` remembers about its clients: sessions and served turns.

An agent talking to the server names its conversation with a *session id* (``X-Session-Id``)
and says whether a request is a ``main`` turn (the conversation itself, trained on) or a ``side``
turn (a title, a summary, a memory flush: served and logged, never trained on). Two tables:

- ``serve_sessions`` maps (session key, turn type) to the ClawDesk conversation that holds it.
  Main and side turns of one session live in two conversations so that a side request can never
  become the *next state* of a main turn (docs/method.md §1); the side conversation is excluded
  from learning. A session the client declared done keeps its row (``done = 1``); the same id
  used again starts a new conversation.
- ``served_turns`` maps the completion id returned to the client to the assistant message, with
  the turn type and the request's ``tools`` / ``tool_choice`` (JSON), so that ``/v1/feedback``
  can address a reply by the id the client knows.

Both reference their conversation / message ``on delete cascade``: deleting a conversation
(``clawdesk forget``) takes the session rows and the stored tool definitions with it.
"""

from __future__ import annotations

import json
from typing import Any

from ..records import ServedTurn
from .base import StoreBase
from .migrations import _now


class SessionsMixin(StoreBase):
    """Session ↔ conversation and completion id ↔ message, for the OpenAI-compatible server."""

    def session_conversation(self, key: str, turn_type: str) -> int | None:
        """The conversation holding the live (not done) session ``key`` / ``turn_type``, if any."""
        rows = self.execute("select conversation_id from serve_sessions where key = ? and turn_type = ? and done = 0",
                            [key, turn_type])
        return rows[0][0] if rows else None

    def bind_session(self, key: str, turn_type: str, conversation_id: int, source: str) -> None:
        """Start a session: from now on ``key`` / ``turn_type`` continues ``conversation_id``.
        ``source`` says how the key was found: header | body | prefix."""
        now = _now()
        with self.transaction():
            self._insert("serve_sessions", {"key": key, "turn_type": turn_type, "conversation_id": conversation_id,
                                            "source": source, "done": 0, "created_at": now, "updated_at": now})

    def end_session(self, key: str) -> int:
        """The client said the session is over (``X-Session-Done``); returns the rows closed."""
        with self.transaction():
            return self.db.execute("update serve_sessions set done = 1, updated_at = ? where key = ? and done = 0",
                                   [_now(), key]).rowcount

    def sessions_of(self, conversation_id: int) -> list[dict[str, Any]]:
        """Every session row that points at ``conversation_id``."""
        return self._rows("select * from serve_sessions where conversation_id = ? order by id", [conversation_id])

    def record_served_turn(self, completion_id: str, message_id: int, session_key: str, turn_type: str,
                           tools: list[dict[str, Any]] | None = None, tool_choice: Any = None) -> None:
        with self.transaction():
            self._insert("served_turns", {
                "completion_id": completion_id, "message_id": message_id, "session_key": session_key,
                "turn_type": turn_type, "tools": None if tools is None else json.dumps(tools),
                "tool_choice": None if tool_choice is None else json.dumps(tool_choice), "created_at": _now()})

    def served_turn(self, completion_id: str) -> ServedTurn | None:
        rows = self._rows("select * from served_turns where completion_id = ?", [completion_id])
        return _served(rows[0]) if rows else None

    def served_turn_for(self, message_id: int) -> ServedTurn | None:
        """The served turn that produced assistant message ``message_id`` (None: not served)."""
        rows = self._rows("select * from served_turns where message_id = ?", [message_id])
        return _served(rows[0]) if rows else None


def _served(r: dict[str, Any]) -> ServedTurn:
    return ServedTurn(completion_id=r["completion_id"], message_id=r["message_id"], session_key=r["session_key"] or "",
                      turn_type=r["turn_type"] or "main",
                      tools=json.loads(r["tools"]) if r["tools"] else None,
                      tool_choice=json.loads(r["tool_choice"]) if r["tool_choice"] else None,
                      created_at=r["created_at"])
