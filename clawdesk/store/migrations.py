"""Named schema migrations, applied in order and recorded in ``_migrations``.

Modelled on simonw/llm: each migration is a small function registered with ``@migration``;
``migrate(db)`` applies the ones whose names are not yet recorded. Never edit a migration that
has shipped — add a new one, so that every user's database reaches the same schema.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import sqlite_utils

MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = []


def migration(fn: Callable[[sqlite_utils.Database], None]) -> Callable[[sqlite_utils.Database], None]:
    MIGRATIONS.append(fn)
    return fn


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    table = db["_migrations"]
    if not table.exists():
        table.create({"name": str, "applied_at": str}, pk="name")
    done = {row["name"] for row in table.rows}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        with db.conn:  # one transaction per migration: all of it or none of it
            fn(db)
            table.insert({"name": fn.__name__, "applied_at": _now()})
        applied.append(fn.__name__)
    return applied


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    db["conversations"].create(
        {
            "id": int,
            "name": str,
            "system_prompt": str,
            "model": str,
            # "don't learn from this conversation" (docs/method.md §1)
            "exclude": int,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"name", "created_at"},
        defaults={"system_prompt": "", "model": "", "exclude": 0},
    )
    # Messages form a tree: a regenerated answer is a sibling (same parent), never an overwrite,
    # because the rejected sibling is itself a training signal.
    db["messages"].create(
        {
            "id": int,
            "conversation_id": int,
            "parent_id": int,
            "role": str,
            "content": str,
            # Exact ids the model saw and sampled, JSON lists. Training scores these, never a
            # re-tokenisation of `content` (docs/method.md §1).
            "prompt_token_ids": str,
            "response_token_ids": str,
            "model": str,
            "adapter_version": int,
            "sampling": str,
            "finish_reason": str,
            "prompt_tokens": int,
            "response_tokens": int,
            "ttft_ms": float,
            "duration_ms": float,
            "truncated_tokens": int,
            "exclude": int,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id"), ("parent_id", "messages", "id")],
        not_null={"conversation_id", "role", "content", "created_at"},
        defaults={"model": "", "sampling": "{}", "finish_reason": "", "prompt_tokens": 0,
                  "response_tokens": 0, "truncated_tokens": 0, "exclude": 0},
    )
    db["messages"].create_index(["conversation_id"])
    db["messages"].create_index(["parent_id"])
    db["messages"].enable_fts(["content"], create_triggers=True, tokenize="porter")
    db["feedback"].create(
        {
            "id": int,
            "message_id": int,
            "kind": str,  # thumbs_up | thumbs_down | correction | regenerate | stop | exclude | comment
            "reason": str,
            "comment": str,
            "correction": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("message_id", "messages", "id")],
        not_null={"message_id", "kind", "created_at"},
        defaults={"reason": "", "comment": "", "correction": ""},
    )
    db["feedback"].create_index(["message_id"])
    db["samples"].create(
        {
            "id": int,
            # One sample per judged assistant message (UNIQUE makes judging idempotent); a
            # demonstration built from a correction shares the message with source = 'demo'.
            "message_id": int,
            "conversation_id": int,
            "source": str,  # explicit | judge | demo
            "prompt_token_ids": str,
            "response_token_ids": str,
            "prompt_messages": str,  # the turn's chat messages as JSON, for the teacher context
            "next_state": str,
            "reward": float,
            "votes": str,
            "failed_votes": int,
            "hints": str,
            "status": str,  # ready | dropped | used
            "drop_reason": str,
            "judge_model": str,
            "run_id": int,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("message_id", "messages", "id")],
        not_null={"message_id", "source", "status", "created_at"},
        defaults={"votes": "[]", "failed_votes": 0, "hints": "[]", "drop_reason": "",
                  "next_state": "", "prompt_messages": "[]", "judge_model": ""},
    )
    db["samples"].create_index(["message_id", "source"], unique=True)
    db["samples"].create_index(["status"])
    db["training_runs"].create(
        {
            "id": int,
            "status": str,  # running | done | failed | refused | promoted
            "method": str,
            "started_at": str,
            "finished_at": str,
            "n_samples": int,
            "settings": str,
            "metrics": str,  # per-step curves: loss, reward mean, OPD advantage, clip fraction, ...
            "gate": str,  # the promotion decision and its numbers
            "candidate_path": str,
            "error": str,
            "pid": int,
        },
        pk="id",
        not_null={"status", "method", "started_at"},
        defaults={"n_samples": 0, "settings": "{}", "metrics": "{}", "gate": "{}",
                  "candidate_path": "", "error": ""},
    )
    db["adapters"].create(
        {
            "version": int,
            "parent_version": int,
            "run_id": int,
            "path": str,  # peft folder (training resumes from it)
            "gguf_path": str,  # what llama.cpp serves: a LoRA GGUF or a merged model GGUF
            "kind": str,  # adapter | merged
            "metrics": str,
            "trained_on": str,  # JSON list of message ids, so `forget` can flag the adapter
            "trained_on_forgotten": int,
            "created_at": str,
            "promoted_at": str,
            "rolled_back_at": str,
        },
        pk="version",
        foreign_keys=[("run_id", "training_runs", "id")],
        not_null={"path", "created_at"},
        defaults={"gguf_path": "", "kind": "adapter", "metrics": "{}", "trained_on": "[]",
                  "trained_on_forgotten": 0},
    )
    # Models the user registered with `clawdesk models add` (bundled ones come from manifests).
    db["models"].create(
        {"name": str, "path": str, "sha256": str, "source": str, "license": str,
         "template_notes": str, "hf_checkpoint": str, "added_at": str},
        pk="name",
        not_null={"path", "added_at"},
        defaults={"sha256": "", "source": "", "license": "", "template_notes": "", "hf_checkpoint": ""},
    )
    # Small key/value state: the model chosen with `models use`, the served adapter version.
    db["state"].create({"key": str, "value": str}, pk="key")


@migration
def m002_pipeline_log(db: sqlite_utils.Database) -> None:
    # Why a table: the daemon runs unattended at night; the user needs to see, in the morning, that
    # it ran (or why it skipped: busy, on battery, too few samples) without reading a log file.
    db["pipeline_log"].create(
        {"id": int, "at": str, "trigger": str, "decision": str, "detail": str, "run_id": int},
        pk="id",
        not_null={"at", "trigger", "decision"},
        defaults={"detail": ""},
    )


@migration
def m003_serve_sessions(db: sqlite_utils.Database) -> None:
    # `clawdesk serve` (clawdesk/store/sessions.py): an agent's session id → the conversation that
    # holds it, and the completion id it was given → the assistant message. Plain SQL because
    # sqlite-utils cannot declare ON DELETE CASCADE, and deleting a conversation must take these
    # rows (session ids, the request's tool definitions) with it: "delete" means delete.
    db.execute("""
        create table serve_sessions (
            id integer primary key,
            key text not null,
            turn_type text not null,  -- main | side
            conversation_id integer not null references conversations(id) on delete cascade,
            source text not null default '',  -- header | body | prefix
            done integer not null default 0,
            created_at text not null,
            updated_at text)""")
    # at most one live conversation per (session, turn type); a done session keeps its rows
    db.execute("create unique index serve_sessions_live on serve_sessions(key, turn_type) where done = 0")
    db.execute("create index serve_sessions_conversation on serve_sessions(conversation_id)")
    db.execute("""
        create table served_turns (
            completion_id text primary key,
            message_id integer not null references messages(id) on delete cascade,
            session_key text not null default '',
            turn_type text not null default 'main',
            tools text,  -- the request's `tools`, JSON, stored with the turn
            tool_choice text,
            created_at text not null)""")
    db.execute("create index served_turns_message on served_turns(message_id)")


def _queue(where: str) -> str:
    """A trigger statement: put the assistant messages matching ``where`` on the judge's change
    queue, with a sequence number above every one there (see store/samples.py)."""
    return ("insert into signals_changed (message_id, seq)"
            " select id, (select coalesce(max(seq), 0) + 1 from signals_changed) from messages"
            f" where +role = 'assistant' and {where}"  # '+': never the role index, which holds every turn
            " on conflict(message_id) do update set seq = excluded.seq;")


def _queue_around(r: str) -> str:
    """The turns whose next state a message row ``r`` (new or old) is part of: its parent (r is
    the reply or tool result below it), its older siblings (r regenerates them) and the replies
    under the older siblings (r rewrites the request they answered). One statement each: an OR
    would lose the indexes."""
    same_parent = f"conversation_id = {r}.conversation_id and parent_id is {r}.parent_id and id < {r}.id"
    return " ".join([
        _queue(f"id = {r}.parent_id"),
        _queue(same_parent),
        _queue(f"id < {r}.id and parent_id in (select id from messages where {same_parent})"),
    ])


@migration
def m004_year_of_use(db: sqlite_utils.Database) -> None:
    # A year of history must not slow every start and every judge pass down.
    # 1. The sidebar pages newest first: an index in exactly list_conversations' order.
    db.execute("create index conversations_recent on conversations(coalesce(updated_at, created_at) desc, id desc)")
    # 2. Searching names without reading every row: trigram FTS5 answers LIKE '%text%' from its index.
    db.execute("create virtual table conversations_fts using fts5(name, content='conversations',"
               " content_rowid='id', tokenize='trigram')")
    db.execute("insert into conversations_fts(conversations_fts) values ('rebuild')")
    db.execute("create trigger conversations_fts_insert after insert on conversations begin"
               " insert into conversations_fts(rowid, name) values (new.id, new.name); end")
    db.execute("create trigger conversations_fts_delete after delete on conversations begin"
               " insert into conversations_fts(conversations_fts, rowid, name) values ('delete', old.id, old.name); end")
    db.execute("create trigger conversations_fts_update after update of name on conversations begin"
               " insert into conversations_fts(conversations_fts, rowid, name) values ('delete', old.id, old.name);"
               " insert into conversations_fts(rowid, name) values (new.id, new.name); end")
    # 3. Siblings within a conversation (roots have parent_id null in every conversation), and the
    #    daemon's "when did the user last write".
    db.execute("create index messages_conversation_parent on messages(conversation_id, parent_id)")
    db.execute("create index messages_role_created on messages(role, created_at)")
    # 4. The judge's change queue: the turns whose signals changed since a judge pass last found
    #    their sample up to date. Every existing turn starts queued: the first pass reads them all once.
    db.execute("create table signals_changed (message_id integer primary key, seq integer not null)")
    db.execute("create index signals_changed_seq on signals_changed(seq)")
    db.execute("insert into signals_changed (message_id, seq) select id, 1 from messages where role = 'assistant'")
    db.execute("create trigger signals_message_insert after insert on messages begin"
               f" {_queue('id = new.id')} {_queue_around('new')} end")
    db.execute("create trigger signals_message_update after update of conversation_id, parent_id, role, content,"
               f" exclude on messages begin {_queue('id = new.id')} {_queue_around('old')} {_queue_around('new')} end")
    db.execute("create trigger signals_message_delete after delete on messages begin"
               f" delete from signals_changed where message_id = old.id; {_queue_around('old')} end")
    for table in ("feedback", "samples"):  # a turn's own feedback and samples
        db.execute(f"create trigger signals_{table}_insert after insert on {table} begin"
                   f" {_queue('id = new.message_id')} end")
        db.execute(f"create trigger signals_{table}_update after update on {table} begin"
                   f" {_queue('id = old.message_id')} {_queue('id = new.message_id')} end")
        db.execute(f"create trigger signals_{table}_delete after delete on {table} begin"
                   f" {_queue('id = old.message_id')} end")
    db.execute("create trigger signals_conversation_exclude after update of exclude on conversations"
               f" when new.exclude is not old.exclude begin {_queue('conversation_id = new.id')} end")


@migration
def m005_preference_memory(db: sqlite_utils.Database) -> None:
    # The preference memory (clawdesk/store/memory.py, docs/memory.md). Plain SQL for ON DELETE
    # CASCADE: forgetting a conversation takes the sources that quote it, and a learned wish left
    # with no source at all goes too (the trigger) — its words came from the deleted turns. A wish
    # the user deleted stays as a tombstone (status 'deleted') with its sources, so that the same
    # turns never bring it back.
    db.execute("""
        create table wishes (
            id integer primary key,
            text text not null,
            slot text not null default '',  -- a new wish replaces the old one in the same slot
            origin text not null,  -- rule | judge | user
            status text not null default 'active',  -- active | deleted
            created_at text not null,
            confirmed_at text not null)""")
    db.execute("create index wishes_status on wishes(status, slot)")
    db.execute("""
        create table wish_sources (
            id integer primary key,
            wish_id integer not null references wishes(id) on delete cascade,
            message_id integer references messages(id) on delete cascade,
            feedback_id integer references feedback(id) on delete cascade,
            channel text not null,  -- correction | comment | thumbs_down | message | judge
            quote text not null default '',
            created_at text not null)""")
    db.execute("create index wish_sources_wish on wish_sources(wish_id)")
    db.execute("create index wish_sources_message on wish_sources(message_id)")
    db.execute("create index wish_sources_feedback on wish_sources(feedback_id)")
    db.execute("create trigger wish_sources_gone after delete on wish_sources"
               " when (select origin from wishes where id = old.wish_id) != 'user'"
               " and not exists (select 1 from wish_sources where wish_id = old.wish_id)"
               " begin delete from wishes where id = old.wish_id; end")
    # What the memory added to each reply's prompt, so the messages the model saw can be rebuilt
    # exactly (the teacher context re-renders them; the logged token ids already include it).
    db.execute("""
        create table memory_notes (
            message_id integer primary key references messages(id) on delete cascade,
            placement text not null,
            text text not null,
            wish_ids text not null default '[]')""")
