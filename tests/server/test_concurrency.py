"""One engine, many clients: concurrent sessions queue without losing or duplicating a message;
a client that hangs up mid-stream stops its generation (logged as stopped, like Esc); a promotion
that lands mid-stream is used from the next request on."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from clawdesk import locations
from clawdesk.store import Store

from serve_helpers import Served, hold_after_first_piece, random_lora, user, wait_for

CLIENTS, TURNS = 4, 5


def test_four_clients_five_turns_each_lose_and_duplicate_nothing(server: Served, db: Store):
    def agent(n: int) -> tuple[str, list[dict]]:
        client = server.client()
        history: list[dict] = [{"role": "system", "content": f"You are agent {n}."}]
        cid = ""
        for turn in range(TURNS):  # a bounded loop: 5 turns, then done
            history.append(user(f"Agent {n}, turn {turn}: say a number."))
            raw = client.chat.completions.with_raw_response.create(
                model="clawdesk", messages=history, max_tokens=6, temperature=0,
                extra_headers={"X-Session-Id": f"agent-{n}"})
            cid = raw.headers["x-clawdesk-conversation-id"]
            history.append({"role": "assistant", "content": raw.parse().choices[0].message.content})
        return cid, history

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(agent, range(CLIENTS)))

    assert len({cid for cid, _ in results}) == CLIENTS
    for cid, history in results:
        stored = db.messages(int(cid))
        assert [(m.role, m.content.strip()) for m in stored] == [(h["role"], h["content"].strip())
                                                                 for h in history[1:]]
    assert db.counts()["messages"] == CLIENTS * TURNS * 2


def test_a_client_that_disconnects_mid_stream_stops_the_generation(server: Served, db: Store, engine,
                                                                   monkeypatch: pytest.MonkeyPatch):
    release = hold_after_first_piece(engine, monkeypatch)  # the engine waits after one piece until cancelled
    stream = server.client().chat.completions.create(model="clawdesk", messages=[user("Tell me a long story.")],
                                                     max_tokens=200, temperature=0, stream=True)
    chunks = iter(stream)
    first = next(chunks)
    while not (first.choices and first.choices[0].delta.content):  # the role chunk, then the held piece
        first = next(chunks)
    stream.close()  # hang up mid-reply

    turn = wait_for(lambda: db.served_turn(first.id), timeout=30)
    assistant = db.get_message(turn.message_id)
    assert assistant.finish_reason == "cancelled" and 0 < len(assistant.response_token_ids) < 200
    assert [f.kind for f in db.feedback_for(assistant.id)] == ["stop"]  # as Esc in the TUI
    assert not release.is_set()  # the hold ended because the server cancelled the turn, not the test


def test_a_promotion_mid_stream_applies_from_the_next_request(server: Served, db: Store, engine, model_path,
                                                              monkeypatch: pytest.MonkeyPatch):
    client = server.client()
    ask = [user("Name a fruit.")]
    base = client.chat.completions.create(model="clawdesk", messages=ask, max_tokens=16, temperature=0)
    base_text = base.choices[0].message.content

    release = hold_after_first_piece(engine, monkeypatch)
    pieces: list[str] = []
    started = threading.Event()

    def stream() -> str:
        s = client.chat.completions.create(model="clawdesk", messages=ask, max_tokens=16, temperature=0,
                                           stream=True, extra_headers={"X-Session-Id": "promoted-mid-stream"})
        cid = ""
        for chunk in s:
            cid = chunk.id
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
                started.set()
        return cid

    with ThreadPoolExecutor(1) as pool:
        streamed = pool.submit(stream)
        assert started.wait(60)
        # what `clawdesk train` does when the gate passes: a new version, made the served one
        folder = locations.adapters_dir() / "v1"
        folder.mkdir(parents=True)
        random_lora(folder / "adapter.gguf", model_path)
        db.record_promotion(1, str(folder / "peft"), str(folder / "adapter.gguf"), "adapter", None, None, {}, [])
        release.set()
        stream_id = streamed.result(60)

    assert "".join(pieces) == base_text  # finished on the old weights
    assert db.get_message(db.served_turn(stream_id).message_id).adapter_version is None
    try:
        after = client.chat.completions.create(model="clawdesk", messages=ask, max_tokens=16, temperature=0)
        assert after.choices[0].message.content != base_text  # the new weights answer
        assert db.get_message(db.served_turn(after.id).message_id).adapter_version == 1
        assert after.system_fingerprint.endswith("-v1")
        served = [m for m in client.models.list().data if m.served][0]
        assert served.adapter_version == 1 and served.promoted_version == 1
    finally:
        engine.request_swap(None, None)  # leave the session's engine as the next test expects it
