"""A message's badges folded from raw feedback rows: pure, no model, no app."""

from __future__ import annotations

from clawdesk.records import Feedback, Message
from clawdesk.tui.state import MessageState, message_state


def reply(mid: int, **kw) -> Message:
    return Message(id=mid, conversation_id=1, parent_id=1, role="assistant", content="x", **kw)


def fb(kind: str, **kw) -> Feedback:
    return Feedback(id=0, message_id=2, kind=kind, **kw)


def test_the_latest_rating_wins_and_keeps_its_own_reason():
    m = reply(2)
    rows = [fb("thumbs_down", reason="too long"), fb("thumbs_up")]
    assert message_state(m, rows, [m]) == MessageState(thumbs="up")
    rows.append(fb("thumbs_down", reason="wrong"))
    assert message_state(m, rows, [m]).thumbs == "down" and message_state(m, rows, [m]).reason == "wrong"


def test_correction_exclusion_stop_and_siblings():
    old, m, new = reply(2), reply(3, finish_reason="cancelled"), reply(4)
    state = message_state(m, [fb("correction", correction="Paris."), fb("exclude"), fb("regenerate")],
                          [old, m, new])
    assert state == MessageState(correction="Paris.", excluded=True, stopped=True, sibling=2, siblings=3)
    assert message_state(reply(5, exclude=True), [], [reply(5)]).excluded  # excluded on the row itself
