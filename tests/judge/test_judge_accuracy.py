"""A judge that knows it is weak: the real bundled judge measured on the labelled ±1 cases, the
result cached per judge model and settings, and — below ``judge_min_accuracy`` — implicit rewards
not used while explicit feedback still is. ``status`` and ``doctor`` say which.

The measurement stops once the verdict against the bar is settled; a bar of 0.95 on the bundled
judge (below chance) settles after a few wrong verdicts, so the model test takes seconds, not the
minutes a full measurement does (bench/judge_accuracy.py and `clawdesk judge --check` do that)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from clawdesk.chat import ChatService
from clawdesk.cli import cli
from clawdesk.judge.accuracy import JudgeAccuracy, cache_key, cached, judge_entry, save, sign_cases
from clawdesk.judge.pipeline import IMPLICIT_OFF, judge_pending


def test_the_verdict_is_settled_as_soon_as_the_rest_cannot_change_it():
    assert JudgeAccuracy("m", 26, 30, 42, 3, 0, "").passes(0.6) is True  # 26/42 ≥ 0.6 already
    assert JudgeAccuracy("m", 9, 26, 42, 3, 0, "").passes(0.6) is False  # 9 + 16 left < 26
    assert JudgeAccuracy("m", 10, 26, 42, 3, 0, "").passes(0.6) is None  # 10 + 16 = 26: still open
    assert JudgeAccuracy("m", 25, 42, 42, 3, 0, "").passes(0.6) is False
    assert JudgeAccuracy("m", 18, 42, 42, 3, 0, "").passes(0.4) is True  # a full count decides any bar


def test_the_status_line_says_whose_hints_teach_below_the_bar():
    weak = JudgeAccuracy("smollm2-135m-instruct", 14, 42, 42, 1, 1.0, "2026-01-01T00:00:00+00:00")
    line = weak.describe(0.6)
    assert "below judge_min_accuracy 0.6: implicit rewards off" in line
    assert "your own words teach" in line and "judge_hints_when_weak off" in line  # the default
    assert "the judge's own hints too" in weak.describe(0.6, judge_hints=True)
    assert weak.describe(0.3).endswith("implicit rewards on")


def test_cases_are_the_labelled_signs_interleaved_by_category():
    cases = sign_cases()
    assert len(cases) == 42 and all(c["label"] in (-1, 1) for c in cases)
    assert len({c["category"] for c in cases[:4]}) == 4  # every kind of case early on


def test_the_cache_key_follows_the_judge_model_and_its_settings(store, settings):
    entry = judge_entry(store, settings)
    key = cache_key(entry, settings)
    assert key == cache_key(entry, settings.replace(judge_min_accuracy=0.9))  # the bar is not part of it
    for change in ({"judge_votes": 5}, {"judge_temperature": 0.3}, {"judge_grammar": False}, {"judge_max_tokens": 99}):
        assert cache_key(entry, settings.replace(**change)) != key, change
    other = entry.__class__(**{**entry.__dict__, "sha256": "0" * 64})
    assert cache_key(other, settings) != key


def test_a_weak_judge_turns_implicit_rewards_off_and_is_measured_once(store, engine, settings):
    strict = settings.replace(judge_min_accuracy=0.95, judge_votes=1, judge_max_tokens=64, max_tokens=16, seed=3)
    chat = ChatService(store, engine, strict)
    conv = chat.new_conversation()
    implicit = chat.send(conv.id, "What is the capital of France?").assistant
    chat.send(conv.id, "No, that's wrong. Answer with just the city name.")  # a re-ask: the judge's call
    liked = chat.send(chat.new_conversation().id, "Say hello.").assistant
    chat.thumbs_up(liked.id)

    calls: list[tuple[int, int]] = []
    report = judge_pending(store, strict, judge_engine=engine, check_progress=lambda d, t, w: calls.append((d, t)))
    assert calls and calls[0] == (0, 42) and calls[-1] == (42, 42)
    measured = cached(store, strict)
    assert measured is not None and measured.passes(0.95) is False and 3 <= measured.judged < 42
    assert report.implicit_rewards is False and report.implicit_off == 1
    assert report.judge_accuracy == measured.sign_accuracy

    (judged,) = [s for s in store.samples_for(implicit.id) if s.source == "judge"]
    assert not [v for v in judged.votes if v["kind"] == "reward"]  # no reward votes were cast
    assert judged.reward == 0.0
    assert judged.status == "ready" and judged.hints or judged.drop_reason == IMPLICIT_OFF
    (explicit,) = store.samples_for(liked.id)
    assert explicit.reward == 1.0 and explicit.status == "ready"  # explicit feedback still teaches

    # the next pass reuses the measurement
    chat.send(conv.id, "Wrong again. Just the city, please.")
    calls.clear()
    again = judge_pending(store, strict, judge_engine=engine, check_progress=lambda d, t, w: calls.append((d, t)))
    assert calls == [] and again.implicit_rewards is False

    r = CliRunner().invoke(cli, ["status", "--json"], env={"CLAWDESK_JUDGE_MIN_ACCURACY": "0.95",
                                                           "CLAWDESK_JUDGE_VOTES": "1",
                                                           "CLAWDESK_JUDGE_MAX_TOKENS": "64"})
    assert r.exit_code == 0, r.output
    assert "below judge_min_accuracy 0.95: implicit rewards off" in json.loads(r.output)["judge"]
    assert "your own words teach" in json.loads(r.output)["judge"]
    r = CliRunner().invoke(cli, ["doctor"], env={"CLAWDESK_JUDGE_MIN_ACCURACY": "0.95"})  # 3 votes: another key
    assert "judge: smollm2-135m-instruct: not measured yet" in r.output


def test_a_judge_at_the_bar_keeps_implicit_rewards(store, engine, settings):
    """A cached measurement that clears the bar: no new measurement, reward votes are cast."""
    good = settings.replace(judge_min_accuracy=0.6, judge_votes=1, judge_max_tokens=64, max_tokens=16, seed=3)
    save(store, good, JudgeAccuracy("smollm2-135m-instruct", 30, 42, 42, 1, 1.0, "2026-01-01T00:00:00+00:00"))
    chat = ChatService(store, engine, good)
    conv = chat.new_conversation()
    reply = chat.send(conv.id, "Name a colour.").assistant
    chat.send(conv.id, "Thanks, that's right!")
    calls: list[int] = []
    report = judge_pending(store, good, judge_engine=engine, check_progress=lambda d, t, w: calls.append(d))
    assert calls == [] and report.implicit_rewards is True and report.implicit_off == 0
    (judged,) = [s for s in store.samples_for(reply.id) if s.source == "judge"]
    assert [v for v in judged.votes if v["kind"] == "reward"]
    r = CliRunner().invoke(cli, ["status"], env={"CLAWDESK_JUDGE_MIN_ACCURACY": "0.6", "CLAWDESK_JUDGE_VOTES": "1",
                                                 "CLAWDESK_JUDGE_MAX_TOKENS": "64"})
    assert "sign accuracy 0.71 on 42 of 42 labelled cases, at least judge_min_accuracy 0.6: implicit rewards on" in r.output


def test_a_weak_judge_adds_no_hints_of_its_own_when_told_not_to(store, engine, settings):
    """``judge_hints_when_weak`` off: below the bar the judge is not asked for hints, so a 👎 with
    nothing written teaches nothing, while a 👎 reason still does (the default since session 19).
    On, the judge is asked as before: its hint votes are there."""
    weak = settings.replace(judge_min_accuracy=0.6, judge_votes=1, judge_max_tokens=64, max_tokens=16, seed=3)
    save(store, weak, JudgeAccuracy("smollm2-135m-instruct", 10, 42, 42, 1, 1.0, "2026-01-01T00:00:00+00:00"))
    chat = ChatService(store, engine, weak)
    conv = chat.new_conversation()
    bare = chat.send(conv.id, "What is a haiku?").assistant
    chat.thumbs_down(bare.id, reason="other")
    chat.send(conv.id, "How do I plant tomatoes?")  # a new question, nothing about the reply
    long = chat.send(chat.new_conversation().id, "Explain gravity.").assistant
    chat.thumbs_down(long.id, reason="too long")

    assert weak.judge_hints_when_weak is False  # the default
    report = judge_pending(store, weak.replace(judge_hints_when_weak=False), judge_engine=engine)
    assert report.implicit_rewards is False
    (quiet,) = store.samples_for(bare.id)
    assert quiet.hints == [] and not [v for v in quiet.votes if v["kind"] == "hint"]
    (reasoned,) = store.samples_for(long.id)
    assert reasoned.hints and not [v for v in reasoned.votes if v["kind"] == "hint"]  # the reason's own hint

    judge_pending(store, weak.replace(judge_hints_when_weak=True), judge_engine=engine, rejudge=True)
    (asked,) = store.samples_for(bare.id)
    assert [v for v in asked.votes if v["kind"] == "hint"]  # on: the judge is asked
