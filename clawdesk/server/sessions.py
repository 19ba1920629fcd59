"""Sessions as agents send them, mapped onto ClawDesk's conversation trees.

An OpenAI client sends the *whole* history with every request. ClawDesk stores a conversation
as a tree of messages (a regenerated answer is a sibling), so each request is *placed*: its
turns are matched, oldest first, against the stored branch of its session's conversation, and
only what does not match is logged, below the last match. That gives:

- no duplicates when the history is resent (the common case: everything but the new message
  matches);
- the previous turn's *next state* for free: the new user message or tool result is logged as
  the child of the assistant reply it answers, which is where ``signals.find_next_state`` looks;
- an edited or forked history becomes a branch, as an edit in the TUI does;
- a request whose history matches completely (the client asks again for the same last message)
  is a *regenerate*: the earlier reply is marked so, as the TUI's `r` key does — negative
  evidence (docs/method.md §1).

Which conversation: ``X-Session-Id`` (or the body's ``session_id``) names the session; main
and side turns get separate conversations, the side one excluded from learning (see
``store/sessions.py``). A client that names no session (OpenClaw without its RL-headers
plugin, most web UIs) gets one session per conversation *prefix*: the key is a hash of the
first message, so every request of one chat lands in the same tree and its branches.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..chat import ChatService
from ..records import Message
from .errors import bad_request
from .protocol import ChatRequest, _truthy

TURN_TYPES = ("main", "side")
SESSION_HEADERS = ("x-session-id", "x-session-affinity", "session_id")


@dataclass(frozen=True)
class SessionRef:
    key: str
    turn_type: str  # main | side
    done: bool
    source: str  # header | body | prefix


@dataclass
class Placement:
    conversation_id: int
    leaf: Message  # the request's last message, logged; the reply goes below it
    logged: int  # how many of the request's messages were new
    regenerated: int | None  # the earlier reply marked 'regenerate', if the request repeated one


def session_of(headers: dict[str, str], request: ChatRequest) -> SessionRef:
    """Headers first, then the body fields, then the prefix. Besides ``X-Session-Id`` (OpenClaw-RL's
    header), the session-affinity headers stock OpenClaw sends with ``sendSessionAffinityHeaders``
    (``x-session-affinity``, ``session_id``) name the session too."""
    key = next((headers[h].strip() for h in SESSION_HEADERS if headers.get(h, "").strip()), "")
    source = "header"
    if not key:
        key, source = request.session_id.strip(), "body"
    if not key:
        key, source = prefix_key(request), "prefix"
    turn_type = (headers.get("x-turn-type") or request.turn_type or "main").strip().lower()
    if turn_type not in TURN_TYPES:
        raise bad_request(f"X-Turn-Type must be main or side, not {turn_type!r}.", "turn_type")
    done = _truthy(headers.get("x-session-done")) or request.session_done
    return SessionRef(key[:200], turn_type, done, source)


def prefix_key(request: ChatRequest) -> str:
    """The fallback session: the first turn identifies the chat (the system prompt is left out:
    agents rewrite it as they go, with the date, the tools, a memory digest)."""
    role, text = request.turns[0]
    return "prefix:" + hashlib.sha256(f"{role}\n{text}".encode()).hexdigest()[:24]


def place(chat: ChatService, session: SessionRef, request: ChatRequest) -> Placement:
    """Find or start the session's conversation and log the request's new messages in it."""
    store = chat.store
    cid = store.session_conversation(session.key, session.turn_type)
    if cid is None:
        conv = chat.new_conversation(system_prompt=request.system)
        cid = conv.id
        if session.turn_type == "side":
            store.update_conversation(cid, exclude=True)  # served and logged, never trained on
        store.bind_session(session.key, session.turn_type, cid, session.source)
    elif store.get_conversation(cid).system_prompt != request.system:
        chat.set_system_prompt(cid, request.system)  # the persona for the next turns, as in the TUI

    parent: Message | None = None
    matched = 0
    for role, text in request.turns:
        match = _matching_child(chat, cid, parent, role, text)
        if match is None:
            break
        parent, matched = match, matched + 1

    regenerated = None
    if matched == len(request.turns):
        assert parent is not None
        replies = [m for m in store.children(parent.id) if m.role == "assistant"]
        if replies:
            regenerated = replies[-1].id
            store.add_feedback(regenerated, "regenerate")
        return Placement(cid, parent, 0, regenerated)
    for role, text in request.turns[matched:]:
        parent = chat.append(cid, role, text, parent.id if parent else None)
    assert parent is not None
    return Placement(cid, parent, len(request.turns) - matched, None)


def _matching_child(chat: ChatService, cid: int, parent: Message | None, role: str, text: str) -> Message | None:
    """The newest child of ``parent`` with this role and text (whitespace at the ends ignored:
    clients trim). Newest, because the latest branch is the one a client is continuing."""
    children = chat.store.children(parent.id if parent else None, cid)
    want = text.strip()
    for child in reversed(children):
        if child.role == role and child.content.strip() == want:
            return child
    return None
