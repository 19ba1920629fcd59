"""The words a wish quotes about how replies open or end, written exactly.

Measured on the bundled model (docs/memory.md): a wish in the prompt moves a reply's length and
format, but the *literal words* of an opening or ending ("Hi Sam!", "In short:") stay at zero in
every placement, and a few nights of training teach their form ("Hi Maria!") rather than the
words. So a wish in the opening or ending slot that quotes its words has them written by the
engine — the reply starts with them, or its last line does — and the model writes the rest
(``Engine.generate``'s ``opening``/``ending``). Only quoted words count: "greet me" leaves the
greeting to the model; "start with 'Hi Sam!'" does not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..records import Wish

# A quote opens after a non-letter and closes before one, so "don't … 'x'" is not a quote.
_QUOTED = re.compile(r"(?<![\w])['\"‘“]([^'\"‘’“”\n]{1,40}?)['\"’”](?![\w])")


# "Keep every answer under 30 words." / "… to at most 30 words." (the rules' wording; an edit keeps it)
_LIMIT = re.compile(r"\b(under|fewer than|less than|at most|no more than|max(?:imum)?(?: of)?)\s+(\d+)\s+words?\b", re.I)

# A format wish for plain text: "no Markdown", "no lists", "plain sentences/text" (the rules' wording)
_PLAIN = re.compile(r"\bno (?:markdown|lists?|bullet|formatting)|\bplain (?:sentences|text|prose)\b", re.I)


@dataclass(frozen=True)
class Literals:
    """What the engine holds a reply to: quoted words at its start or last line, a word limit
    (0: none), and plain text (no Markdown)."""

    opening: str = ""
    ending: str = ""
    max_words: int = 0
    plain: bool = False

    def __bool__(self) -> bool:
        return bool(self.opening or self.ending or self.max_words or self.plain)

    def generate_args(self) -> dict[str, Any]:
        """The ``Engine.generate`` arguments that hold a reply to these."""
        return {"opening": self.opening, "ending": self.ending, "max_words": self.max_words, "plain": self.plain}


def quoted(text: str) -> str:
    """The first quoted words in ``text`` ('' when none)."""
    m = _QUOTED.search(text)
    return m.group(1).strip() if m else ""


def written_exactly(wish: Wish) -> bool:
    """A wish whose words the engine writes: it stays out of the prompt's note, where it only
    made the model write them a second time ("Hi Sam! Hi Sam, …")."""
    return wish.status == "active" and wish.slot in ("opening", "ending") and bool(quoted(wish.text))


def word_limit(text: str) -> int:
    """The most words a length wish allows ("under 30 words": 29; 0 when it gives no number)."""
    m = _LIMIT.search(text)
    if not m:
        return 0
    n = int(m.group(2))
    return max(1, n - 1 if m.group(1).lower() in ("under", "fewer than", "less than") else n)


def plain_text(text: str) -> bool:
    """Does a format wish ask for no Markdown ("Write plain sentences, no lists.")?"""
    return bool(_PLAIN.search(text))


def held_plain(wishes: Sequence[Wish]) -> set[int]:
    """The ids of the plain-text format wishes the sampler holds replies to (``memory_plain_text``)
    — none unless the newest active format wish asks for plain text. They stay out of the prompt's
    note: stated there as well, the note was taken for the task on trained weights ("Sure, here
    are some plain sentences with bold text: …"): plain, seed 0 of the session-16 grid, 32 paired
    replies, answers 0.91 with it in the note, 1.00 without (docs/memory.md)."""
    formats = [w for w in wishes if w.status == "active" and w.slot == "format"]
    if not formats or not plain_text(formats[-1].text):
        return set()
    return {w.id for w in formats if plain_text(w.text)}


def held_length(wishes: Sequence[Wish]) -> set[int]:
    """The ids of the length wishes whose number the engine holds replies to (``memory_word_limit``):
    the newest active one, when it gives a number. It stays out of the prompt's note, as a held
    plain-text wish does: stated there as well, trained weights now and then answered the note
    instead of the question ("I'll keep it under 30 words."): brief, seed 1, both headline grids
    of sessions 20 and 21, the only replies served weights lost (docs/choosing-defaults.md)."""
    lengths = [w for w in wishes if w.status == "active" and w.slot == "length"]
    return {lengths[-1].id} if lengths and word_limit(lengths[-1].text) else set()


def held_by_engine(wishes: Sequence[Wish], exact: bool = True, words: bool = False, plain: bool = False) -> set[int]:
    """The ids of the wishes the engine holds every reply to — with ``exact`` the quoted words, with
    ``words`` a number of words, with ``plain`` plain text — which therefore stay out of the
    prompt's note (each function above says what stating them there as well cost)."""
    ids = {w.id for w in wishes if exact and written_exactly(w)}
    return ids | (held_plain(wishes) if plain else set()) | (held_length(wishes) if words else set())


def literals_of(wishes: Sequence[Wish], exact: bool = True, words: bool = False, plain: bool = False) -> Literals:
    """With ``exact`` the quoted opening and ending of the active wishes (the newest wish of a
    slot wins), with ``words`` the limit of the active length wish, with ``plain`` whether its
    format wish asks for plain text."""
    found = {w.slot: quoted(w.text) for w in wishes if exact and written_exactly(w)}
    active = [w for w in wishes if w.status == "active"]
    limits = [word_limit(w.text) for w in active if w.slot == "length"]
    return Literals(found.get("opening", ""), found.get("ending", ""), limits[-1] if words and limits else 0,
                    plain and bool(held_plain(wishes)))


def said(literals: Literals) -> str:
    """What the engine holds replies to, in the words every UI uses ('' when nothing). It ends by
    saying these are not in the prompt: the UIs say where the note goes just above, and a held
    wish listed below that line read as if it were in the note."""
    opening = f"every reply starts with “{literals.opening}”" if literals.opening else ""
    whose = "its" if opening else "the"
    ending = f"{whose} last line{'' if opening else ' of every reply'} starts with “{literals.ending}”"
    parts = [p for p in (opening, ending if literals.ending else "") if p]
    limit = f"Held to {literals.max_words} words at most." if literals.max_words else ""
    plain = "Plain text: no Markdown markers." if literals.plain else ""
    exact = f"Written exactly: {' and '.join(parts)}." if parts else ""
    held = " ".join(p for p in (exact, limit, plain) if p)
    return f"{held} (By the engine, not in the prompt.)" if held else ""
