"""Signal extraction and the sample pass on hand-made conversations in a real SQLite store.

No model is needed here: every case either has explicit feedback (the judge is not asked) or is
run as a dry run. The real judge runs in test_judge_integration.py."""

from __future__ import annotations

import pytest

from clawdesk.judge.pipeline import judge_pending, pending
from clawdesk.signals import find_next_state, turn_messages
from clawdesk.signals.next_state import REASON_HINTS, STOPPED_NOTE, correction_hint


def _turn(store, cid, text, reply, parent=None, finish="stop"):
    """A logged user message and assistant reply with token ids, as ChatService writes them."""
    user = store.add_message(cid, "user", text, parent_id=parent)
    bot = store.add_message(cid, "assistant", reply, parent_id=user.id, prompt_token_ids=[1, 2, 3, user.id],
                            response_token_ids=[10, 11, 2] if finish == "stop" else [10, 11],
                            finish_reason=finish, model="smollm2-135m-instruct")
    return user, bot


@pytest.fixture
def conv(store):
    return store.new_conversation(system_prompt="Be brief.")


def test_no_next_state_for_the_last_turn(store, conv):
    _, bot = _turn(store, conv.id, "hi", "hello")
    ns = find_next_state(store, bot)
    assert (ns.kind, ns.source, ns.reward) == ("none", "none", None)


def test_next_user_message_goes_to_the_judge(store, conv):
    _, bot = _turn(store, conv.id, "capital of France?", "Paris.")
    _turn(store, conv.id, "thanks! and Spain?", "Madrid.", parent=bot.id)
    ns = find_next_state(store, bot)
    assert (ns.kind, ns.role, ns.text, ns.source) == ("user", "user", "thanks! and Spain?", "judge")


def test_tool_result_when_no_user_message(store, conv):
    _, bot = _turn(store, conv.id, "run ls", "calling ls")
    store.add_message(conv.id, "tool", "error: permission denied", parent_id=bot.id)
    ns = find_next_state(store, bot)
    assert (ns.kind, ns.role, ns.text) == ("tool", "tool", "error: permission denied")


def test_user_message_is_preferred_over_tool_result(store, conv):
    _, bot = _turn(store, conv.id, "run ls", "calling ls")
    store.add_message(conv.id, "tool", "ok", parent_id=bot.id)
    store.add_message(conv.id, "user", "no, I meant ls -la", parent_id=bot.id)
    assert find_next_state(store, bot).kind == "user"


@pytest.mark.parametrize("kind, reward", [("thumbs_up", 1.0), ("thumbs_down", -1.0), ("regenerate", -1.0)])
def test_explicit_ratings_set_the_reward(store, conv, kind, reward):
    _, bot = _turn(store, conv.id, "q", "a")
    store.add_feedback(bot.id, kind)
    ns = find_next_state(store, bot)
    assert (ns.kind, ns.reward, ns.source) == (kind, reward, "explicit")


def test_explicit_feedback_overrides_the_next_message(store, conv):
    _, bot = _turn(store, conv.id, "q", "a")
    _turn(store, conv.id, "great, thanks!", "you're welcome", parent=bot.id)
    store.add_feedback(bot.id, "thumbs_down", reason="too long", comment="way too wordy")
    ns = find_next_state(store, bot)
    assert ns.reward == -1.0 and ns.source == "explicit"
    assert "way too wordy" in ns.hints and REASON_HINTS["too long"] in ns.hints
    assert ns.text == "way too wordy"  # the hint judge still reads the comment


def test_thumbs_beat_correction_beat_regenerate(store, conv):
    _, bot = _turn(store, conv.id, "q", "a")
    store.add_feedback(bot.id, "regenerate")
    assert find_next_state(store, bot).kind == "regenerate"
    store.add_feedback(bot.id, "correction", correction="The answer is 4.")
    ns = find_next_state(store, bot)
    assert (ns.kind, ns.reward, ns.correction) == ("correction", -1.0, "The answer is 4.")
    assert correction_hint("The answer is 4.") in ns.hints
    store.add_feedback(bot.id, "thumbs_up")
    assert find_next_state(store, bot).kind == "thumbs_up"


def test_newer_assistant_sibling_counts_as_regenerate(store, conv):
    user, bot = _turn(store, conv.id, "q", "a")
    store.add_message(conv.id, "assistant", "a2", parent_id=user.id, prompt_token_ids=[1], response_token_ids=[2])
    assert find_next_state(store, bot).kind == "regenerate"


def test_rewritten_request_is_a_reask_for_the_judge(store, conv):
    first_user, first_bot = _turn(store, conv.id, "hello", "hi!")
    _, bot = _turn(store, conv.id, "name a dog", "dogs are loyal", parent=first_bot.id)
    store.add_message(conv.id, "user", "I asked for a NAME for a dog", parent_id=first_bot.id)
    ns = find_next_state(store, bot)
    assert (ns.kind, ns.text, ns.source) == ("reask", "I asked for a NAME for a dog", "judge")


def test_stop_alone_is_not_a_reward_but_a_note_for_the_judge(store, conv):
    _, bot = _turn(store, conv.id, "q", "a long answer", finish="cancelled")
    store.add_feedback(bot.id, "stop")
    assert find_next_state(store, bot).source == "none"
    store.add_message(conv.id, "user", "ok, next question", parent_id=bot.id)
    ns = find_next_state(store, bot)
    assert ns.reward is None and ns.stopped and ns.text.startswith(STOPPED_NOTE)


def test_stop_plus_reask_is_negative(store, conv):
    _, first_bot = _turn(store, conv.id, "hello", "hi!")
    _, bot = _turn(store, conv.id, "name a dog", "dogs are loyal anim", parent=first_bot.id, finish="cancelled")
    store.add_feedback(bot.id, "stop")
    store.add_message(conv.id, "user", "just a dog name please", parent_id=first_bot.id)
    ns = find_next_state(store, bot)
    assert (ns.kind, ns.reward, ns.source) == ("reask", -1.0, "explicit")


def test_turn_messages_is_the_context_the_model_saw(store, conv):
    _, bot1 = _turn(store, conv.id, "one", "1")
    _, bot2 = _turn(store, conv.id, "two", "2", parent=bot1.id)
    assert turn_messages(store, bot2) == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "one"},
        {"role": "assistant", "content": "1"}, {"role": "user", "content": "two"}]


def test_explicit_samples_and_demo_without_a_model(store, conv):
    _, bot = _turn(store, conv.id, "2+2?", "5")
    store.add_feedback(bot.id, "correction", correction="2+2 is 4.")
    # another conversation: a next message would (rightly) bring in the hint judge
    _, bot2 = _turn(store, store.new_conversation().id, "thanks", "np")
    store.add_feedback(bot2.id, "thumbs_up")
    report = judge_pending(store, _settings())
    assert (report.explicit, report.demos, report.judged, report.votes) == (2, 1, 0, 0)
    by_source = {(s.message_id, s.source): s for s in store.samples()}
    primary = by_source[(bot.id, "explicit")]
    assert primary.reward == -1.0 and primary.status == "ready"
    assert primary.response_token_ids == [10, 11, 2] and primary.prompt_token_ids == [1, 2, 3, bot.id - 1]
    assert primary.prompt_messages[-1] == {"role": "user", "content": "2+2?"}
    assert correction_hint("2+2 is 4.") in primary.hints
    assert primary.votes[0]["kind"] == "feedback"
    demo = by_source[(bot.id, "demo")]
    assert demo.reward is None and demo.status == "ready"
    assert demo.prompt_token_ids == primary.prompt_token_ids and demo.prompt_messages == primary.prompt_messages
    assert demo.response_token_ids[-1] == 2  # the end-of-turn token the reply itself ended with
    from clawdesk.engine import Vocab
    from clawdesk import catalog
    vocab = Vocab(next(m for m in catalog.bundled_models() if m.name == catalog.DEFAULT_MODEL).path)
    assert demo.response_token_ids[:-1] == vocab.tokenize("2+2 is 4.")
    assert by_source[(bot2.id, "explicit")].reward == 1.0


def test_idempotent_and_rejudged_when_feedback_changes(store, conv):
    _, bot = _turn(store, conv.id, "q", "a")
    store.add_feedback(bot.id, "thumbs_up")
    judge_pending(store, _settings())
    first = store.samples()
    assert pending(store) == []
    again = judge_pending(store, _settings())
    assert again.examined == 0 and store.samples() == first  # nothing duplicated or redone
    store.add_feedback(bot.id, "thumbs_down", reason="wrong")  # newest thumbs wins
    assert [m.id for m, _ in pending(store)] == [bot.id]
    judge_pending(store, _settings())
    (s,) = store.samples_for(bot.id)
    assert s.reward == -1.0 and REASON_HINTS["wrong"] in s.hints
    assert judge_pending(store, _settings(), rejudge=True).examined == 1


def test_no_next_state_is_recorded_and_examined_again_when_the_user_replies(store, conv):
    _, bot = _turn(store, conv.id, "q", "a")
    judge_pending(store, _settings())
    (s,) = store.samples_for(bot.id)
    assert (s.status, s.drop_reason) == ("dropped", "no next state")
    assert pending(store) == []
    store.add_message(conv.id, "user", "thanks!", parent_id=bot.id)
    (msg, ns), = pending(store)
    assert msg.id == bot.id and ns.kind == "user"


def test_dry_run_writes_nothing_and_loads_no_model(store, conv):
    _, bot = _turn(store, conv.id, "q", "a")
    store.add_message(conv.id, "user", "thanks!", parent_id=bot.id)
    _, bot2 = _turn(store, conv.id, "q2", "a2")
    store.add_feedback(bot2.id, "thumbs_down")
    report = judge_pending(store, _settings(), dry_run=True)
    assert store.samples() == []
    statuses = {s.message_id: (s.source, s.status, s.reward) for s in report.samples}
    assert statuses[bot.id] == ("judge", "needs judge", None)
    assert statuses[bot2.id] == ("explicit", "ready", -1.0)


def test_excluded_messages_and_conversations_never_become_samples(store, conv):
    _, bot = _turn(store, conv.id, "q", "a")
    store.add_feedback(bot.id, "thumbs_up")
    other = store.new_conversation()
    _, bot2 = _turn(store, other.id, "q", "a")
    store.add_feedback(bot2.id, "thumbs_up")
    judge_pending(store, _settings())
    assert len(store.samples()) == 2
    store.add_feedback(bot.id, "exclude")
    store.update_conversation(other.id, exclude=True)
    report = judge_pending(store, _settings())
    # excluding drops the samples at once (Store), so `train --now` cannot see them either;
    # the pass's purge is the safety net for rows written before that existed
    assert report.purged == 0 and store.samples() == []
    _, bot3 = _turn(store, other.id, "q", "a")
    store.add_feedback(bot3.id, "correction", correction="better")
    judge_pending(store, _settings())
    assert store.samples() == []


def test_deleting_a_conversation_deletes_its_samples(store, conv):
    _, bot = _turn(store, conv.id, "q", "a")
    store.add_feedback(bot.id, "correction", correction="fixed answer")
    judge_pending(store, _settings())
    assert len(store.samples()) == 2
    store.delete_conversation(conv.id)
    assert store.samples() == [] and pending(store) == []


def test_withdrawn_correction_removes_the_demo(store, conv):
    _, bot = _turn(store, conv.id, "q", "a")
    fb = store.add_feedback(bot.id, "correction", correction="fixed answer")
    store.add_feedback(bot.id, "thumbs_down")
    judge_pending(store, _settings())
    assert {s.source for s in store.samples()} == {"explicit", "demo"}
    store.remove_feedback(fb.id)
    judge_pending(store, _settings())
    assert [s.source for s in store.samples()] == ["explicit"]


def test_message_without_token_ids_is_dropped(store, conv):
    user = store.add_message(conv.id, "user", "q")
    bot = store.add_message(conv.id, "assistant", "a", parent_id=user.id)
    store.add_feedback(bot.id, "thumbs_up")
    judge_pending(store, _settings())
    (s,) = store.samples()
    assert (s.status, s.drop_reason) == ("dropped", "no token ids logged")


def _settings():
    from clawdesk.settings import load_settings

    return load_settings()


def test_used_samples_are_not_rejudged_by_a_late_signal(store, conv):
    _, bot = _turn(store, conv.id, "q", "a")
    store.add_feedback(bot.id, "thumbs_up")
    judge_pending(store, _settings())
    (s,) = store.samples()
    store.set_sample_status([s.id], "used")
    store.add_feedback(bot.id, "thumbs_down")
    assert pending(store) == []
    assert [m.id for m, _ in pending(store, rejudge=True)] == [bot.id]
