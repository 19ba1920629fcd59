"""The preference memory's tables: wishes, where each came from, and what each reply's prompt got.

- ``wishes``: the profile ("what ClawDesk knows about you"), one row per wish. Deleting a wish
  writes a tombstone (``status = 'deleted'``) instead of removing the row: its sources stay, and
  the extraction checks them, so the turns a deleted wish came from can never bring it back.
- ``wish_sources``: which turn and feedback row each wish was read from, with the words quoted.
  They cascade with their message / feedback row: forgetting a conversation removes the quotes,
  and a learned wish whose every source is gone is deleted by a trigger (migration m005) — its
  words came from the deleted turns. Wishes the user typed in (origin 'user') stay.
- ``memory_notes``: the note the memory added to one reply's prompt (placement, text, wish ids),
  so that the next turn can render the history as it was seen (KV-prefix reuse) and
  ``signals.turn_messages`` rebuilds exactly the messages the model saw.

Which wish matches which (slots, tombstones) is the memory service's business
(``clawdesk.memory.service``); this module only stores and reads.
"""

from __future__ import annotations

import json
from typing import Any

from ..records import Feedback, MemoryNote, Message, Wish, WishSource
from .base import StoreBase
from .migrations import _now


class MemoryMixin(StoreBase):
    """Wishes with their sources, and the notes replies were generated with."""

    def wishes(self, include_deleted: bool = False, with_sources: bool = True) -> list[Wish]:
        """The profile in the order it was learned (the order the note states it)."""
        where = "" if include_deleted else "where status = 'active'"
        rows = self._rows(f"select * from wishes {where} order by id")
        sources = self._sources([r["id"] for r in rows]) if with_sources else {}
        return [_wish(r, sources.get(r["id"], [])) for r in rows]

    def get_wish(self, wish_id: int) -> Wish:
        row = self._one("select * from wishes where id = ?", [wish_id],
                        f"No wish {wish_id}; `clawdesk memory list` shows the ids.")
        return _wish(row, self._sources([wish_id]).get(wish_id, []))

    def add_wish(self, text: str, slot: str = "", origin: str = "user", source: WishSource | None = None) -> Wish:
        now = _now()
        with self.transaction():
            wid = self._insert("wishes", {"text": text, "slot": slot, "origin": origin, "status": "active",
                                          "created_at": now, "confirmed_at": now})
            if source is not None:
                self._add_source(wid, source, now)
        return self.get_wish(wid)

    def confirm_wish(self, wish_id: int, source: WishSource, text: str | None = None) -> Wish:
        """The wish was stated again (``source``): record it, bring a tombstone back to life, and
        take the newer wording if given (a new length replaces the old one)."""
        now = _now()
        changes: dict[str, Any] = {"confirmed_at": now, "status": "active"}
        if text is not None:
            changes["text"] = text
        with self.transaction():
            self.get_wish(wish_id)
            self._update("wishes", "id", wish_id, changes)
            self._add_source(wish_id, source, now)
        return self.get_wish(wish_id)

    def edit_wish(self, wish_id: int, text: str) -> Wish:
        with self.transaction():
            self.get_wish(wish_id)
            self._update("wishes", "id", wish_id, {"text": text, "confirmed_at": _now()})
        return self.get_wish(wish_id)

    def delete_wish(self, wish_id: int) -> Wish:
        """A tombstone: out of every prompt from the next turn on, never re-learned from its sources."""
        with self.transaction():
            self.get_wish(wish_id)
            self._update("wishes", "id", wish_id, {"status": "deleted"})
        return self.get_wish(wish_id)

    def purge_wish(self, wish_id: int) -> None:
        """Remove a wish for real, tombstone and quotes included (``memory rm --purge``)."""
        with self.transaction():
            self.get_wish(wish_id)
            self.db.execute("delete from wishes where id = ?", [wish_id])

    # --- notes ----------------------------------------------------------------------------------
    def record_note(self, message_id: int, note: MemoryNote) -> None:
        with self.transaction():
            self.db.execute("insert or replace into memory_notes (message_id, placement, text, wish_ids)"
                            " values (?, ?, ?, ?)", [message_id, note.placement, note.text, json.dumps(list(note.wish_ids))])

    def note_of(self, message_id: int) -> MemoryNote | None:
        """The note reply ``message_id`` was generated with (None: the memory added nothing)."""
        return self.notes_of([message_id]).get(message_id)

    def notes_of(self, message_ids: list[int]) -> dict[int, MemoryNote]:
        """The notes of those of ``message_ids`` that had one."""
        if not message_ids:
            return {}
        marks = ", ".join("?" for _ in message_ids)
        rows = self._rows(f"select * from memory_notes where message_id in ({marks})", message_ids)
        return {r["message_id"]: MemoryNote(r["placement"], r["text"], tuple(json.loads(r["wish_ids"] or "[]")))
                for r in rows}

    # --- what the batch extraction reads --------------------------------------------------------
    def memory_signals(self, after_feedback: int, after_message: int) -> tuple[list[Feedback], list[Message]]:
        """Feedback with words in it (a comment, a correction) after id ``after_feedback``, and the
        user messages that answer a reply after id ``after_message``: what the wish judge reads."""
        feedback = [Feedback(**r) for r in self._rows(
            "select * from feedback where id > ? and kind in ('thumbs_down', 'comment', 'correction')"
            " and (comment != '' or correction != '') order by id", [after_feedback])]
        ids = [r["id"] for r in self._rows(
            "select m.id from messages m join messages p on p.id = m.parent_id"
            " where m.id > ? and m.role = 'user' and p.role = 'assistant' order by m.id", [after_message])]
        return feedback, [self.get_message(i) for i in ids]

    # --- internals ------------------------------------------------------------------------------
    def _add_source(self, wish_id: int, s: WishSource, now: str) -> None:
        self._insert("wish_sources", {"wish_id": wish_id, "message_id": s.message_id, "feedback_id": s.feedback_id,
                                      "channel": s.channel, "quote": s.quote, "created_at": s.created_at or now})

    def _sources(self, wish_ids: list[int]) -> dict[int, list[WishSource]]:
        if not wish_ids:
            return {}
        marks = ", ".join("?" for _ in wish_ids)
        rows = self._rows(f"select s.*, m.conversation_id from wish_sources s left join messages m on m.id = s.message_id"
                          f" where s.wish_id in ({marks}) order by s.id", wish_ids)
        out: dict[int, list[WishSource]] = {}
        for r in rows:
            out.setdefault(r["wish_id"], []).append(WishSource(
                message_id=r["message_id"], feedback_id=r["feedback_id"], conversation_id=r["conversation_id"],
                channel=r["channel"], quote=r["quote"], created_at=r["created_at"]))
        return out


def _wish(r: dict[str, Any], sources: list[WishSource]) -> Wish:
    return Wish(id=r["id"], text=r["text"], slot=r["slot"], origin=r["origin"], status=r["status"],
                created_at=r["created_at"], confirmed_at=r["confirmed_at"], sources=sources)
