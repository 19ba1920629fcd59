"""find_next_state: one assistant message → its NextState (see the package docstring)."""

from __future__ import annotations

from ..memory import render
from ..records import Feedback, MemoryNote, Message, NextState
from ..store import Store

RATINGS = {"thumbs_up": 1.0, "thumbs_down": -1.0, "correction": -1.0, "regenerate": -1.0}

# A thumbs-down reason is directive: it says what to change. Phrased as an instruction so that it
# can be appended to the user's message as a hint (docs/method.md §3); 'other' says nothing.
REASON_HINTS = {
    "wrong": "The previous answer was wrong; check the facts and answer correctly.",
    "too long": "Keep the answer much shorter.",
    "too short": "Give a fuller, more detailed answer.",
    "bad format": "Use a clearer, better-formatted answer.",
    "not what I asked": "Answer exactly what was asked, nothing else.",
    "unsafe": "Do not give unsafe or harmful content.",
}

STOPPED_NOTE = "(The user stopped this reply before it was finished.)"


def correction_hint(corrected: str) -> str:
    """A corrected answer, phrased as an instruction for the hinted teacher context."""
    return f"A better reply would be:\n{corrected.strip()}"


AS_LOGGED = object()  # turn_messages' default note: the one the reply was generated with


def turn_messages(store: Store, message: Message, note: MemoryNote | None | object = AS_LOGGED) -> list[dict[str, str]]:
    """The chat messages the model saw for ``message``: the conversation's system prompt and the
    branch down to its parent (what ChatService.context builds for a reply), with the preference
    memory's notes placed as they were for this reply — the teacher context is built on these.
    ``note``: place this note instead (None: none), as the chat would for the reply today."""
    conv = store.get_conversation(message.conversation_id)
    path = store.path_to(message.parent_id) if message.parent_id is not None else []
    notes = store.notes_of([message.id] + [m.id for m in path if m.role == "assistant"])
    return render(conv.system_prompt, path, notes, notes.get(message.id) if note is AS_LOGGED else note)


def find_next_state(store: Store, message: Message) -> NextState:
    """The strongest signal that followed ``message`` (an assistant reply)."""
    feedback = store.feedback_for(message.id)
    kinds = {f.kind for f in feedback}
    stopped = "stop" in kinds
    hints = _explicit_hints(feedback)
    corrections = [f.correction for f in feedback if f.kind == "correction" and f.correction.strip()]
    correction = corrections[-1] if corrections else ""
    summary = _summarise(feedback)

    rating = _rating(feedback)
    if rating is None and _newer_assistant_sibling(store, message):
        rating = ("regenerate", RATINGS["regenerate"])  # a re-generation that left no feedback row
    if rating is not None:
        kind, reward = rating
        text, role = _conversational(store, message, feedback)
        return NextState(kind=kind, text=text, role=role, reward=reward, feedback=summary or kind,
                         hints=hints, correction=correction, stopped=stopped)

    comments = [f.comment.strip() for f in feedback if f.kind == "comment" and f.comment.strip()]
    if comments:
        return NextState(kind="comment", text="\n".join(comments), role="user", feedback=summary,
                         hints=hints, stopped=stopped)

    text, role, kind = _next_message(store, message)
    if kind == "reask" and stopped:
        # stop + re-ask: the user cut the reply off and asked again — unambiguous (see docstring)
        return NextState(kind="reask", text=text, role=role, reward=-1.0, feedback=summary or "stop",
                         hints=hints, stopped=True)
    if kind == "none":
        return NextState(kind="none", feedback=summary, hints=hints, stopped=stopped)
    if stopped:
        text = f"{STOPPED_NOTE}\n{text}"
    return NextState(kind=kind, text=text, role=role, feedback=summary, hints=hints, stopped=stopped)


def _rating(feedback: list[Feedback]) -> tuple[str, float] | None:
    """Method.md §1's order of strength: thumbs (the newest) > correction > regenerate."""
    for kinds in (("thumbs_up", "thumbs_down"), ("correction",), ("regenerate",)):
        found = [f for f in feedback if f.kind in kinds]
        if found:
            return found[-1].kind, RATINGS[found[-1].kind]
    return None


def _explicit_hints(feedback: list[Feedback]) -> list[str]:
    hints = []
    for f in feedback:
        if f.kind == "correction" and f.correction.strip():
            hints.append(correction_hint(f.correction))
        if f.comment.strip():
            hints.append(f.comment.strip())
        if f.kind == "thumbs_down" and f.reason in REASON_HINTS:
            hints.append(REASON_HINTS[f.reason])
    return hints


def _summarise(feedback: list[Feedback]) -> str:
    """One line per feedback row, for the stored next_state (and the judge-again check)."""
    lines = []
    for f in feedback:
        if f.kind == "exclude":
            continue
        line = f.kind.replace("_", " ")
        if f.reason:
            line += f" ({f.reason})"
        if f.comment.strip():
            line += f": {f.comment.strip()}"
        if f.correction.strip():
            line += f": {f.correction.strip()}"
        lines.append(line)
    return "\n".join(lines)


def _conversational(store: Store, message: Message, feedback: list[Feedback]) -> tuple[str, str]:
    """For explicitly rated messages: text the hint judge can still read (a comment, else the
    next message), so that a thumbs-down followed by "shorter please" yields a hint too."""
    comments = [f.comment.strip() for f in feedback if f.comment.strip()]
    if comments:
        return "\n".join(comments), "user"
    text, role, _ = _next_message(store, message)
    return text, role


def _next_message(store: Store, message: Message) -> tuple[str, str, str]:
    """(text, role, kind): the first user child, else the first tool child, else a rewritten
    request (a newer user sibling of the message's parent), else nothing."""
    children = [c for c in store.children(message.id) if not c.exclude]
    for role in ("user", "tool"):
        found = [c for c in children if c.role == role]
        if found:
            return found[0].content, role, role
    if message.parent_id is not None:
        rewritten = [m for m in store.siblings(message.parent_id)
                     if m.role == "user" and m.id > message.id and not m.exclude]
        if rewritten:
            return rewritten[0].content, "user", "reask"
    return "", "", "none"


def _newer_assistant_sibling(store: Store, message: Message) -> bool:
    return any(m.id > message.id for m in store.siblings(message.id))
