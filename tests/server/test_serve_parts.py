"""The server's parts that need no model: stop sequences, the session tables (schema and
cascade on delete), the token file, and the CLI's refusals."""

from __future__ import annotations

import stat

from click.testing import CliRunner

from clawdesk.cli import cli
from clawdesk.engine.stops import StopScanner
from clawdesk.server import is_loopback, load_or_create_token, token_path
from clawdesk.store import Store


def _scan(stops: list[str], pieces: list[str]) -> tuple[str, bool, list[str]]:
    s = StopScanner(stops)
    shown = [s.feed(p) for p in pieces]
    if not s.hit:
        shown.append(s.flush())
    return "".join(shown), s.hit, shown


def test_a_stop_string_split_across_pieces_is_held_back_then_cut():
    text, hit, shown = _scan(["END"], ["Hello E", "N", "D and more"])
    assert (text, hit) == ("Hello ", True)
    assert shown[0] == "Hello "  # "E" held: it might start "END"


def test_held_text_is_released_when_the_stop_does_not_complete():
    text, hit, shown = _scan(["END"], ["an E", "NVY", " story"])
    assert (text, hit) == ("an ENVY story", False)
    assert shown[:2] == ["an ", "ENVY"]


def test_the_earliest_of_several_stops_wins_and_a_reply_without_any_passes_through():
    assert _scan(["\n\n", "###"], ["a ### b\n\nc"])[:2] == ("a ", True)
    assert _scan(["zzz"], ["plain ", "text"])[:2] == ("plain text", False)


def test_session_tables_have_their_columns_and_go_with_a_forgotten_conversation(store: Store):
    cols = {t: [c.name for c in store.db[t].columns] for t in ("serve_sessions", "served_turns")}
    assert cols["serve_sessions"] == ["id", "key", "turn_type", "conversation_id", "source", "done", "created_at",
                                      "updated_at"]
    assert cols["served_turns"] == ["completion_id", "message_id", "session_key", "turn_type", "tools",
                                    "tool_choice", "created_at"]
    conv = store.new_conversation()
    store.bind_session("s", "main", conv.id, "header")
    user = store.add_message(conv.id, "user", "hi")
    reply = store.add_message(conv.id, "assistant", "hello", parent_id=user.id)
    store.record_served_turn("chatcmpl-1", reply.id, "s", "main", tools=[{"type": "function"}], tool_choice="auto")
    assert store.session_conversation("s", "main") == conv.id
    assert store.served_turn("chatcmpl-1").tools == [{"type": "function"}]

    store.forget_conversations([conv.id])  # "delete" means delete: the session rows and tools go too
    assert store.session_conversation("s", "main") is None and store.served_turn("chatcmpl-1") is None
    assert store.execute("select count(*) from serve_sessions")[0][0] == 0


def test_a_done_session_frees_its_id_for_a_new_conversation(store: Store):
    a, b = store.new_conversation(), store.new_conversation()
    store.bind_session("s", "main", a.id, "header")
    assert store.end_session("s") == 1
    store.bind_session("s", "main", b.id, "header")  # no unique clash with the done row
    assert store.session_conversation("s", "main") == b.id


def test_the_token_is_made_once_and_kept_0600(clawdesk_home):
    token = load_or_create_token()
    assert token.startswith("cd-") and len(token) > 40
    assert stat.S_IMODE(token_path().stat().st_mode) == 0o600
    assert load_or_create_token() == token
    result = CliRunner().invoke(cli, ["serve", "--show-token"])
    assert result.exit_code == 0 and result.output.strip() == token


def test_a_host_other_machines_can_reach_needs_allow_remote(clawdesk_home):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code != 0 and "--allow-remote" in result.output
