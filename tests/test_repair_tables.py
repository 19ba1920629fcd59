"""Repair rebuilds every table that holds the user's data, including those later migrations add
(the server's sessions), not only the ones it was written for."""

from __future__ import annotations

from clawdesk import locations
from clawdesk.store import open_store
from clawdesk.store.repair import repair


def test_repair_keeps_the_tables_later_migrations_added(store):
    conv = store.new_conversation(name="served")
    user = store.add_message(conv.id, "user", "hello")
    bot = store.add_message(conv.id, "assistant", "hi", parent_id=user.id)
    store.bind_session("agent-1", "main", conv.id, "header")
    store.record_served_turn("chatcmpl-1", bot.id, "agent-1", "main")
    store.close()

    report = repair(locations.db_path())

    fixed = open_store(locations.db_path())
    try:
        assert report.recovered["serve_sessions"] == 1 and report.recovered["served_turns"] == 1
        assert "signals_changed" not in report.recovered  # refilled by triggers, not copied
        assert fixed.session_conversation("agent-1", "main") == conv.id
        assert fixed.served_turn("chatcmpl-1").message_id == bot.id
        assert fixed.integrity_check() == "ok"
    finally:
        fixed.close()
