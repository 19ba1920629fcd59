"""Where the preference memory goes in a reply's prompt, and in what words.

The placement is a measured choice, not a taste (docs/memory.md, ``bench/memory_placement.py``):
the bundled 135M model largely ignores a style wish in the system prompt but follows the same
words appended to the user's message in parentheses.

The note must not cost the KV-prefix reuse (``render``): the latest user message gets the current
note, and an earlier user message keeps the note its own reply was generated with *while that is
still the current note*. So, turn after turn with the same memory, the conversation renders to
exactly the previous prompt plus the new exchange and llama.cpp reuses all of it (measured in
docs/memory.md). When the memory changes, every earlier note drops at once: a deleted wish is
gone from the history too, not only from the latest message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..records import MemoryNote, Message, Wish

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


def render(system_prompt: str, path: Sequence[Message], notes: Mapping[int, MemoryNote],
           current: MemoryNote | None) -> list[dict[str, str]]:
    """The chat messages a reply below ``path`` sees: the system prompt, the branch, the memory.

    ``notes``: the notes earlier replies were generated with, by message id; ``current``: this
    reply's (None: no memory). See the module docstring for which user messages carry a note."""
    msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
    turns = [m for m in path if m.role in ("user", "assistant", "tool")]
    users = [i for i, m in enumerate(turns) if m.role == "user"]
    for i, m in enumerate(turns):
        content = m.content
        if current is not None and current.placement != "system" and m.role == "user" and i != users[-1]:
            # the reply to this message: the first assistant message before the next user message
            reply = next((r for r in turns[i + 1:] if r.role in ("assistant", "user")), None)
            if reply is not None and reply.role == "assistant" and current.same_words(notes.get(reply.id)):
                content = current.decorate(content)
        msgs.append({"role": m.role, "content": content})
    return current.apply(msgs) if current is not None else msgs
