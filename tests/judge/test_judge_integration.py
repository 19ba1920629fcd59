"""The real judge (bundled SmolLM2-135M through llama.cpp) over turns logged by ChatService.

Checks structure, not the judge's opinion: a 135M judge is weak (bench/judge_accuracy.py measures
how weak). What must hold regardless: samples carry the exact logged ids and the turn's context,
every raw vote is stored, and a failed vote never becomes a reward."""

from __future__ import annotations

import pytest

from clawdesk.chat import ChatService
from clawdesk.judge.pipeline import judge_pending

pytestmark = pytest.mark.slow


@pytest.fixture
def logged(store, engine, settings):
    chat = ChatService(store, engine, settings.replace(max_tokens=24, seed=7))
    conv = chat.new_conversation(system_prompt="")
    first = chat.send(conv.id, "What is the capital of France?")
    chat.send(conv.id, "No, that's wrong. Answer with just the city name.")
    other = chat.new_conversation()
    corrected = chat.send(other.id, "Say hello in Spanish.")
    chat.correct(corrected.assistant.id, "Hola.")
    return first.assistant, corrected.assistant


def test_judge_writes_samples_and_records_failed_votes(store, engine, settings, logged):
    judged_msg, corrected_msg = logged
    # 1) a judge that cannot finish a reward vote (1 token, no grammar): every reward vote fails
    starved = settings.replace(judge_grammar=False, judge_max_tokens=1, judge_votes=2)
    report = judge_pending(store, starved, judge_engine=engine)
    (s,) = [x for x in store.samples_for(judged_msg.id) if x.source == "judge"]
    reward_votes = [v for v in s.votes if v["kind"] == "reward"]
    assert report.judged == 1 and len(reward_votes) == 2 and len(s.votes) == 4  # + 2 hint votes
    assert all(v["value"] is None and isinstance(v["text"], str) for v in reward_votes)
    assert s.failed_votes == sum(v["value"] is None for v in s.votes) >= 2
    assert s.reward == 0.0  # a failed judgement is never a reward (0 carries no RL term)
    if not s.hints:
        assert (s.status, s.drop_reason) == ("dropped", "judge: all votes failed")
    assert report.failed_votes >= 2

    # 2) the configured judge (grammar on): valid votes, a real verdict
    report = judge_pending(store, settings.replace(judge_votes=2), judge_engine=engine, rejudge=True)
    (s,) = [x for x in store.samples_for(judged_msg.id) if x.source == "judge"]
    reward_votes = [v for v in s.votes if v["kind"] == "reward"]
    assert len(reward_votes) == 2 and all(v["value"] in (-1, 0, 1) for v in reward_votes)
    assert s.reward in (-1.0, 0.0, 1.0) and s.judge_model
    assert s.failed_votes == sum(v["value"] is None for v in s.votes)
    assert s.prompt_token_ids == judged_msg.prompt_token_ids
    assert s.response_token_ids == judged_msg.response_token_ids
    assert s.prompt_messages == [{"role": "user", "content": "What is the capital of France?"}]
    assert "No, that's wrong" in s.next_state
    assert s.status == "ready" or s.drop_reason == "reward 0 and no hint"
    assert all(len(h) > 10 for h in s.hints)

    # the corrected turn: explicit −1, the correction as a hint, and a demonstration
    by_source = {x.source: x for x in store.samples_for(corrected_msg.id)}
    assert by_source["explicit"].reward == -1.0 and by_source["explicit"].status == "ready"
    demo = by_source["demo"]
    assert demo.response_token_ids == engine.tokenize("Hola.") + [engine._llm.token_eos()]
    assert demo.prompt_token_ids == corrected_msg.prompt_token_ids and demo.reward is None

    # a third pass has nothing left to do
    assert judge_pending(store, settings, judge_engine=engine).examined == 0
