"""``Memory``: learn wishes from feedback and messages, edit the profile, and give the next
prompt its note (see the package docstring).

How a found wish meets the profile (``learn``):

1. If a wish — active *or deleted* — already came from this very source (the same turn and
   feedback row) and means the same (same slot, or the same words), nothing happens: reading a
   turn twice changes nothing, and a wish the user deleted never comes back from its turns.
2. Else, if an active wish fills the same slot (or has the same words), it is *confirmed*: the
   source is added, its confirmed time moves, and a new wording replaces the old one ("under 50
   words" after "under 30 words") — unless the new one is vaguer ("too long" after "under 30
   words", "greet me first" after "start with 'Hi Sam!'"), which confirms the precise one.
3. Else, if a deleted wish matches, the person said it again in a new turn: it comes back.
4. Else it is a new wish.

``on_learned`` lets a UI hear about what was learned as it happens (the TUI's "learned: …").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..records import Feedback, MemoryNote, Message, Wish, WishSource
from ..settings import Settings
from ..store import Store
from .literal import Literals, held_by_engine, literals_of, quoted
from .prompt import note_for, sentence
from .rules import Candidate, extract


@dataclass(frozen=True)
class Learned:
    """One wish the memory took in: ``kind`` is new | changed | confirmed."""

    wish: Wish
    kind: str


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _vaguer(old: Wish, new: str) -> bool:
    """A restatement that says less than the wish it meets, so it confirms that wish: no number
    after a number, asking the same direction ("too long" after "under 30 words"); no quoted words
    after quoted ones in the opening or ending slot ("say hi to me first" after "start with 'Hi
    Sam!'") — else the next reply would lose the exact words the engine writes (``literal.py``)."""
    if old.slot in ("opening", "ending") and quoted(old.text) and not quoted(new):
        return True
    return bool(re.search(r"\d", old.text)) and not re.search(r"\d", new) and "fuller" not in new.lower()


class Memory:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self.on_learned: Callable[[list[Learned]], None] | None = None

    # --- the profile ----------------------------------------------------------------------------
    def wishes(self, include_deleted: bool = False) -> list[Wish]:
        return self.store.wishes(include_deleted=include_deleted)

    def note(self) -> MemoryNote | None:
        """What the next reply's prompt gets (None: nothing to add, or ``memory_placement = off``)."""
        if self.settings.memory_placement == "off":
            return None
        s, wishes = self.settings, self.store.wishes(with_sources=False)
        held = held_by_engine(wishes, exact=s.memory_literal, words=s.memory_word_limit, plain=s.memory_plain_text)
        return note_for([w for w in wishes if w.id not in held], s.memory_placement)

    def literals(self) -> Literals:
        """The quoted words the next reply opens or ends with, its word limit and plain text
        (``literal.py``); none when the memory is off, each only with its setting
        (``memory_literal``, ``memory_word_limit``, ``memory_plain_text``)."""
        s = self.settings
        if s.memory_placement == "off" or not (s.memory_literal or s.memory_word_limit or s.memory_plain_text):
            return Literals()
        return literals_of(self.store.wishes(with_sources=False), exact=s.memory_literal,
                           words=s.memory_word_limit, plain=s.memory_plain_text)

    def record(self, message_id: int, note: MemoryNote | None) -> None:
        """Keep the note a reply was generated with (the messages the model saw, rebuilt later)."""
        if note is not None:
            self.store.record_note(message_id, note)

    def add(self, text: str) -> Wish:
        """A wish the person typed in. It takes a slot when the rules recognise it, so that a
        later learned wish of the same kind replaces it instead of contradicting it."""
        text = sentence(text)
        if not text:
            raise ValueError("A wish needs some text.")
        found = extract(text, "comment")
        return self.store.add_wish(text, found[0].slot if len(found) == 1 else "", origin="user")

    def edit(self, wish_id: int, text: str) -> Wish:
        text = sentence(text)
        if not text:
            raise ValueError("A wish needs some text; `clawdesk memory rm` deletes one.")
        return self.store.edit_wish(wish_id, text)

    def remove(self, wish_id: int, purge: bool = False) -> Wish:
        """Out of the prompt from the next turn on. A tombstone by default, so the turns it came
        from never teach it again; ``purge`` also forgets that it was ever learned."""
        wish = self.store.delete_wish(wish_id)
        if purge:
            self.store.purge_wish(wish_id)
        return wish

    # --- learning -------------------------------------------------------------------------------
    def learn_from_feedback(self, fb: Feedback) -> list[Learned]:
        """Wishes stated in a feedback row: a correction that reads as an instruction, a comment,
        a 👎's comment and its reason (the comment first: it says more than the reason)."""
        texts: list[tuple[str, str]] = []
        reply = ""
        if fb.kind == "correction":
            texts.append((fb.correction, "correction"))
            reply = self.store.get_message(fb.message_id).content
        elif fb.kind in ("thumbs_down", "comment"):
            texts += [(fb.comment, "thumbs_down" if fb.kind == "thumbs_down" else "comment"), (fb.reason, "reason")]
        found: list[tuple[Candidate, str]] = []
        for text, channel in texts:
            for c in extract(text, channel, reply=reply):
                if not any(c.slot and c.slot == f.slot for f, _ in found):
                    found.append((c, channel))
        return self._take([(c, WishSource(fb.message_id, fb.id, None, channel, c.quote)) for c, channel in found])

    def learn_from_message(self, message: Message, after_reply: bool) -> list[Learned]:
        """Wishes in the person's own message (a complaint about the last reply, or "from now on …")."""
        if message.role != "user":
            return []
        found = extract(self.remark(message) if after_reply else message.content, "message", after_reply=after_reply)
        return self._take([(c, WishSource(message.id, None, message.conversation_id, "message", c.quote)) for c in found])

    def remark(self, message: Message) -> str:
        """The message without the question it asks again. A complaint often comes with the last
        question repeated ("Too long. Please keep it under 30 words. How do vaccines work?"); the
        rules leave a message that asks something alone (it is a request for one reply), so the
        repeated question is taken out and the rest read as a remark on the reply before."""
        reply = self.store.get_message(message.parent_id) if message.parent_id is not None else None
        if reply is None or reply.role != "assistant" or reply.parent_id is None:
            return message.content
        asked = self.store.get_message(reply.parent_id).content.strip()
        rest = " ".join(message.content.replace(asked, " ").split()) if len(asked) >= 8 else ""
        return rest if rest and asked in message.content else message.content

    def learn(self, candidate: Candidate, source: WishSource, origin: str = "rule") -> Learned | None:
        """Meet one found wish with the profile (the module docstring's four steps)."""
        text = sentence(candidate.text)
        all_wishes = self.store.wishes(include_deleted=True)

        def same(w: Wish) -> bool:
            return (bool(candidate.slot) and w.slot == candidate.slot) or _norm(w.text) == _norm(text)

        for w in all_wishes:
            if same(w) and any(s.message_id == source.message_id and s.feedback_id == source.feedback_id
                               for s in w.sources):
                return None
        active = [w for w in all_wishes if w.status == "active" and same(w)]
        if active:
            w = active[-1]
            if _norm(w.text) == _norm(text) or _vaguer(w, text):
                return Learned(self.store.confirm_wish(w.id, source), "confirmed")
            return Learned(self.store.confirm_wish(w.id, source, text=text), "changed")
        deleted = [w for w in all_wishes if w.status == "deleted" and same(w)]
        if deleted:
            return Learned(self.store.confirm_wish(deleted[-1].id, source, text=text), "new")
        return Learned(self.store.add_wish(text, candidate.slot, origin=origin, source=source), "new")

    def _take(self, found: list[tuple[Candidate, WishSource]], origin: str = "rule") -> list[Learned]:
        if not self.settings.memory_learn:
            return []
        learned = [got for c, source in found
                   if self._learnable(source.message_id) and (got := self.learn(c, source, origin)) is not None]
        if learned and self.on_learned is not None:
            self.on_learned(learned)
        return learned

    def _learnable(self, message_id: int) -> bool:
        """"Don't learn from this" covers the memory too: nothing is learned from an excluded
        reply or conversation (a wish learned before the exclusion stays until deleted)."""
        message = self.store.get_message(message_id)
        return not message.exclude and not self.store.get_conversation(message.conversation_id).exclude
