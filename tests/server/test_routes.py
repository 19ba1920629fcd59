"""Each route through the real openai client: a non-streamed and a streamed reply (logged like a
TUI turn), /v1/models, /v1/feedback and /health."""

from __future__ import annotations

import httpx

from clawdesk.store import Store

from serve_helpers import Served, user


def test_non_streamed_reply_is_logged_like_a_tui_turn(server: Served, db: Store, engine):
    client = server.client()
    raw = client.chat.completions.with_raw_response.create(
        model="clawdesk", messages=[{"role": "system", "content": "Be brief."}, user("What is 2 + 2?")],
        max_tokens=12, temperature=0, seed=7)
    reply = raw.parse()
    text = reply.choices[0].message.content
    assert text and reply.choices[0].finish_reason in ("stop", "length")
    assert reply.id.startswith("chatcmpl-") and reply.object == "chat.completion"
    assert reply.usage.completion_tokens <= 12

    assistant = db.get_message(int(raw.headers["x-clawdesk-message-id"]))
    assert assistant.role == "assistant" and assistant.content == text
    # the exact ids the model saw and sampled, as the TUI logs them (docs/method.md §1)
    assert assistant.prompt_token_ids == engine.render([{"role": "system", "content": "Be brief."},
                                                        user("What is 2 + 2?")])
    assert len(assistant.response_token_ids) == reply.usage.completion_tokens
    assert assistant.sampling["temperature"] == 0 and assistant.sampling["seed"] == 7
    conv = db.get_conversation(assistant.conversation_id)
    assert conv.system_prompt == "Be brief."
    assert db.served_turn(reply.id).message_id == assistant.id


def test_streamed_reply_arrives_in_chunks_and_ends_with_done(server: Served, db: Store):
    client = server.client()
    stream = client.chat.completions.create(model="clawdesk", messages=[user("Name three colours.")],
                                            max_tokens=16, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len([p for p in pieces if p]) > 1 and finishes in (["stop"], ["length"])
    assert chunks[-1].usage.completion_tokens >= 1
    text = "".join(pieces)
    logged = db.served_turn(chunks[0].id)
    assert db.get_message(logged.message_id).content == text

    # the raw wire format: SSE events, the last one `[DONE]`
    with httpx.stream("POST", f"{server.base_url}/chat/completions", headers={"Authorization": f"Bearer {server.token}"},
                      json={"messages": [user("Hi")], "max_tokens": 4, "stream": True}, timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"


def test_stop_sequence_ends_the_reply_before_it(server: Served, db: Store):
    client = server.client()
    first = client.chat.completions.create(model="clawdesk", messages=[user("Count from 1 to 10.")],
                                           max_tokens=24, temperature=0)
    text = first.choices[0].message.content
    cut = text[len(text) // 3: len(text) // 3 + 2]
    stopped = client.chat.completions.create(model="clawdesk", messages=[user("Count from 1 to 10.")],
                                             max_tokens=24, temperature=0, stop=[cut])
    assert stopped.choices[0].message.content == text[: text.index(cut)]
    assert stopped.choices[0].finish_reason == "stop"


def test_tools_are_stored_with_the_turn_and_a_template_without_tools_says_so(server: Served, db: Store, engine):
    tools = [{"type": "function", "function": {"name": "get_time", "description": "The current time",
                                                "parameters": {"type": "object", "properties": {}}}}]
    raw = server.client().chat.completions.with_raw_response.create(
        model="clawdesk", messages=[user("What time is it?")], tools=tools, tool_choice="auto", max_tokens=8,
        temperature=0)
    reply = raw.parse()
    served = db.served_turn(reply.id)
    assert served.tools == tools and served.tool_choice == "auto"
    assert not engine.supports_tools  # SmolLM2's template has no tools section
    assert "tools were stored with the turn but not shown to the model" in raw.headers["x-clawdesk-warning"]


def test_models_lists_the_served_model_and_adapter_version(server: Served):
    models = server.client().models.list()
    served = [m for m in models.data if m.served]
    assert [m.id for m in served] == [server.state.model_name]
    assert served[0].adapter_version is None  # base model: nothing promoted in a fresh store


def test_feedback_writes_a_thumbs_down_on_the_served_reply(server: Served, db: Store):
    client = server.client()
    reply = client.chat.completions.create(model="clawdesk", messages=[user("Tell me a joke.")], max_tokens=8,
                                           temperature=0)
    r = httpx.post(f"{server.base_url}/feedback", headers={"Authorization": f"Bearer {server.token}"},
                   json={"id": reply.id, "thumbs": "down", "reason": "too long", "comment": "one line please"})
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == ["thumbs_down"]
    mid = db.served_turn(reply.id).message_id
    [fb] = db.feedback_for(mid)
    assert (fb.kind, fb.reason, fb.comment) == ("thumbs_down", "too long", "one line please")

    more = httpx.post(f"{server.base_url}/feedback", headers={"Authorization": f"Bearer {server.token}"},
                      json={"id": reply.id, "correction": "Why did the cat sit on the laptop? To keep an eye on the mouse.",
                            "exclude": True})
    assert more.json()["recorded"] == ["correction", "exclude"]
    assert db.get_message(mid).exclude
    unknown = httpx.post(f"{server.base_url}/feedback", headers={"Authorization": f"Bearer {server.token}"},
                         json={"id": "chatcmpl-nope", "thumbs": "up"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "completion_not_found"


def test_health_needs_no_token(server: Served):
    r = httpx.get(f"{server.root}/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
