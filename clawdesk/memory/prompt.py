"""Where the preference memory goes in a reply's prompt, and in what words.

The placement is a measured choice, not a taste (docs/memory.md, ``bench/memory_placement.py``):
the bundled 135M model largely ignores a style wish in the system prompt but follows the same
words appended to the user's message in parentheses. Only the *latest* user message carries the
note: every earlier turn renders to the same tokens on every turn, so llama.cpp's KV-prefix
reuse keeps all of the conversation before the last exchange (``MemoryNote`` in records.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..records import MemoryNote, Wish

# 'off' turns the memory out of the prompt (it is still learned and listed).
PLACEMENTS = ("user", "user_tag", "user_prefix", "system")

_WHERE = {
    "user": "appended to your latest message, in parentheses",
    "user_tag": "appended to your latest message, under a hint tag",
    "user_prefix": "put before your latest message",
    "system": "added to the system prompt",
    "off": "nowhere (memory_placement = off): learned and listed, not used",
}


def where(placement: str) -> str:
    """Where the memory goes, in the words every UI uses to say so."""
    return _WHERE.get(placement, placement)


def sentence(text: str) -> str:
    """One wish as a sentence: stripped, capitalised, ending in punctuation."""
    text = " ".join(text.split()).strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?\"'’”)" else text + "."


def note_for(wishes: Sequence[Wish], placement: str) -> MemoryNote | None:
    """The note for the active ``wishes`` at ``placement``; None when there is nothing to add."""
    if placement not in PLACEMENTS:
        return None
    active = [w for w in wishes if w.status == "active" and w.text.strip()]
    if not active:
        return None
    return MemoryNote(placement, " ".join(sentence(w.text) for w in active), tuple(w.id for w in active))
