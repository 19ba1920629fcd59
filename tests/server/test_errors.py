"""Every refusal is a 4xx with an OpenAI-style error body, raised as the right exception by the
real openai client: auth, malformed JSON, unknown model, over-long prompt, oversized body."""

from __future__ import annotations

import httpx
import openai
import pytest

from clawdesk.store import Store

from serve_helpers import Served, user


def _error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == code and body["message"] and body["type"]
    return body


def test_a_missing_or_wrong_token_is_refused(server: Served, db: Store):
    with pytest.raises(openai.AuthenticationError) as wrong:
        server.client(api_key="not-the-token").chat.completions.create(model="clawdesk", messages=[user("hi")])
    assert wrong.value.status_code == 401 and wrong.value.code == "invalid_api_key"
    r = httpx.post(f"{server.base_url}/chat/completions", json={"messages": [user("hi")]})
    _error(r, 401, "missing_api_key")
    assert r.headers["www-authenticate"] == "Bearer"
    _error(httpx.get(f"{server.base_url}/models"), 401, "missing_api_key")
    assert db.counts()["messages"] == 0  # nothing was logged for a refused request


def test_malformed_json_and_bad_fields_are_400(server: Served):
    auth = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
    url = f"{server.base_url}/chat/completions"
    _error(httpx.post(url, headers=auth, content=b'{"messages": [{"role": "user", "content": "hi"}'), 400,
           "invalid_json")
    _error(httpx.post(url, headers=auth, content=b"[1, 2]"), 400, "invalid_json")
    assert _error(httpx.post(url, headers=auth, json={"messages": []}), 400, "invalid_request")["param"] == "messages"
    assert _error(httpx.post(url, headers=auth, json={"messages": [user("hi")], "temperature": "hot"}), 400,
                  "invalid_request")["param"] == "temperature"
    assert _error(httpx.post(url, headers=auth, json={"messages": [user("hi"), {"role": "assistant", "content": "x"}]}),
                  400, "invalid_request")["param"] == "messages"
    with pytest.raises(openai.BadRequestError):
        server.client().chat.completions.create(model="clawdesk", messages=[user("hi")],
                                                extra_headers={"X-Turn-Type": "sideways"})
    _error(httpx.get(f"{server.root}/v2/nothing", headers=auth), 404, "not_found")


def test_an_unknown_model_is_404_and_a_registered_unserved_one_400(server: Served, db: Store, model_path: str):
    with pytest.raises(openai.NotFoundError) as e:
        server.client().chat.completions.create(model="gpt-9", messages=[user("hi")])
    assert e.value.code == "model_not_found"
    from clawdesk.records import ModelEntry

    db.add_model(ModelEntry("other", model_path))
    with pytest.raises(openai.BadRequestError) as e2:
        server.client().chat.completions.create(model="other", messages=[user("hi")])
    assert e2.value.code == "model_not_served"


def test_a_message_longer_than_the_context_is_400_and_a_long_history_is_truncated_with_a_note(server: Served,
                                                                                             db: Store, engine):
    client = server.client()
    huge = "lorem ipsum dolor sit amet " * 800  # ~4,000 tokens; the window is 2,048
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="clawdesk", messages=[user(huge)], max_tokens=8)
    assert e.value.code == "context_length_exceeded" and "2048" in e.value.message
    assert db.counts()["messages"] == 0

    # a history that is too long as a whole is served: the oldest turns are left out, and said so
    long_turn = "the quick brown fox jumps over the lazy dog " * 60  # ~600 tokens
    history = []
    for i in range(4):
        history += [user(f"{i}: {long_turn}"), {"role": "assistant", "content": "Noted."}]
    raw = client.chat.completions.with_raw_response.create(model="clawdesk", messages=history + [user("Done?")],
                                                           max_tokens=8, temperature=0)
    assert raw.headers["x-clawdesk-truncated"] == "1" and int(raw.headers["x-clawdesk-truncated-tokens"]) > 0
    assert "oldest turns were left out" in raw.headers["x-clawdesk-warning"]
    logged = db.get_message(int(raw.headers["x-clawdesk-message-id"]))
    assert logged.truncated_tokens > 0 and len(logged.prompt_token_ids) <= engine.n_ctx


def test_a_body_over_10_mb_is_refused_unread(server: Served, db: Store):
    big = b'{"messages": [{"role": "user", "content": "' + b"a" * (10 * 1024 * 1024) + b'"}]}'
    r = httpx.post(f"{server.base_url}/chat/completions", content=big, timeout=60,
                   headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    _error(r, 413, "request_too_large")

    def chunked():  # no Content-Length: counted as it arrives
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(11):
            yield b"a" * 1024 * 1024
        yield b'"}]}'

    r2 = httpx.post(f"{server.base_url}/chat/completions", content=chunked(), timeout=60,
                    headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    _error(r2, 413, "request_too_large")
    assert db.counts()["messages"] == 0
