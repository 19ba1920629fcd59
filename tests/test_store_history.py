"""A long history on a real SQLite file: the sidebar's paging and search, and the judge's change
queue — a turn comes back to the judge exactly when something its next state is read from
changes, and a turn judged long ago is not read again. No model: samples are written the way the
pass writes them (source and next-state summary from ``find_next_state``)."""

from __future__ import annotations

import pytest
import sqlite_utils

from clawdesk.judge import pipeline
from clawdesk.judge.pipeline import judge_pending, pending
from clawdesk.records import Sample
from clawdesk.settings import load_settings
from clawdesk.signals import find_next_state
from clawdesk.store import open_store
from clawdesk.store.migrations import MIGRATIONS


def _turn(store, cid, text, reply, parent=None):
    user = store.add_message(cid, "user", text, parent_id=parent)
    bot = store.add_message(cid, "assistant", reply, parent_id=user.id, prompt_token_ids=[1, 2],
                            response_token_ids=[3, 4], finish_reason="stop")
    return user, bot


def _judged(store, msg, status="ready"):
    """The primary sample a judge pass would write for ``msg`` now."""
    ns = find_next_state(store, msg)
    source = "explicit" if ns.source == "explicit" else "judge"
    return store.upsert_sample(Sample(0, msg.id, msg.conversation_id, [1, 2], [3, 4], ns.reward, source, status,
                                      next_state=ns.summary))


def _pending_ids(store):
    return [m.id for m, _ in pending(store)]


# --- paging and search ---------------------------------------------------------------------------

def test_conversations_page_newest_first_and_count(store):
    ids = [store.new_conversation(f"c{i}").id for i in range(5)]
    order = ids[::-1]  # last activity first; ties (same second) newest id first
    assert [c.id for c in store.list_conversations()] == order
    assert [c.id for c in store.list_conversations(limit=2)] == order[:2]
    assert [c.id for c in store.list_conversations(limit=2, offset=2)] == order[2:4]
    assert [c.id for c in store.list_conversations(offset=4)] == order[4:]
    assert store.list_conversations(limit=2, offset=5) == []
    assert store.count_conversations() == 5


def test_search_finds_names_by_substring_and_messages_by_word(store):
    bread = store.new_conversation("Sourdough Baking")
    code = store.new_conversation("misc")
    store.add_message(code.id, "user", "Explain Python decorators")
    store.new_conversation("unrelated")
    assert [c.id for c in store.list_conversations(query="DOUGH")] == [bread.id]  # part of a name, any case
    assert [c.id for c in store.list_conversations(query="decorators")] == [code.id]
    assert [c.id for c in store.list_conversations(query="decorator")] == [code.id]  # stemmed words
    assert store.count_conversations(query="decorators") == 1
    assert store.list_conversations(query="AND OR NOT (") == [] and store.list_conversations(query='"') == []
    store.update_conversation(bread.id, name="Rye")
    assert store.list_conversations(query="dough") == []
    assert [c.id for c in store.list_conversations(query="rye")] == [bread.id]
    store.delete_conversation(bread.id)
    assert store.list_conversations(query="rye") == [] and store.count_conversations() == 2


def test_search_pages_its_matches(store):
    ids = [store.new_conversation(f"trip {i}").id for i in range(4)]
    store.new_conversation("groceries")
    assert [c.id for c in store.list_conversations(query="trip", limit=3)] == ids[::-1][:3]
    assert [c.id for c in store.list_conversations(query="trip", limit=3, offset=3)] == [ids[0]]
    assert store.count_conversations(query="trip") == 4


def test_upgrade_indexes_names_and_queues_every_existing_turn(tmp_path):
    db = sqlite_utils.Database(tmp_path / "old.db")
    latest = MIGRATIONS.index(next(fn for fn in MIGRATIONS if fn.__name__ == "m004_year_of_use"))
    for fn in MIGRATIONS[:latest]:  # a database from before m004, with a history
        fn(db)
        db["_migrations"].insert({"name": fn.__name__, "applied_at": "2026-01-01"}, pk="name")
    cid = db["conversations"].insert({"name": "Holiday plans", "created_at": "2026-01-01"}).last_pk
    db["messages"].insert({"conversation_id": cid, "role": "user", "content": "q", "created_at": "2026-01-01"})
    bot = db["messages"].insert({"conversation_id": cid, "role": "assistant", "content": "a", "parent_id": 1,
                                 "created_at": "2026-01-01"}).last_pk
    db.conn.close()
    store = open_store(tmp_path / "old.db")
    assert [c.id for c in store.list_conversations(query="holiday")] == [cid]
    assert [m.id for m, _ in store.changed_turns()] == [bot]
    store.close()


# --- the judge's change queue --------------------------------------------------------------------

def _reply(store, bot, _):
    store.add_message(bot.conversation_id, "user", "thanks!", parent_id=bot.id)


def _regenerate(store, bot, user):
    store.add_message(bot.conversation_id, "assistant", "another try", parent_id=user.id)


def _rewrite(store, bot, user):
    store.add_message(bot.conversation_id, "user", "let me rephrase", parent_id=user.parent_id)


def _rate(store, bot, _):
    store.add_feedback(bot.id, "thumbs_down", reason="wrong")


def _unrate(store, bot, _):
    store.remove_feedback(store.feedback_for(bot.id)[0].id)


def _explain(store, bot, _):
    store.update_feedback(store.feedback_for(bot.id)[0].id, comment="shorter please")


def _hide_reply(store, bot, _):
    store.set_message_exclude(store.children(bot.id)[0].id)


def _edit_reply(store, bot, _):
    store.update_message(store.children(bot.id)[0].id, content="no, thanks")


CHANGES = {"reply": (_reply, False, False), "regenerate": (_regenerate, False, False),
           "rewrite": (_rewrite, False, False), "rate": (_rate, False, False), "unrate": (_unrate, True, False),
           "explain": (_explain, True, False), "hide reply": (_hide_reply, False, True),
           "edit reply": (_edit_reply, False, True)}


@pytest.mark.parametrize("change", CHANGES)
def test_a_turn_whose_signals_change_after_judging_is_pending_again(store, change):
    apply, rated, replied = CHANGES[change]
    conv = store.new_conversation()
    first_user, first = _turn(store, conv.id, "q1", "a1")
    user, bot = _turn(store, conv.id, "q2", "a2", parent=first.id)
    if rated:
        store.add_feedback(bot.id, "thumbs_up")
    if replied:
        store.add_message(conv.id, "user", "thanks!", parent_id=bot.id)
    for m in (first, bot):
        _judged(store, m)
    assert _pending_ids(store) == []  # judged and up to date: settled off the queue
    assert store.changed_turns() == []
    apply(store, bot, user)
    assert bot.id in _pending_ids(store)
    assert first.id not in [m.id for m, _ in store.changed_turns()]


def test_a_turn_trained_on_comes_back_when_its_samples_are_requeued(store):
    conv = store.new_conversation()
    _, bot = _turn(store, conv.id, "q", "a")
    store.add_feedback(bot.id, "thumbs_up")
    sample = _judged(store, bot)
    store.set_sample_status([sample.id], "used", run_id=7)
    store.add_feedback(bot.id, "thumbs_down")  # too late: it was trained on
    assert _pending_ids(store) == []
    store.requeue_samples([7])  # the run was rolled back: its samples are ready again
    assert _pending_ids(store) == [bot.id]


def test_an_old_judged_turn_is_not_read_again(store, monkeypatch):
    conv = store.new_conversation()
    _, old = _turn(store, conv.id, "q", "a")
    store.add_feedback(old.id, "thumbs_up")
    judge_pending(store, load_settings())
    assert pending(store) == []  # the pass's own writes are looked at once more, then settled
    _, new = _turn(store, store.new_conversation().id, "q2", "a2")
    store.add_feedback(new.id, "thumbs_down")
    read: list[int] = []

    def spy(store, message):
        read.append(message.id)
        return find_next_state(store, message)

    monkeypatch.setattr(pipeline, "find_next_state", spy)
    report = judge_pending(store, load_settings(), dry_run=True)
    assert read == [new.id] and report.examined == 1
    assert [s.message_id for s in store.samples()] == [old.id]


def test_settling_keeps_a_turn_that_changed_after_it_was_read(store):
    conv = store.new_conversation()
    _, bot = _turn(store, conv.id, "q", "a")
    store.add_feedback(bot.id, "thumbs_up")
    _judged(store, bot)
    [(msg, seq)] = store.changed_turns()
    store.add_feedback(bot.id, "thumbs_down")  # lands between the read and the settle
    assert store.settle_turns([(msg.id, seq)]) == 0
    assert _pending_ids(store) == [bot.id]


def test_dry_runs_and_unjudged_turns_stay_queued(store):
    conv = store.new_conversation()
    _, bot = _turn(store, conv.id, "q", "a")
    store.add_message(conv.id, "user", "and?", parent_id=bot.id)
    settings = load_settings()
    assert judge_pending(store, settings, dry_run=True).examined == 1
    assert judge_pending(store, settings, dry_run=True).examined == 1
    assert store.samples() == []


def test_excluded_turns_leave_the_queue_and_return_when_included(store):
    conv = store.new_conversation()
    _, bot = _turn(store, conv.id, "q", "a")
    store.update_conversation(conv.id, exclude=True)
    assert _pending_ids(store) == [] and store.execute("select count(*) from signals_changed")[0][0] == 0
    store.update_conversation(conv.id, exclude=False)
    assert _pending_ids(store) == [bot.id]


def test_pending_signal_counts_ready_samples_and_unjudged_turns(store):
    conv = store.new_conversation()
    _, judged = _turn(store, conv.id, "q", "a")
    store.add_feedback(judged.id, "thumbs_up")
    _judged(store, judged)  # one ready sample
    _turn(store, conv.id, "q2", "a2", parent=judged.id)  # one turn not judged yet
    _, hidden = _turn(store, conv.id, "q3", "a3", parent=judged.id)
    store.set_message_exclude(hidden.id)
    excluded = store.new_conversation()
    _turn(store, excluded.id, "q", "a")
    store.update_conversation(excluded.id, exclude=True)
    pending(store)  # settling changes nothing the count reads
    assert store.pending_signal() == 2
    assert (store.count_samples("ready"), store.count_samples()) == (1, 1)

