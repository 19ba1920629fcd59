"""Text helpers for a reply with a fixed opening or ending (``Engine.generate``'s ``opening`` and
``ending``): the words a person asked for in quotes are written exactly, the model writes the rest.

A reply that must end with a closing line ("In short: …") is sampled in two parts: the body, on
all but the closing line's budget, then the closing line after the literal. When the body runs
out of budget mid-sentence, the unfinished sentence is dropped rather than followed by the
closing line; so that a streamed reply never shows text that is later taken back, the tail of
the body after its last sentence end is held (``SentenceHold``) until the next sentence ends.

A reply held to a number of words (a wish like "under 30 words") is sampled until the next piece
would pass the limit, then ends at its last sentence end within it (or at the limit, when no
sentence ended), with an end of turn the engine adds — the same hold keeps the stream honest.
When the finished sentences are under half the limit, the reply ends at the limit instead
(``clause_cut``): a model that opens with a throat-clearing sentence ("The answer is a classic
example of physics.") would otherwise be cut to that sentence alone, which no longer answers.

An opening that is a whole sentence of its own — a greeting, "Hi Sam!" — stands apart
(``stands_apart``): the body is sampled as if it were not there and written after it. Sampled
after "Hi Sam!", the bundled model reads a greeting exchange and chats on ("Hi Sam! I'm Sarah! Hi
there!"); measured on the base weights, 96 replies to greet's prompts, it answered 0.92 of them
that way, 0.93 with the greeting on a line of its own, and 1.00 with the body sampled apart (none
of which opened with a greeting of its own). Weights trained on greeted replies do open with it
("Hi Sam! Hi Sam! Well, …", and "Hi Sam! Hi Sam," then a letter, in all three of the grid's
greet seeds): a body that opens with the opening's words is the model's greeting — served as it wrote
it, nothing forced, or with the opening in place of another mark ("Hi Sam," → "Hi Sam!";
``own_greeting``, ``GreetingHold``). An opening that leads into the text ("TL;DR:", "Sure,") is still written first and the model goes on
from it: there the words shape the rest.
"""

from __future__ import annotations

import re

_END = re.compile(r"[.!?:;)\]\n][\"'’”)]*")
_FULL_STOP = re.compile(r"[.!?][\"'’”)]*")  # a closing line's sentence end: "Remember:" is not one


APART_GLUE = " "  # what separates a greeting that stands apart from the reply written after it


def ends_sentence(text: str) -> bool:
    """Does ``text`` end a sentence (with . ! or ?, quotes and brackets aside)?"""
    return text.rstrip().rstrip("\"'’”)").endswith((".", "!", "?"))


def stands_apart(opening: str) -> bool:
    """Is the opening a sentence of its own, so that the body is sampled without it (module
    docstring)?"""
    return ends_sentence(opening)


_MARKS = ",.!?;:"  # what may end a greeting of the model's own ("Hi Sam," where the opening is "Hi Sam!")
_CLOSE = "\"'’”)"
_MARK_RUN = re.compile(f"[{re.escape(_MARKS)}][{re.escape(_CLOSE)}]*")


def _first_word(text: str) -> str:
    words = text.split()
    return words[0].strip(_MARKS + _CLOSE).casefold() if words else ""


def _greeting_cut(said: str, opening: str) -> int:
    """Where a greeting of the model's own ends in ``said`` (0: it has none): a start of it that
    begins with the opening's first word, has no more words than the opening and ends at its
    first sentence end, else at its last other mark ("Hi Maria!", "Hi, Sam!", "Hi Sam," for "Hi
    Sam!"; "Hello!" of "Hello! Hello, welcome back." for "Hello there!")."""
    if _first_word(said) != _first_word(opening):
        return 0
    cut = 0
    for mark in _MARK_RUN.finditer(said):
        if len(said[:mark.end()].split()) > len(opening.split()):
            break
        cut = mark.end()
        if mark.group(0)[0] in ".!?":
            break
    return cut


def own_greeting(body: str, opening: str, final: bool = False) -> str:
    """Does the sampled body open with a greeting of its own — the weights learned one, and
    writing the opening before it would greet twice ("Hi Sam! Hi Sam! …")? "same": the opening's
    words and mark (case aside), served as the model wrote them; "like": the opening's first word
    and no more words than it, up to a mark ("Hi Sam,", "Hi Maria!"), replaced by the opening
    (``after_greeting``); "maybe": too short to tell yet (``final``: the body is whole, so it is
    decided); "": no."""
    said = body.lstrip()
    if said.casefold().startswith(opening.strip().casefold()):
        return "same"
    words, n = said.split(), len(opening.split())
    if not final and words:
        first, so_far = _first_word(opening), words[0].strip(_MARKS + _CLOSE).casefold()
        first_done = len(words) > 1 or said[-1:].isspace() or bool(_MARK_RUN.search(words[0]))
        if not first.startswith(so_far) or (first_done and so_far != first):
            return ""  # it does not open with the opening's first word
    if not final and (len(words) < n or (len(words) == n and not said[-1:].isspace())):
        return "maybe"  # the greeting's words may not all be there yet
    return "like" if _greeting_cut(said, opening) else ""


def after_greeting(body: str, opening: str) -> str:
    """What follows the body's own greeting of the "like" kind — from the space after its mark,
    which then follows the opening instead ("Hi Sam,\n\nI'm glad" → "\n\nI'm glad"); any other
    body as it is."""
    if own_greeting(body, opening, final=True) != "like":
        return body
    said = body.lstrip()
    return said[_greeting_cut(said, opening):]


def greeted(body: str, opening: str, glue: str, kind: str | None = None) -> str:
    """The body as served after an opening that stands apart: as the model wrote it when it
    greets with the opening's words ("same"), the opening in place of its own greeting ("like"),
    else the opening and ``glue`` before it. ``kind``: ``own_greeting``'s, when already known."""
    kind = own_greeting(body, opening, final=True) if kind is None else kind
    if kind == "same":
        return body
    if kind == "like":  # the model's own space follows
        return opening + after_greeting(body, opening)
    return opening + glue + body


class GreetingHold:
    """Streams a reply whose greeting stands apart (``stands_apart``): the body's first pieces
    wait while they could still be the greeting itself (``own_greeting``). The model's own
    greeting is shown as it wrote it ("same"), or the opening in its place ("like"); a body that
    is not one has the opening and the glue shown before it. ``kind`` is None until settled;
    ``decide`` settles it from the whole body when sampling ended before the pieces did (a short
    body, or text another hold kept back)."""

    def __init__(self, opening: str, glue: str) -> None:
        self.opening, self.glue = opening, glue
        self.kind: str | None = None
        self._held = ""

    def feed(self, piece: str) -> str:
        if self.kind is None:
            self._held += piece
            kind = own_greeting(self._held, self.opening)
            return "" if kind == "maybe" else self._settle(kind)
        return piece

    def decide(self, kind: str) -> str:
        """The whole body is known: settle (if the stream has not) and release what was held."""
        return self._settle("" if kind == "maybe" else kind) if self.kind is None else ""

    def _settle(self, kind: str) -> str:
        self.kind, held, self._held = kind, self._held, ""
        return greeted(held, self.opening, self.glue, kind)


def word_count(text: str) -> int:
    """Words as a reader counts them: whitespace-separated, with a letter or digit in them."""
    return sum(1 for w in text.split() if any(c.isalnum() for c in w))


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def has_ending(text: str, ending: str) -> bool:
    """Does the reply's last line already start with ``ending`` (the model wrote it itself)?"""
    return last_line(text).lower().startswith(ending.strip().lower())


def bare_ending(text: str, ending: str) -> bool:
    """The last line is the fixed words alone ("Hope this helps!", "In short:"): a closing line
    carries words of its own after them, so the model goes on with it."""
    line = last_line(text)
    return has_ending(text, ending) and word_count(line[len(ending.strip()):]) == 0


_CLAUSE = re.compile(r"[,;:\u2014]|\s[-\u2013]\s")
ELLIPSIS = "\u2026"


def clause_cut(text: str, words: int) -> int:
    """Where to end ``text`` within its first ``words`` words when no sentence end comes late
    enough: at the last clause break (a comma, a semicolon, a dash) that keeps at least half of
    them, else after the last whole word (the caller adds an ellipsis, so the cut shows)."""
    ends = [m.end() for m in re.finditer(r"\S+", text)][:max(0, words)]
    if not ends:
        return 0
    limit = ends[-1]
    half = ends[(len(ends) - 1) // 2]
    breaks = [m.start() for m in _CLAUSE.finditer(text, 0, limit) if m.start() >= half]
    return breaks[-1] if breaks else limit


def sentence_cut(text: str, full_stop: bool = False) -> int:
    """Where the last finished sentence of ``text`` ends (0: none finished); ``full_stop``: only
    at . ! or ? (not a colon, a bracket or a line break)."""
    ends = [m.end() for m in (_FULL_STOP if full_stop else _END).finditer(text)]
    return ends[-1] if ends else 0


class SentenceHold:
    """Feed streamed pieces; get back only text up to the last finished sentence (``full_stop``:
    see ``sentence_cut``)."""

    def __init__(self, full_stop: bool = False) -> None:
        self.text = ""
        self._sent = 0
        self._full_stop = full_stop

    def feed(self, piece: str) -> str:
        self.text += piece
        # whitespace after the sentence waits too: the closing line brings its own line break
        return self._release(len(self.text[: sentence_cut(self.text, self._full_stop)].rstrip()))

    def flush(self, before_more: bool = False) -> str:
        """The body ended by itself (not cut by the budget): release the rest — but for its
        trailing whitespace when more text (a closing line) follows."""
        return self._release(len(self.text.rstrip()) if before_more else len(self.text))

    def _release(self, upto: int) -> str:
        out = self.text[self._sent: max(upto, self._sent)]
        self._sent = max(upto, self._sent)
        return out

    @property
    def shown(self) -> str:
        return self.text[: self._sent]
