"""What a correction changed, told generically: one mechanical edit, or nothing transferable.

A person who corrects a reply often makes the same small edit they would make to every reply —
put "Hi Sam! " in front, add a closing "In short: …" line, lower-case it, drop the asterisks, cut
it short. The model learns the *form* of such an edit from a few demonstrations but not its literal
words (docs/how-it-learns.md, "Endings and the literal words"), so ``judge/transfer.py`` repeats
the edit on the model's own replies to other prompts. This module only reads the edit: difflib on
the reply vs. the correction, no model and no knowledge of any wish. What it recognises:

- ``affix``: text inserted before and/or after the whole reply. A part of the insertion that
  copies the start of one of the reply's sentences (a summary line that repeats the first
  sentence) is kept as a slot, refilled from the reply the edit is repeated on;
- ``case``: the whole reply lower- or upper-cased;
- ``remove``: every occurrence of a few characters removed (``*``, ``#``, ``!``);
- ``cut``: the reply kept up to some point (a final full stop may be added).

Anything else — a rewritten answer, a fix of one fact — is not a transferable edit (None): it says
something about that one reply, not about every reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")
MIN_COPY_WORDS = 3  # a shorter match between the insertion and the reply is a coincidence, not a copy
WHOLE_SENTENCE_WORDS = 20  # a copied whole sentence is refilled with up to this many words: one line
MAX_REMOVED_CHARS = 3  # distinct characters a "remove" edit may delete; more is a rewrite


@dataclass(frozen=True)
class Slot:
    """A copy of (the start of) sentence ``sentence`` of the reply, at most ``words`` words."""

    sentence: int
    words: int

    def fill(self, reply: str) -> str:
        sentences = [s for s in SENTENCE_SPLIT.split(_plain(reply)) if s.strip()]
        if not sentences:
            return ""
        chosen = sentences[min(self.sentence, len(sentences) - 1)].split()[: self.words]
        return " ".join(chosen).rstrip(",;:.!?")


@dataclass(frozen=True)
class Insert:
    """Literal text around an optional slot: ``head`` + slot + ``tail``."""

    head: str
    slot: Slot | None = None
    tail: str = ""

    def render(self, reply: str) -> str:
        if self.slot is None:
            return self.head
        filled = self.slot.fill(reply)
        return self.head + filled + (self.tail if filled else "")

    @property
    def literal(self) -> str:
        """The words the user asked for, without the slot (for display)."""
        return self.head.strip() if self.slot else (self.head + self.tail).strip()


@dataclass(frozen=True)
class Edit:
    """One mechanical edit (see the module docstring); ``apply`` repeats it on another reply's text."""

    kind: str  # affix | case | remove | cut
    prefix: Insert | None = None
    suffix: Insert | None = None
    case: str = ""  # lower | upper
    removed: str = ""  # the characters a remove edit deletes
    words: int = 0  # a cut keeps at most this many words

    @property
    def is_ending(self) -> bool:
        """An edit at the end of the reply: where it lands depends on where the reply stops."""
        return self.suffix is not None or self.kind == "cut"

    def describe(self) -> str:
        if self.kind == "affix":
            parts = ([f"prefix {self.prefix.literal!r}"] if self.prefix else []) + \
                    ([f"suffix {self.suffix.literal!r}"] if self.suffix else [])
            return " + ".join(parts)
        if self.kind == "case":
            return f"{self.case}-case"
        if self.kind == "remove":
            return f"remove {self.removed!r}"
        return f"cut to {self.words} words"

    def apply(self, reply: str) -> str:
        """The edit on another reply's text (whole-text form; transfer.py does it on token ids)."""
        text = reply.strip()
        if self.kind == "case":
            return text.lower() if self.case == "lower" else text.upper()
        if self.kind == "remove":
            return "".join(ch for ch in text if ch not in self.removed)
        if self.kind == "cut":
            return cut_words(text, self.words)
        head = self.prefix.render(text) if self.prefix else ""
        tail = self.suffix.render(text) if self.suffix else ""
        return head + text + tail

    def changes(self, reply: str) -> bool:
        """False when the reply already shows the edit (it starts/ends with the literal words, is
        already lower-case, …): repeating it there would teach nothing or double it."""
        text = reply.strip()
        if self.kind == "affix":
            if self.prefix and text.lower().startswith(self.prefix.literal.lower()):
                return False
            if self.suffix and self.suffix.literal.lower() in text[-200:].lower():
                return False
            return True
        return self.apply(text) != text


def detect_edit(reply: str, corrected: str) -> Edit | None:
    """The one mechanical edit that turns ``reply`` into ``corrected``, or None (see the module
    docstring). Leading/trailing whitespace of either is ignored."""
    a, b = reply.strip(), corrected.strip()
    if not a or not b or a == b:
        return None
    if a.lower() == b.lower():
        if b == a.lower() or b == a.upper():
            return Edit("case", case="lower" if b == a.lower() else "upper")
        return None
    ops = [op for op in SequenceMatcher(None, a, b, autojunk=False).get_opcodes() if op[0] != "equal"]
    if all(tag == "insert" for tag, *_ in ops) and all(i1 in (0, len(a)) for _, i1, *_ in ops):
        prefix = "".join(b[j1:j2] for _, i1, _, j1, j2 in ops if i1 == 0 and a)
        suffix = "".join(b[j1:j2] for _, i1, _, j1, j2 in ops if i1 == len(a))
        return Edit("affix", prefix=_insert(prefix, a) if prefix else None,
                    suffix=_insert(suffix, a) if suffix else None)
    return _removal(a, b) or _cut(a, b)


def _insert(text: str, reply: str) -> Insert:
    """Split an insertion into literal words and a copy of one of the reply's sentences."""
    plain = _plain(reply)
    m = SequenceMatcher(None, text, plain, autojunk=False).find_longest_match(0, len(text), 0, len(plain))
    copied = text[m.a:m.a + m.size]
    if len(copied.split()) < MIN_COPY_WORDS:
        return Insert(text)
    end = len(copied.rstrip(",;:.!? "))  # closing punctuation belongs to the literal tail
    m = m._replace(size=end)
    # the slot starts at a word boundary of both texts and at the start of a reply sentence
    starts = [0] + [x.end() for x in SENTENCE_SPLIT.finditer(plain)]
    sentence = max(i for i, s in enumerate(starts) if s <= m.b)
    head, tail = text[:m.a], text[m.a + m.size:]
    copied = text[m.a:m.a + m.size]
    whole = SENTENCE_SPLIT.split(plain[starts[sentence]:])[0].rstrip(",;:.!? ")
    # a whole sentence copied: the slot takes the whole sentence of another reply (up to a line);
    # a sentence cut short: the same number of words
    words = max(len(copied.split()), WHOLE_SENTENCE_WORDS) if whole.endswith(copied) else len(copied.split())
    return Insert(head, Slot(sentence, words), tail)


def _removal(a: str, b: str) -> Edit | None:
    """Every occurrence of a few characters deleted, nothing else changed."""
    removed = set(a) - set(b)
    if not removed or len(removed) > MAX_REMOVED_CHARS or any(ch.isalnum() or ch.isspace() for ch in removed):
        return None
    if "".join(ch for ch in a if ch not in removed) == b:
        return Edit("remove", removed="".join(sorted(removed)))
    return None


def _cut(a: str, b: str) -> Edit | None:
    """``b`` is the start of ``a`` (whitespace-normalised), perhaps with a full stop added."""
    na, nb = " ".join(a.split()), " ".join(b.split())
    kept = nb[:-1] if nb.endswith(".") and not na.startswith(nb) else nb
    kept = kept.rstrip()
    if kept and len(kept) < len(na) and na.startswith(kept):
        return Edit("cut", words=len(nb.split()))
    return None


def cut_words(text: str, n: int) -> str:
    """Whole sentences while they fit in ``n`` words (at least the first sentence's first n words)."""
    kept: list[str] = []
    for s in SENTENCE_SPLIT.split(" ".join(text.split())):
        if len(" ".join(kept + [s]).split()) > n:
            break
        kept.append(s)
    if not kept:
        return " ".join(text.split()[:n]).rstrip(",;:") + "."
    return " ".join(kept)


def _plain(text: str) -> str:
    """The reply as one line of words, list and emphasis markers dropped (a copy in a summary line
    is made from the text, not its formatting)."""
    lines = [re.sub(r"^\s*(?:[-*+•]|\d+[.)]|#{1,6})\s+", "", ln) for ln in text.splitlines()]
    return " ".join(re.sub(r"\*\*|__", "", " ".join(lines)).split())
