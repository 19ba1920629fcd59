"""Judged samples — what training reads — and the queue of turns whose signals changed.

One sample per (message, source) (a UNIQUE index makes judging idempotent). ``status`` moves
ready → used when a run trains on it, or is 'dropped' with a reason.

Why a change queue: the judge pass must look at a turn again whenever anything its next state
is built from changes — its feedback, a reply below it, a newer sibling, a rewritten request, an
exclusion, its samples. Re-reading every turn ever logged made a pass's cost grow with the whole
history. Instead, triggers (migration m004) record in ``signals_changed`` each assistant message
such a write may affect, with a sequence number; a new assistant message is recorded by its own
insert. ``clawdesk.judge.pipeline.pending`` reads only those rows and, once it has seen a turn's
sample match its signals, settles the row — only if its sequence number is still the one it read,
so a change that lands meanwhile keeps the turn queued. A turn without a primary sample is never
settled, so the queue always holds every turn not yet judged.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import StoreLocked
from ..records import Message, Sample
from .base import StoreBase, _j, _l
from .conversations import _message
from .migrations import _now


# The queue with its turns. CROSS JOIN makes SQLite read the queue first and look the turns up,
# never scan every turn for queued ones.
QUEUED = ("signals_changed q cross join messages m on m.id = q.message_id"
          " join conversations c on c.id = m.conversation_id")


class SamplesMixin(StoreBase):
    def upsert_sample(self, sample: Sample) -> Sample:
        """Insert or replace the sample for (message, source): judging twice never duplicates."""
        row = {
            "message_id": sample.message_id, "conversation_id": sample.conversation_id,
            "source": sample.source, "prompt_token_ids": _j(sample.prompt_token_ids),
            "response_token_ids": _j(sample.response_token_ids),
            "prompt_messages": json.dumps(sample.prompt_messages), "next_state": sample.next_state,
            "reward": sample.reward, "votes": json.dumps(sample.votes), "failed_votes": sample.failed_votes,
            "hints": json.dumps(sample.hints), "status": sample.status, "drop_reason": sample.drop_reason,
            "created_at": sample.created_at or _now(), "judge_model": sample.judge_model,
        }
        with self.transaction():
            existing = self.db.execute("select id from samples where message_id = ? and source = ?",
                                       [sample.message_id, sample.source]).fetchall()
            if existing:
                self._update("samples", "id", existing[0][0], row)
                sid = existing[0][0]
            else:
                sid = self._insert("samples", row)
        return self.get_sample(sid)

    def get_sample(self, sid: int) -> Sample:
        return _sample(self._one("select * from samples where id = ?", [sid],
                                 f"No sample {sid}; `clawdesk samples list` shows the ids."))

    def samples(self, status: str | None = None, limit: int | None = None,
                run_id: int | None = None) -> list[Sample]:
        """Samples, oldest first: all, or those of ``status`` and/or consumed by run ``run_id``."""
        where, params = [], []
        if status:
            where.append("status = ?")
            params.append(status)
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        sql = "select * from samples" + (" where " + " and ".join(where) if where else "") + " order by id"
        if limit:
            sql += f" limit {int(limit)}"
        return [_sample(r) for r in self._rows(sql, params)]

    def count_samples(self, status: str | None = None) -> int:
        """How many samples (of ``status``): an index read, unlike ``counts()``, which counts every
        table and so grows with the history — what a poll every few seconds should ask."""
        sql, params = ("select count(*) from samples where status = ?", [status]) if status else \
            ("select count(*) from samples", [])
        with self._guard():
            return int(self.db.execute(sql, params).fetchone()[0])

    def samples_for(self, message_id: int) -> list[Sample]:
        """Every sample of one message (at most one per source)."""
        return [_sample(r) for r in self._rows("select * from samples where message_id = ? order by id", [message_id])]

    def delete_samples(self, message_id: int, sources: list[str] | None = None) -> int:
        """Remove a message's samples (all, or those of ``sources``); returns how many."""
        sql, params = "delete from samples where message_id = ?", [message_id]
        if sources is not None:
            sql += f" and source in ({', '.join('?' for _ in sources)})"
            params += list(sources)
        with self.transaction():
            return self.db.execute(sql, params).rowcount

    def purge_excluded_samples(self) -> int:
        """Delete samples whose message or conversation the user excluded from learning."""
        with self.transaction():
            return self.db.execute(
                "delete from samples where message_id in (select m.id from messages m join conversations c"
                " on c.id = m.conversation_id where m.exclude = 1 or c.exclude = 1)").rowcount

    def drop_samples(self, ids: list[int], reason: str) -> None:
        """Mark samples 'dropped' with the reason ``clawdesk judge`` and ``samples`` show."""
        with self.transaction():
            for sid in ids:
                self._update("samples", "id", sid, {"status": "dropped", "drop_reason": reason})

    def set_sample_status(self, ids: list[int], status: str, run_id: int | None = None) -> None:
        with self.transaction():
            for sid in ids:  # all or none: a crash must not leave half a run's samples consumed
                self._update("samples", "id", sid, {"status": status, "run_id": run_id})

    # --- the change queue (see the module docstring) ---------------------------------------------
    def changed_turns(self) -> list[tuple[Message, int]]:
        """Assistant turns, oldest first, that may need judging: never judged, or something their
        signals are read from changed since the judge pass last found them up to date. Each comes
        with the sequence number of its newest change, for ``settle_turns``. Excluded turns and
        conversations are left out (they never become samples)."""
        rows = self._rows(
            f"select m.*, q.seq as _seq from {QUEUED}"
            " where m.role = 'assistant' and m.exclude = 0 and c.exclude = 0 order by m.id")
        return [(_message(r), int(r["_seq"])) for r in rows]

    def settle_turns(self, seen: list[tuple[int, int]]) -> int:
        """Take (message id, sequence number) pairs off the queue — each only if no change came
        after the one read — and the excluded turns with them (including one re-queues it).
        Best effort: while another process holds the write lock the turns just stay queued
        (they are read once more next time). Returns how many rows went."""
        excluded = (f"select q.message_id from {QUEUED} where m.exclude = 1 or c.exclude = 1"
                    " or m.role != 'assistant'")
        if not seen and not self.execute(f"select exists ({excluded})")[0][0]:
            return 0
        try:
            with self.transaction():
                done = self.db.conn.executemany("delete from signals_changed where message_id = ? and seq = ?",
                                                seen).rowcount if seen else 0
                # one statement under the write lock: an un-exclude cannot slip in between
                return done + self.db.execute(f"delete from signals_changed where message_id in ({excluded})").rowcount
        except StoreLocked:
            return 0

    def pending_signal(self) -> int:
        """Turns that could become samples: ready samples plus assistant turns not yet judged
        (no sample of any source, neither the turn nor its conversation excluded). Both counts
        read indexes: the status index, and the change queue, which holds every such turn."""
        with self._guard():
            unjudged = self.db.execute(
                f"select count(*) from {QUEUED} where m.role = 'assistant' and m.exclude = 0 and c.exclude = 0"
                " and not exists (select 1 from samples s where s.message_id = m.id)").fetchone()[0]
        return self.count_samples("ready") + int(unjudged)


def _sample(r: dict[str, Any]) -> Sample:
    return Sample(
        id=r["id"], message_id=r["message_id"], conversation_id=r["conversation_id"],
        prompt_token_ids=_l(r["prompt_token_ids"], []), response_token_ids=_l(r["response_token_ids"], []),
        reward=r["reward"], source=r["source"], status=r["status"], hints=_l(r["hints"], []),
        votes=_l(r["votes"], []), failed_votes=r["failed_votes"] or 0, drop_reason=r["drop_reason"] or "",
        next_state=r["next_state"] or "", prompt_messages=_l(r["prompt_messages"], []), created_at=r["created_at"],
        judge_model=r["judge_model"] or "")
