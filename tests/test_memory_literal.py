"""The quoted words of opening/ending wishes, and the text helpers that write them (no model)."""

from __future__ import annotations

from clawdesk.engine.shape import (GreetingHold, SentenceHold, after_greeting, bare_ending, clause_cut, has_ending,
                                   own_greeting, sentence_cut, word_count)
from clawdesk.memory.literal import Literals, literals_of, plain_text, quoted, said, word_limit, written_exactly
from clawdesk.records import Wish


def test_quoted_words_only_between_real_quotes():
    assert quoted("Start every answer with 'Hi Sam!'.") == "Hi Sam!"
    assert quoted("End every answer with a one-line summary starting with 'In short:'.") == "In short:"
    assert quoted("Start every answer with “TL;DR:” and the gist.") == "TL;DR:"
    assert quoted("Start every answer with Sam's name.") == ""  # an apostrophe is not a quote
    assert quoted("Don't ramble, don't repeat yourself.") == ""


def test_literals_come_from_active_opening_and_ending_wishes_only():
    wishes = [Wish(1, "Start every answer with 'Hi Sam!'.", slot="opening"),
              Wish(2, "End every answer with 'Hope this helps'.", slot="ending", status="deleted"),
              Wish(3, "Call me 'Sammy'.", slot="name"),
              Wish(4, "Greet me at the start of every answer.", slot="opening")]
    assert literals_of(wishes) == Literals("Hi Sam!", "")
    assert not literals_of([w for w in wishes if w.id != 1])
    assert [w.id for w in wishes if written_exactly(w)] == [1]
    assert said(literals_of(wishes)) == "Written exactly: every reply starts with “Hi Sam!”. (By the engine, not in the prompt.)"
    assert said(Literals("", "In short:")) == "Written exactly: the last line of every reply starts with “In short:”. (By the engine, not in the prompt.)"


def test_sentence_hold_never_shows_an_unfinished_sentence():
    hold = SentenceHold()
    shown = "".join(hold.feed(p) for p in ("Tea is a drink", ". It is brewed ", "from leaves.\n\nMost peo", "ple add"))
    assert shown == "Tea is a drink. It is brewed from leaves."
    assert hold.flush(before_more=True) == "\n\nMost people add"
    assert sentence_cut("Tea is a drink. It is") == len("Tea is a drink.")
    assert has_ending("Body.\n\nIn short: tea.\n", "in short:") and not has_ending("In short: x\nMore.", "In short:")
    assert bare_ending("Body.\n\nHope this helps!", "Hope this helps") and bare_ending("Body.\nIn short:", "In short:")
    assert not bare_ending("Body.\n\nHope this helps with the flowers!", "Hope this helps")
    assert not bare_ending("Body.", "Hope this helps")


def test_a_greeting_the_model_writes_itself_is_not_written_twice():
    """Weights trained on greeted replies open with a greeting ("Hi Sam! Hi Sam! Well, …" in the
    grid): the opening's words are kept as the model wrote them; a greeting of the same first word
    and no more words gets the opening in its place; anything else has the opening before it."""
    assert own_greeting("Hi Sam! Tea.", "Hi Sam!") == "same" and own_greeting(" hi sam! tea", "Hi Sam!") == "same"
    for body, rest in (("Hi Sam,\n\nI'm glad.", "\n\nI'm glad."), ("Hi Maria! Tea is", " Tea is"),
                       ("Hi, Sam! Tea is", " Tea is"), ("Hi there. Tea is", " Tea is"), ("Hi! Hi, tea", " Hi, tea")):
        assert own_greeting(body, "Hi Sam!") == "like" and after_greeting(body, "Hi Sam!") == rest, body
    for body in ("Hi Sa", "Hi", "Hi Sam", "H", ""):
        assert own_greeting(body, "Hi Sam!") == "maybe", body
    for body in ("Hi everyone and welcome!", "Hit the road", "The tallest", "Hello Sam!", "Hi Sam how are"):
        assert own_greeting(body, "Hi Sam!") == "", body
    assert own_greeting("Hi Sam", "Hi Sam!", final=True) == "" and own_greeting("Hi there.", "Hi Sam!", final=True) == "like"
    assert after_greeting("Tea.", "Hi Sam!") == "Tea." and after_greeting("Hi Sam! Tea.", "Hi Sam!") == "Hi Sam! Tea."

    def stream(pieces: tuple[str, ...], end: str = "") -> tuple[list[str], str | None]:
        hold = GreetingHold("Hi Sam!", " ")
        shown = [hold.feed(p) for p in pieces]
        return shown + ([hold.decide(end)] if end else []), hold.kind

    assert stream(("Hi", " Sa", "m", "! Well,", " tea.")) == (["", "", "", "Hi Sam! Well,", " tea."], "same")
    assert stream(("Hi", " there", ".", " Tea")) == (["", "", "", "Hi Sam! Tea"], "like")
    assert stream(("Hi", " everyone", " and")) == (["", "", "Hi Sam! Hi everyone and"], "")
    assert stream(("The", " sky")) == (["Hi Sam! The", " sky"], "")
    assert stream(("Hi Sam", ",", "\n\n", "I'm glad.")) == (["", "", "Hi Sam!\n\n", "I'm glad."], "like")
    assert stream(("Hi",), end="maybe") == (["", "Hi Sam! Hi"], "")  # the body ended while it could still be one


def test_a_cut_at_the_word_limit_ends_at_a_clause_break_in_its_second_half():
    """Used when a reply's finished sentences are under half its word limit (engine/shape.py)."""
    text = ("The answer is a classic example of physics. Ice floats because its solid form is less dense "
            "than liquid water, since the molecules form an open lattice when they freeze and")
    assert text[:clause_cut(text, 29)] == ("The answer is a classic example of physics. Ice floats because its solid "
                                           "form is less dense than liquid water")
    # no clause break in the second half: after the last whole word within the limit
    assert text[:clause_cut(text, 12)] == "The answer is a classic example of physics. Ice floats because its"
    assert "Short one, then"[:clause_cut("Short one, then", 29)] == "Short one, then"
    assert clause_cut("", 29) == 0 and clause_cut("Tea", 0) == 0


def test_the_stop_scanner_says_which_stop_ended_a_closing_line():
    from clawdesk.engine.stops import StopScanner

    s = StopScanner([". ", "! ", "\n"])
    shown = "".join(s.feed(p) for p in (" Tea is", " good.", " And more"))
    assert (shown, s.hit, s.which) == (" Tea is good", True, ". ")


def test_a_length_wish_with_a_number_gives_the_word_limit():
    assert word_limit("Keep every answer under 30 words.") == 29  # under 30: 30 is not under
    assert word_limit("Keep every answer to at most 50 words.") == 50
    assert word_limit("Keep answers short and to the point.") == 0
    wishes = [Wish(1, "Keep every answer under 30 words.", slot="length"),
              Wish(2, "Start every answer with 'Hi Sam!'.", slot="opening"),
              Wish(3, "Keep every answer to at most 80 words.", slot="length", status="deleted")]
    assert literals_of(wishes) == Literals("Hi Sam!", "")  # the limit only when asked for
    assert literals_of(wishes, words=True) == Literals("Hi Sam!", "", 29)
    assert said(Literals(max_words=29)) == "Held to 29 words at most. (By the engine, not in the prompt.)"
    assert word_count("Tea — a drink, **brewed** from leaves. 1. Hot") == 8


def test_a_format_wish_for_plain_text_asks_for_no_markdown():
    assert plain_text("Write plain sentences: no Markdown, no lists, no bold, no headings.")
    assert plain_text("Write plain sentences, no lists.")
    assert not plain_text("Use bullet points when you compare options.")
    wishes = [Wish(1, "Write plain sentences, no lists.", slot="format")]
    assert not literals_of(wishes).plain and literals_of(wishes, plain=True) == Literals(plain=True)
    assert said(Literals(plain=True)) == "Plain text: no Markdown markers. (By the engine, not in the prompt.)"
