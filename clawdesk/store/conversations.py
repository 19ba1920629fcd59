"""Conversations and their messages: the tree of turns, paging, and full-text search.

Messages form a tree by ``parent_id`` (a regenerated answer is a sibling, never an overwrite).
Listing is paged newest first on an index over the conversation's last activity, and search goes
through two FTS5 indexes — ``messages_fts`` (porter-stemmed words of every message) and
``conversations_fts`` (trigrams of the names, which answer ``LIKE '%text%'``) — so neither a
page nor a search reads every conversation of a long history.
"""

from __future__ import annotations

import json
from typing import Any

from ..records import Conversation, Message
from .base import StoreBase, _j, _l
from .migrations import _now

RECENT = "coalesce(updated_at, created_at) desc, id desc"  # the order of the conversations_recent index


class ConversationsMixin(StoreBase):
    # --- conversations --------------------------------------------------------------------------
    def new_conversation(self, name: str = "New conversation", system_prompt: str = "", model: str = "") -> Conversation:
        now = _now()
        with self.transaction():
            # plain SQL: sqlite-utils' insert() commits on its own, ending a caller's transaction
            cid = self._insert("conversations", {"name": name, "system_prompt": system_prompt, "model": model,
                                                 "exclude": 0, "created_at": now, "updated_at": now})
        return self.get_conversation(cid)

    def get_conversation(self, cid: int) -> Conversation:
        return _conversation(self._one("select * from conversations where id = ?", [cid],
                                       f"No conversation {cid}; `clawdesk logs list` shows the ids."))

    def list_conversations(self, limit: int | None = None, query: str | None = None,
                           offset: int = 0) -> list[Conversation]:
        """Newest first, a page at a time (``limit`` None or 0 = all the rest after ``offset``).

        ``query`` keeps the conversations whose name contains it (case-insensitive, as SQL
        ``LIKE``) or one of whose messages has all of its words (full-text, stemmed)."""
        where, params = _matching(query)
        sql = f"select * from conversations{where} order by {RECENT} limit ? offset ?"
        rows = self._rows(sql, [*params, int(limit) if limit else -1, max(0, int(offset))])
        return [_conversation(r) for r in rows]

    def count_conversations(self, query: str | None = None) -> int:
        """How many conversations ``list_conversations(query=query)`` pages through."""
        where, params = _matching(query)
        with self._guard():
            return int(self.db.execute(f"select count(*) from conversations{where}", params).fetchone()[0])

    def update_conversation(self, cid: int, **changes: Any) -> None:
        allowed = {"name", "system_prompt", "model", "exclude"}
        bad = set(changes) - allowed
        if bad:
            raise ValueError(f"cannot update {bad}")
        if "exclude" in changes:
            changes["exclude"] = int(bool(changes["exclude"]))
        with self.transaction():
            self.db["conversations"].update(cid, {**changes, "updated_at": _now()})
            if changes.get("exclude"):  # as for a message: no sample of it may be trained on from now
                self.db.execute("delete from samples where message_id in"
                                " (select id from messages where conversation_id = ?)", [cid])

    def delete_conversation(self, cid: int) -> None:
        """Delete the conversation with its messages, feedback and samples — really."""
        with self.transaction():
            ids = "select id from messages where conversation_id = ?"
            self.db.execute(f"delete from samples where message_id in ({ids})", [cid])
            self.db.execute(f"delete from feedback where message_id in ({ids})", [cid])
            # children before parents (the parent_id foreign key)
            self.db.execute("update messages set parent_id = null where conversation_id = ?", [cid])
            self.db.execute("delete from messages where conversation_id = ?", [cid])
            self.db.execute("delete from conversations where id = ?", [cid])

    def last_conversation_id(self) -> int | None:
        with self._guard():
            rows = self.db.execute("select conversation_id from messages order by id desc limit 1").fetchall()
        return rows[0][0] if rows else None

    def conversation_ids(self) -> list[int]:
        with self._guard():
            return [r[0] for r in self.db.execute("select id from conversations order by id").fetchall()]

    # --- messages -------------------------------------------------------------------------------
    def add_message(self, conversation_id: int, role: str, content: str, parent_id: int | None = None,
                    **fields: Any) -> Message:
        row = {
            "conversation_id": conversation_id,
            "parent_id": parent_id,
            "role": role,
            "content": content,
            "prompt_token_ids": _j(fields.pop("prompt_token_ids", None)),
            "response_token_ids": _j(fields.pop("response_token_ids", None)),
            "sampling": json.dumps(fields.pop("sampling", {}) or {}),
            "created_at": _now(),
            "exclude": 0,
        }
        row.update(fields)
        with self.transaction():
            mid = self._insert("messages", row)
            self._update("conversations", "id", conversation_id, {"updated_at": row["created_at"]})
        return self.get_message(mid)

    def get_message(self, mid: int) -> Message:
        return _message(self._one("select * from messages where id = ?", [mid], f"No message {mid}."))

    def messages(self, conversation_id: int) -> list[Message]:
        """Every message of a conversation (all branches), oldest first."""
        return [_message(r) for r in self._rows(
            "select * from messages where conversation_id = ? order by id", [conversation_id])]

    def path_to(self, mid: int) -> list[Message]:
        """The branch from the root down to ``mid`` — the context the model saw."""
        rows = self._rows(
            """with recursive chain(id, depth) as (
                   select id, 0 from messages where id = ?
                   union all
                   select m.parent_id, chain.depth + 1 from messages m join chain on m.id = chain.id
                   where m.parent_id is not null)
               select messages.* from chain join messages on messages.id = chain.id
               order by chain.depth desc""", [mid])
        return [_message(r) for r in rows]

    def children(self, mid: int | None, conversation_id: int | None = None) -> list[Message]:
        if mid is None:
            rows = self._rows("select * from messages where parent_id is null and conversation_id = ? order by id",
                              [conversation_id])
        else:
            rows = self._rows("select * from messages where parent_id = ? order by id", [mid])
        return [_message(r) for r in rows]

    def siblings(self, mid: int) -> list[Message]:
        """The message and its alternatives (same parent, same role), oldest first."""
        msg = self.get_message(mid)
        return [m for m in self.children(msg.parent_id, msg.conversation_id) if m.role == msg.role]

    def latest_leaf(self, conversation_id: int) -> Message | None:
        """The newest message of a conversation: where a continued conversation picks up."""
        rows = self._rows("select * from messages where conversation_id = ? order by id desc limit 1",
                          [conversation_id])
        return _message(rows[0]) if rows else None

    def set_message_exclude(self, mid: int, exclude: bool = True) -> None:
        with self.transaction():
            self.db["messages"].update(mid, {"exclude": int(exclude)})

    def update_message(self, mid: int, **changes: Any) -> None:
        for key in ("prompt_token_ids", "response_token_ids", "sampling"):
            if key in changes:
                changes[key] = _j(changes[key])
        with self.transaction():
            self.db["messages"].update(mid, changes)

    def assistant_messages(self, include_excluded: bool = False) -> list[Message]:
        """Assistant replies oldest first; by default without excluded messages/conversations."""
        sql = ("select m.* from messages m join conversations c on c.id = m.conversation_id"
               " where m.role = 'assistant'")
        if not include_excluded:
            sql += " and m.exclude = 0 and c.exclude = 0"
        return [_message(r) for r in self._rows(sql + " order by m.id")]

    def last_user_activity(self) -> str | None:
        """When the user last sent a message (ISO, UTC) — the daemon waits for an idle machine."""
        with self._guard():
            row = self.db.execute("select max(created_at) from messages where role = 'user'").fetchone()
        return row[0] if row else None

    def search(self, query: str, limit: int = 50) -> list[Message]:
        rows = self._rows(
            "select messages.* from messages join messages_fts on messages_fts.rowid = messages.id"
            " where messages_fts match ? order by messages_fts.rank limit ?", [_fts_query(query), limit])
        return [_message(r) for r in rows]


def _matching(query: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause of a conversation search: both indexes answer, their union is the set."""
    if not query:
        return "", []
    return (" where id in (select m.conversation_id from messages m join messages_fts f on f.rowid = m.id"
            " where messages_fts match ? union select rowid from conversations_fts where name like ?)",
            [_fts_query(query), f"%{query}%"])


def _fts_query(text: str) -> str:
    """Quote each word so user input can't be parsed as FTS5 syntax."""
    words = [w.replace('"', '""') for w in text.split()]
    return " ".join(f'"{w}"' for w in words) or '""'


def _conversation(r: dict[str, Any]) -> Conversation:
    return Conversation(r["id"], r["name"], r["system_prompt"] or "", r["model"] or "", bool(r["exclude"]),
                        r["created_at"], r["updated_at"] or "")


def _message(r: dict[str, Any]) -> Message:
    return Message(
        id=r["id"], conversation_id=r["conversation_id"], parent_id=r["parent_id"], role=r["role"],
        content=r["content"], prompt_token_ids=_l(r["prompt_token_ids"], None),
        response_token_ids=_l(r["response_token_ids"], None), model=r["model"] or "",
        adapter_version=r["adapter_version"], sampling=_l(r["sampling"], {}), finish_reason=r["finish_reason"] or "",
        prompt_tokens=r["prompt_tokens"] or 0, response_tokens=r["response_tokens"] or 0, ttft_ms=r["ttft_ms"],
        duration_ms=r["duration_ms"], truncated_tokens=r["truncated_tokens"] or 0, exclude=bool(r["exclude"]),
        created_at=r["created_at"])
