"""Sessions as agents send them: headers (or body fields, or nothing), main and side turns, the
whole history resent each time — and what the judge then makes of the logged turns."""

from __future__ import annotations

from clawdesk.judge.pipeline import judge_pending
from clawdesk.signals import find_next_state
from clawdesk.store import Store

from serve_helpers import Served, user

QUICK = {"max_tokens": 12, "temperature": 0}


def _ask(client, messages, session: str | None = None, turn_type: str | None = None, done: bool = False, **kw):
    headers = {}
    if session:
        headers["X-Session-Id"] = session
    if turn_type:
        headers["X-Turn-Type"] = turn_type
    if done:
        headers["X-Session-Done"] = "true"
    raw = client.chat.completions.with_raw_response.create(model="clawdesk", messages=messages,
                                                           extra_headers=headers, **{**QUICK, **kw})
    reply = raw.parse()
    return reply, raw.headers, {"role": "assistant", "content": reply.choices[0].message.content}


def test_three_turn_session_stores_next_states_and_the_judge_judges_them(server: Served, db: Store, settings, engine):
    client = server.client()
    history = [{"role": "system", "content": "You are a helpful assistant."}, user("What is the capital of France?")]
    r1, h1, a1 = _ask(client, history, "agent-1")
    history += [a1, user("Thanks! And of Italy?")]
    r2, h2, a2 = _ask(client, history, "agent-1")
    history += [a2, {"role": "tool", "tool_call_id": "call_1", "content": "lookup: Rome is the capital of Italy."}]
    r3, h3, _ = _ask(client, history, "agent-1")

    assert h1["x-clawdesk-conversation-id"] == h2["x-clawdesk-conversation-id"] == h3["x-clawdesk-conversation-id"]
    cid = int(h1["x-clawdesk-conversation-id"])
    # the whole history was resent twice; every message is stored once, in order, as one branch
    stored = db.messages(cid)
    assert [m.role for m in stored] == ["user", "assistant", "user", "assistant", "tool", "assistant"]
    assert all(m.parent_id == (stored[i - 1].id if i else None) for i, m in enumerate(stored))
    assert db.sessions_of(cid)[0]["key"] == "agent-1" and db.sessions_of(cid)[0]["source"] == "header"

    first, second, third = (db.get_message(db.served_turn(r.id).message_id) for r in (r1, r2, r3))
    # the next request's last message is the previous turn's next state — a user reply, a tool result
    ns1, ns2 = find_next_state(db, first), find_next_state(db, second)
    assert (ns1.kind, ns1.role, ns1.text) == ("user", "user", "Thanks! And of Italy?")
    assert (ns2.kind, ns2.role, ns2.text) == ("tool", "tool", "lookup: Rome is the capital of Italy.")
    assert find_next_state(db, third).kind == "none"

    report = judge_pending(db, settings.replace(judge_votes=1, judge_max_tokens=48), judge_engine=engine)
    samples = {s.message_id: s for s in db.samples()}
    assert samples[first.id].source == "judge" and "Thanks! And of Italy?" in samples[first.id].next_state
    assert samples[second.id].source == "judge" and samples[second.id].votes
    assert samples[third.id].drop_reason == "no next state"
    assert samples[first.id].prompt_token_ids == first.prompt_token_ids
    assert report.examined == 3


def test_side_turns_are_served_and_logged_but_never_trained_on(server: Served, db: Store, settings, engine):
    client = server.client()
    history = [user("Plan a picnic.")]
    main, hm, a1 = _ask(client, history, "agent-2")
    side, hs, _ = _ask(client, history + [a1, user("Summarise this conversation in five words.")], "agent-2", "side")
    assert side.choices[0].message.content
    assert hs["x-turn-type"] == "side" and hs["x-clawdesk-conversation-id"] != hm["x-clawdesk-conversation-id"]

    side_msg = db.get_message(db.served_turn(side.id).message_id)
    assert db.get_conversation(side_msg.conversation_id).exclude  # excluded from learning
    assert db.served_turn(side.id).turn_type == "side"
    main_msg = db.get_message(db.served_turn(main.id).message_id)
    assert find_next_state(db, main_msg).kind == "none"  # the side request is not the main turn's next state
    assert side_msg.id not in [m.id for m in db.assistant_messages()]

    judge_pending(db, settings.replace(judge_votes=1, judge_max_tokens=32), judge_engine=engine)
    assert side_msg.id not in {s.message_id for s in db.samples()}


def test_without_a_session_id_one_conversation_per_prefix(server: Served, db: Store):
    client = server.client()
    r1, h1, a1 = _ask(client, [user("Hello there, who are you?")])
    r2, h2, _ = _ask(client, [user("Hello there, who are you?"), a1, user("Nice. What can you do?")])
    _, h3, _ = _ask(client, [user("A different chat altogether.")])
    assert h1["x-session-id"].startswith("prefix:") and h1["x-session-id"] == h2["x-session-id"]
    assert h1["x-clawdesk-conversation-id"] == h2["x-clawdesk-conversation-id"] != h3["x-clawdesk-conversation-id"]
    assert len(db.messages(int(h1["x-clawdesk-conversation-id"]))) == 4

    # the body fields are the fallback for clients that cannot set headers
    _, hb, _ = _ask(client, [user("Body session")], extra_body={"session_id": "body-1", "turn_type": "side"})
    assert (hb["x-session-id"], hb["x-turn-type"]) == ("body-1", "side")


def test_resending_the_same_request_is_a_regenerate_and_done_ends_the_session(server: Served, db: Store):
    client = server.client()
    first, h1, _ = _ask(client, [user("Write a haiku about rain.")], "agent-3")
    again, h2, _ = _ask(client, [user("Write a haiku about rain.")], "agent-3", done=True)
    cid = int(h1["x-clawdesk-conversation-id"])
    old, new = (db.served_turn(r.id).message_id for r in (first, again))
    assert [m.role for m in db.messages(cid)] == ["user", "assistant", "assistant"]  # siblings, one user message
    assert [f.kind for f in db.feedback_for(old)] == ["regenerate"] and not db.feedback_for(new)

    _, h3, _ = _ask(client, [user("Write a haiku about rain.")], "agent-3")
    assert h3["x-clawdesk-conversation-id"] != h1["x-clawdesk-conversation-id"]  # a done session starts afresh


def test_a_changed_system_prompt_continues_the_conversation(server: Served, db: Store):
    client = server.client()
    _, h1, a1 = _ask(client, [{"role": "system", "content": "Date: Monday."}, user("Hi!")], "agent-4")
    _, h2, _ = _ask(client, [{"role": "system", "content": "Date: Tuesday."}, user("Hi!"), a1, user("Bye!")],
                    "agent-4")
    cid = int(h1["x-clawdesk-conversation-id"])
    assert h2["x-clawdesk-conversation-id"] == str(cid)
    assert db.get_conversation(cid).system_prompt == "Date: Tuesday." and len(db.messages(cid)) == 4
