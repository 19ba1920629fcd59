"""Edit detection (judge/edits.py): which corrections are one mechanical edit that can be repeated
on other replies, and which are not. Pure text, no model."""

from __future__ import annotations

from clawdesk.judge.edits import Insert, Slot, detect_edit

REPLY = ("Solar panels turn sunlight into electricity. Each cell is made of silicon. "
         "When light hits it, electrons start to move")
OTHER = "Tides come from the moon's gravity. The ocean bulges toward it. Twice a day the water rises"


def test_prefix_is_a_literal_insert():
    edit = detect_edit(REPLY, "Hi Sam! " + REPLY)
    assert edit is not None and (edit.kind, edit.prefix, edit.suffix) == ("affix", Insert("Hi Sam! "), None)
    assert edit.apply(OTHER) == "Hi Sam! " + OTHER
    assert not edit.changes("hi sam! The moon pulls the sea.") and edit.changes(OTHER)


def test_suffix_that_copies_a_sentence_keeps_a_slot():
    # the summary line repeats the reply's first sentence: the label is literal, the copy a slot
    edit = detect_edit(REPLY, REPLY + "\nIn short: Solar panels turn sunlight into electricity.")
    assert edit is not None and edit.kind == "affix" and edit.prefix is None
    assert edit.suffix == Insert("\nIn short: ", Slot(sentence=0, words=20), ".")
    assert edit.suffix.literal == "In short:" and edit.is_ending
    assert edit.apply(OTHER) == OTHER + "\nIn short: Tides come from the moon's gravity."


def test_literal_suffix_without_a_copy():
    edit = detect_edit(REPLY, REPLY + "\n\nHope this helps!")
    assert edit is not None and edit.suffix == Insert("\n\nHope this helps!")
    assert edit.apply(OTHER).endswith(OTHER + "\n\nHope this helps!")
    assert not edit.changes(OTHER + "\nHope this helps!")


def test_prefix_and_suffix_together():
    edit = detect_edit(REPLY, "TL;DR: it is light. " + REPLY + " Bye.")
    assert edit is not None and edit.prefix == Insert("TL;DR: it is light. ") and edit.suffix == Insert(" Bye.")


def test_case_change():
    assert detect_edit(REPLY, REPLY.lower()).describe() == "lower-case"
    assert detect_edit(REPLY, REPLY.upper()).apply(OTHER) == OTHER.upper()
    assert detect_edit(REPLY, REPLY.swapcase()) is None  # not one of the two case edits


def test_removed_characters():
    edit = detect_edit("**Solar** panels work! They *really* do!", "Solar panels work They really do")
    assert edit is not None and (edit.kind, edit.removed) == ("remove", "!*")
    assert edit.apply("A *bold* claim!") == "A bold claim"


def test_removing_only_some_occurrences_is_not_a_removal_edit():
    assert detect_edit("Yes! It works! Great!", "Yes! It works. Great!") is None


def test_cut():
    edit = detect_edit(REPLY, "Solar panels turn sunlight into electricity.")
    assert edit is not None and (edit.kind, edit.words) == ("cut", 6) and edit.is_ending
    assert edit.apply(OTHER + ". And more words follow here.") == "Tides come from the moon's gravity."


def test_cut_mid_sentence_with_a_full_stop_added():
    edit = detect_edit(REPLY, "Solar panels turn sunlight into electricity. Each cell is made.")
    assert edit is not None and edit.kind == "cut" and edit.words == 10


def test_a_rewritten_answer_is_not_a_transferable_edit():
    assert detect_edit(REPLY, "Photovoltaic cells convert photons to current using a semiconductor.") is None
    assert detect_edit("The capital is Paris. It is big.", "The capital of France is Paris, a large city.") is None
    # a fix inside the reply (one fact) says something about this reply only
    assert detect_edit(REPLY, REPLY.replace("silicon", "germanium")) is None


def test_no_edit():
    assert detect_edit(REPLY, "  " + REPLY + "\n") is None
    assert detect_edit("", "Hi") is None


def test_a_sentence_cut_short_in_the_copy_keeps_its_length():
    edit = detect_edit(REPLY, REPLY + "\nHope this helps Solar panels turn sunlight.")
    assert edit is not None and edit.suffix == Insert("\nHope this helps ", Slot(sentence=0, words=4), ".")
    assert edit.apply(OTHER).endswith("\nHope this helps Tides come from the.")
