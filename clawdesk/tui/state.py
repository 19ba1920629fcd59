"""What a message's badges show, folded from its raw feedback rows.

The store keeps every feedback row ever written (a thumbs up after a thumbs down is a second
row, not an edit), because the training signal wants the history. The screen wants only the
outcome: the latest rating with its reason, the latest correction, whether the reply is
excluded or was stopped, and where it stands among its sibling answers. That fold is pure, so
it lives here, apart from the widgets, and is the one place that decides what a badge means.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..records import Feedback, Message


@dataclass
class MessageState:
    """What the badges show on one message."""

    thumbs: str = ""  # "up" | "down" | ""
    reason: str = ""
    correction: str = ""
    excluded: bool = False
    stopped: bool = False
    sibling: int = 1  # 1-based position among its alternatives
    siblings: int = 1


def message_state(message: Message, feedback: list[Feedback], siblings: list[Message]) -> MessageState:
    """Fold ``feedback`` (oldest first, as the store returns it) into the badges of ``message``.

    ``siblings``: the message and its alternatives (same parent, same role), oldest first — the
    tree's answer, so that ``[ 2/3 ]`` counts what ``[``/``]`` can actually reach.
    """
    state = MessageState(excluded=message.exclude, stopped=message.finish_reason == "cancelled")
    for f in feedback:
        if f.kind in ("thumbs_up", "thumbs_down"):  # the latest rating wins; its reason goes with it
            state.thumbs = "up" if f.kind == "thumbs_up" else "down"
            state.reason = f.reason if f.kind == "thumbs_down" else ""
        elif f.kind == "correction":
            state.correction = f.correction
        elif f.kind == "exclude":
            state.excluded = True
    ids = [s.id for s in siblings]
    state.siblings = len(ids)
    state.sibling = ids.index(message.id) + 1 if message.id in ids else 1
    return state
