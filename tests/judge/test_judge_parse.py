"""Vote parsing, majority and hint selection on hand-made cases (no model needed)."""

from __future__ import annotations

import pytest

from clawdesk.judge.parse import boxed_contents, majority, parse_boxed, parse_hint, select_hints


@pytest.mark.parametrize("text, expected", [
    ("The user thanks the assistant. \\boxed{1}", 1),
    ("\\boxed{-1}", -1),
    ("neutral \\boxed{0}", 0),
    ("Scale is \\boxed{1}, \\boxed{-1} or \\boxed{0}. I pick \\boxed{-1}", -1),  # the last one wins
    ("first \\boxed{-1} then changed my mind \\boxed{1}", 1),
    ("\\boxed{ +1 }", 1),
    ("\\boxed{\u22121}", -1),  # a typographic minus
    ("\\boxed{\\text{1}}", 1),  # nested braces
    ("\\boxed{\\mathbf{-1}}", -1),
    ("no box at all", None),
    ("", None),
    ("\\boxed{good}", None),  # garbage inside the box
    ("\\boxed{2}", None),  # outside the scale
    ("\\boxed{1/2}", None),
    ("\\boxed{1", None),  # unclosed
    ("\\boxed{1} and then \\boxed{oops}", None),  # the last box is garbage: failed, not the earlier 1
    ("\\boxed{{1}}", None),
])
def test_parse_boxed(text, expected):
    assert parse_boxed(text) == expected


def test_parse_boxed_allowed_values_for_hint_votes():
    assert parse_boxed("\\boxed{0}", allowed=(-1, 1)) is None
    assert parse_boxed("\\boxed{1}", allowed=(-1, 1)) == 1


def test_boxed_contents_balances_nested_braces():
    assert boxed_contents("a \\boxed{x{y}z} b \\boxed{1}") == ["x{y}z", "1"]


@pytest.mark.parametrize("text, expected", [
    ("\\boxed{1} [HINT_START]Answer in French.[HINT_END]", "Answer in French."),
    ("[HINT_START]  keep it\n short  [HINT_END]", "keep it short"),
    ("[HINT_START]old[HINT_END] ... [HINT_START]Use bullet points only.[HINT_END]", "Use bullet points only."),
    ("[HINT_START]never closed", ""),
    ("no tags", ""),
    ("[HINT_END] before [HINT_START]", ""),
])
def test_parse_hint(text, expected):
    assert parse_hint(text) == expected


@pytest.mark.parametrize("values, expected", [
    ([1, 1, -1], 1),
    ([-1, -1, 1], -1),
    ([1, -1, 0], 0),  # three-way tie
    ([1, -1], 0),  # two-way tie
    ([1, -1, None], 0),  # a failed vote does not break the tie
    ([None, None, None], 0),  # all failed → 0
    ([], 0),
    ([None, -1, None], -1),  # the valid votes decide
    ([0, 0, 1], 0),
    ([1, 1, 0, 0, -1], 0),
])
def test_majority(values, expected):
    assert majority(values) == expected


def test_select_hints_filters_dedups_sorts_and_caps():
    judged = ["Be more concise please.", "short", "be more  CONCISE please.",
              "Answer in French and keep it to one sentence.", "Use metric units.", "Mention the year 1945."]
    assert select_hints(judged) == ["Use metric units.", "Mention the year 1945.", "Be more concise please."]


def test_select_hints_ten_chars_is_too_short():
    assert select_hints(["0123456789", "0123456789A"]) == ["0123456789A"]


def test_explicit_hints_always_kept_first_even_when_short():
    out = select_hints(["Use metric units.", "Mention the year 1945.", "Be more concise please."],
                       explicit=["No."])
    assert out[0] == "No."
    assert len(out) == 3
    # an explicit hint beats its own duplicate from the judge
    assert select_hints(["Answer in French."], explicit=["answer in french."]) == ["answer in french."]
    # explicit hints are never dropped, even beyond three
    assert len(select_hints([], explicit=["a1", "b2", "c3", "d4"])) == 4
