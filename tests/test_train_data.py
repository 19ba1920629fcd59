"""Which samples a pass trains on and holds out (no model needed)."""

from __future__ import annotations

from clawdesk.records import Sample
from clawdesk.train.data import epoch_batches, method_weights, mix_positives, skip_reason, split_heldout


def _s(sid: int, mid: int, reward: float | None = None, hints: list[str] | None = None, source: str = "explicit"):
    return Sample(id=sid, message_id=mid, conversation_id=1, prompt_token_ids=[1, 2], response_token_ids=[3, 2],
                  reward=reward, source=source, status="ready", hints=hints or [],
                  prompt_messages=[{"role": "user", "content": "q"}])


def test_heldout_split_is_seeded_stable_and_keeps_a_turn_with_its_demo():
    samples = [_s(i, i, reward=1.0) for i in range(1, 11)] + [_s(11, 3, source="demo")]
    train, held = split_heldout(samples, 0.2, seed=0)
    assert len({s.message_id for s in held}) == 2 and len(train) + len(held) == 11
    assert {s.message_id for s in train}.isdisjoint({s.message_id for s in held})
    again, held_again = split_heldout(list(reversed(samples)), 0.2, seed=0)
    assert {s.id for s in held_again} == {s.id for s in held}  # same set → same split, any order
    assert len({frozenset(s.id for s in split_heldout(samples, 0.2, seed)[1]) for seed in range(5)}) > 1
    assert split_heldout(samples[:2], 0.2, seed=0)[1]  # a positive fraction holds out at least one turn
    assert split_heldout(samples, 0.0, seed=0)[1] == []


def test_methods_use_the_samples_they_have_a_term_for(settings):
    rewarded, hinted, both = _s(1, 1, reward=-1.0), _s(2, 2, hints=["be brief"]), _s(3, 3, 1.0, ["x"])
    demo, neither = _s(4, 1, source="demo"), _s(5, 5, reward=0.0)
    combined, rl, opd = (method_weights(m, settings) for m in ("combined", "rl", "opd"))
    assert rl.w_opd == 0 and opd.w_rl == 0
    assert (combined.w_rl, combined.w_opd) == (rl.w_rl, opd.w_opd) == (settings.train_w_rl, settings.train_w_opd)
    assert [skip_reason(s, combined) is None for s in (rewarded, hinted, both, neither)] == [True, True, True, False]
    assert [skip_reason(s, rl) is None for s in (rewarded, hinted, both)] == [True, False, True]
    assert [skip_reason(s, opd) is None for s in (rewarded, hinted, both)] == [False, True, True]
    assert skip_reason(rewarded, opd, anchor_to_base=True) is None  # the base model as teacher
    assert skip_reason(demo, combined) is None  # w_demo defaults to 1.0
    assert skip_reason(demo, method_weights("combined", settings.replace(train_w_demo=0.0))) == \
        "demonstration with w_demo = 0"
    assert skip_reason(demo, method_weights("rl", settings.replace(train_w_demo=0.5))) is None
    no_messages = _s(6, 6, hints=["x"])
    no_messages.prompt_messages = []
    assert skip_reason(no_messages, opd) is not None  # a hint needs the turn's messages for the teacher


def test_batches_cover_every_sample_once_per_epoch():
    batches = epoch_batches(list(range(5)), batch_size=2, epochs=2, seed=0)
    assert [len(b) for b in batches] == [2, 2, 1, 2, 2, 1]
    assert sorted(sum(batches[:3], [])) == list(range(5)) == sorted(sum(batches[3:], []))
    assert batches == epoch_batches(list(range(5)), 2, 2, seed=0)


def test_context_is_cut_from_the_left_and_the_hint_goes_to_the_last_user_message():
    from clawdesk.train.scoring import HINT_TAG, fit_context, teacher_messages

    prompt, response = list(range(100)), list(range(1000, 1010))
    assert fit_context(prompt, response, 64) == (list(range(46, 100)), response, 46)  # 54 + 10 = 64
    assert fit_context(prompt, response, 200) == (prompt, response, 0)
    long = list(range(2000, 2100))
    p, r, cut = fit_context(prompt, long, 64)  # the response alone overflows: keep its start + 32 context
    assert r == long[:32] and p == prompt[-32:] and cut == 68
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    out = teacher_messages(msgs, "be brief")
    assert out[2]["content"] == "c" + HINT_TAG + "be brief" and out[0]["content"] == "a"
    assert msgs[2]["content"] == "c"  # the sample's own messages are not modified
    assert teacher_messages([{"role": "system", "content": "s"}], "x") is None


def test_a_one_sided_pass_is_topped_up_with_earlier_positives_newest_first():
    train = [_s(i, i, reward=-1.0) for i in range(1, 5)] + [_s(5, 5, reward=1.0), _s(6, 1, source="demo")]
    earlier = [_s(10 + i, 10 + i, reward=1.0) for i in range(5)] + [
        _s(20, 20, reward=-1.0), _s(21, 21, source="demo"), _s(22, 3, reward=1.0), _s(23, 30, reward=1.0)]
    mixed = mix_positives(train, earlier, limit=8, exclude_messages={30})
    # 4 negatives vs 1 positive (the demo has no RL term) → 3 more, newest first; never a negative, a
    # demo, a turn already in the pass (message 3) or a held-out turn (message 30)
    assert [s.id for s in mixed] == [14, 13, 12]
    assert [s.id for s in mix_positives(train, earlier, limit=2, exclude_messages=set())] == [23, 14]
    assert mix_positives(train, earlier, limit=0, exclude_messages=set()) == []
    balanced = train + [_s(7, 7, reward=1.0)] * 3
    assert mix_positives(balanced, earlier, limit=8, exclude_messages=set()) == []
