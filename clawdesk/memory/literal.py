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

from ..records import Wish

# A quote opens after a non-letter and closes before one, so "don't … 'x'" is not a quote.
_QUOTED = re.compile(r"(?<![\w])['\"‘“]([^'\"‘’“”\n]{1,40}?)['\"’”](?![\w])")


@dataclass(frozen=True)
class Literals:
    opening: str = ""
    ending: str = ""

    def __bool__(self) -> bool:
        return bool(self.opening or self.ending)


def quoted(text: str) -> str:
    """The first quoted words in ``text`` ('' when none)."""
    m = _QUOTED.search(text)
    return m.group(1).strip() if m else ""


def written_exactly(wish: Wish) -> bool:
    """A wish whose words the engine writes: it stays out of the prompt's note, where it only
    made the model write them a second time ("Hi Sam! Hi Sam, …")."""
    return wish.status == "active" and wish.slot in ("opening", "ending") and bool(quoted(wish.text))


def literals_of(wishes: Sequence[Wish]) -> Literals:
    """The quoted opening and ending of the active wishes (the newest wish of a slot wins)."""
    found = {w.slot: quoted(w.text) for w in wishes if written_exactly(w)}
    return Literals(found.get("opening", ""), found.get("ending", ""))


def said(literals: Literals) -> str:
    """The quoted words in the words every UI uses ('' when there are none)."""
    opening = f"every reply starts with “{literals.opening}”" if literals.opening else ""
    whose = "its" if opening else "the"
    ending = f"{whose} last line{'' if opening else ' of every reply'} starts with “{literals.ending}”"
    parts = [p for p in (opening, ending if literals.ending else "") if p]
    return f"Written exactly: {' and '.join(parts)}." if parts else ""
