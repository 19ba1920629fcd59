"""Explicit feedback on a message: ratings, corrections, comments, regenerate/stop/exclude marks.

Rows are kept as written (the raw signal); ``clawdesk.signals`` decides what they mean. The one
rule enforced here is "exclude" taking effect at once: the message's samples go in the same
transaction, so a `train --now` started a second later cannot learn from it.
"""

from __future__ import annotations

from ..records import FEEDBACK_KINDS, Feedback
from .base import StoreBase
from .migrations import _now


class FeedbackMixin(StoreBase):
    def add_feedback(self, message_id: int, kind: str, reason: str = "", comment: str = "",
                     correction: str = "") -> Feedback:
        if kind not in FEEDBACK_KINDS:
            raise ValueError(f"unknown feedback kind {kind!r}")
        row = {"message_id": message_id, "kind": kind, "reason": reason or "", "comment": comment or "",
               "correction": correction or "", "created_at": _now()}
        with self.transaction():
            fid = self._insert("feedback", row)
            if kind == "exclude":
                self._update("messages", "id", message_id, {"exclude": 1})
                # "don't learn" takes effect now, not at the next judge pass: `train --now` reads samples
                self.db.execute("delete from samples where message_id = ?", [message_id])
        return Feedback(fid, **row)

    def get_feedback(self, feedback_id: int) -> Feedback:
        return Feedback(**self._one("select * from feedback where id = ?", [feedback_id], f"No feedback {feedback_id}."))

    def feedback_for(self, message_id: int) -> list[Feedback]:
        rows = self._rows("select * from feedback where message_id = ? order by id", [message_id])
        return [Feedback(**r) for r in rows]

    def update_feedback(self, feedback_id: int, reason: str | None = None, comment: str | None = None) -> None:
        """Add the optional reason/comment to a row written a moment earlier (the TUI writes a
        thumbs-down at once and lets the person explain it afterwards)."""
        changes = {k: v for k, v in {"reason": reason, "comment": comment}.items() if v is not None}
        if changes:
            with self.transaction():
                self.db["feedback"].update(feedback_id, changes)

    def remove_feedback(self, feedback_id: int) -> None:
        with self.transaction():
            self.db.execute("delete from feedback where id = ?", [feedback_id])
