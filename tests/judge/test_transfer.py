"""Edit transfer through the real judging pass (judge/transfer.py): a correction's edit becomes
demonstrations on the model's own other logged replies, with exact token ids in the bundled model's
tokenizer; withdrawing the correction or excluding a conversation removes them."""

from __future__ import annotations

import pytest

from clawdesk.engine import Vocab
from clawdesk.judge.pipeline import judge_pending
from clawdesk.judge.transfer import sentence_ends

REPLIES = [
    "Tides come from the moon's gravity. The ocean bulges toward the moon, and the earth turns under it.",
    "A haiku is a short poem. It has three lines of five, seven and five syllables.",
    "Boil the egg for about nine minutes. Then cool it in cold water so the yolk stays bright",  # cut off
]
SOURCE = "Bees talk by dancing. A waggle dance points the way to food."


@pytest.fixture
def settings(settings):
    """Transfer on (the shipped default is off until the benchmark has measured it)."""
    return settings.replace(judge_transfer_per_correction=4)


@pytest.fixture
def vocab(model_path):
    v = Vocab(model_path)
    yield v
    v.close()


def _turn(store, vocab, text, reply, finished=True):
    """A logged turn in a conversation of its own (no next state, so no judge is needed), with the
    reply's token ids as the chat model produced them."""
    conv = store.new_conversation()
    user = store.add_message(conv.id, "user", text)
    ids = vocab.tokenize(reply) + ([vocab.eos_id()] if finished else [])
    return conv, store.add_message(conv.id, "assistant", reply, parent_id=user.id,
                                   prompt_token_ids=vocab.tokenize(f"<|im_start|>user\n{text}<|im_end|>\n", special=True),
                                   response_token_ids=ids, finish_reason="stop" if finished else "length",
                                   model="smollm2-135m-instruct")


def _transfers(store):
    return {s.message_id: s for s in store.samples() if s.source == "transfer"}


def test_a_greeting_correction_is_repeated_on_other_replies(store, settings, vocab):
    targets = [_turn(store, vocab, f"question {i}", r, finished=i != 2)[1] for i, r in enumerate(REPLIES)]
    _, src = _turn(store, vocab, "How do bees talk?", SOURCE)
    fb = store.add_feedback(src.id, "correction", correction="Hi Sam! " + SOURCE)
    store.add_feedback(src.id, "thumbs_down")
    report = judge_pending(store, settings)
    assert report.transfers == 3
    got = _transfers(store)
    assert set(got) == {t.id for t in targets}
    for t in targets[:2]:  # finished replies: prefix + the logged ids, the first token re-tokenised with it
        logged = t.response_token_ids
        seam = vocab.tokenize("Hi Sam! " + vocab.detokenize(logged[:1]))
        assert got[t.id].response_token_ids == seam + logged[1:]
        assert got[t.id].prompt_token_ids == t.prompt_token_ids and got[t.id].status == "ready"
        assert vocab.detokenize(got[t.id].response_token_ids[:-1]) == "Hi Sam! " + t.content
        assert got[t.id].votes[0]["from"] == src.id
    # `clawdesk samples show` prints what a transfer trains on: the edited reply, not the logged one
    from click.testing import CliRunner

    from clawdesk.cli import cli
    shown = CliRunner().invoke(cli, ["samples", "show", str(got[targets[0].id].id)])
    assert shown.exit_code == 0, shown.output
    assert "(this reply with another correction's edit)" in shown.output and "Hi Sam! " + REPLIES[0] in shown.output
    # the reply that ran into the limit is cut at its last sentence end and ends the turn there
    cut = targets[2].response_token_ids
    k = sentence_ends(vocab, cut)[-1]
    assert vocab.detokenize(cut[:k]) == "Boil the egg for about nine minutes."
    assert got[targets[2].id].response_token_ids == (vocab.tokenize("Hi Sam! " + vocab.detokenize(cut[:1]))
                                                     + cut[1:k] + [vocab.eos_id()])

    store.remove_feedback(fb.id)  # the correction withdrawn: its transfers go with its demonstration
    judge_pending(store, settings)
    assert _transfers(store) == {} and not [s for s in store.samples() if s.source == "demo"]


def test_an_ending_is_placed_where_it_fits_the_budget(store, settings, vocab):
    _, target = _turn(store, vocab, "tides?", REPLIES[0])
    _, src = _turn(store, vocab, "How do bees talk?", SOURCE)
    store.add_feedback(src.id, "correction", correction=SOURCE + "\nIn short: Bees talk by dancing.")
    small = settings.replace(judge_transfer_tokens=len(target.response_token_ids))  # the whole reply + summary won't fit
    judge_pending(store, small)
    (s,) = _transfers(store).values()
    logged = target.response_token_ids
    k = sentence_ends(vocab, logged)[0]  # after "Tides come from the moon's gravity."
    summary = vocab.tokenize("\nIn short: Tides come from the moon's gravity.")
    assert s.response_token_ids == logged[:k] + summary + [logged[-1]]
    assert len(s.response_token_ids) <= small.judge_transfer_tokens
    judge_pending(store, settings)  # the default budget: the whole reply, then the summary
    (s,) = _transfers(store).values()
    assert s.response_token_ids == logged[:-1] + summary + [logged[-1]]


def test_excluded_conversations_and_rewrites_give_no_transfers(store, settings, vocab):
    conv, target = _turn(store, vocab, "haiku?", REPLIES[1])
    _, src = _turn(store, vocab, "How do bees talk?", SOURCE)
    _, rewritten = _turn(store, vocab, "tides?", REPLIES[0])
    store.add_feedback(src.id, "correction", correction=SOURCE.lower())
    store.add_feedback(rewritten.id, "correction", correction="The moon pulls the sea; that is a tide.")
    judge_pending(store, settings)
    (s,) = _transfers(store).values()  # the rewrite teaches only its own reply; the lower-casing repeats
    assert s.message_id == target.id
    assert s.response_token_ids == vocab.tokenize(REPLIES[1].lower()) + [vocab.eos_id()]
    store.update_conversation(conv.id, exclude=True)
    judge_pending(store, settings)
    assert _transfers(store) == {}
    assert judge_pending(store, settings.replace(judge_transfer_per_correction=0)).transfers == 0
