"""The preference memory: "what ClawDesk knows about you" (docs/memory.md).

Durable wishes — "keep it under 30 words", "call me Dana", "no lists" — are read out of the
feedback people actually give (corrections, comments, 👎 reasons and comments, and a next
message that complains about the last reply), kept in the store as a short profile the user
can read and edit, each with the turns it came from, and put into the very next reply's prompt.
Training needs nights; a wish stated once should count from the next turn.

- ``rules``: explicit statements → wishes, no model (runs at once, when feedback is given);
- ``judge``: for what the rules miss, a local model picks the clause of the user's words that
  states a lasting wish — a grammar built from those words, so even the 135M model cannot
  invent one (run in a batch: ``clawdesk memory extract``, or the nightly pass);
- ``service``: ``Memory`` — learn from a feedback row or a message, list/add/edit/delete, and
  the note for the next prompt;
- ``prompt``: where the note goes and in what words (placement measured, not assumed);
- ``literal``: the words an opening or ending wish quotes, which the engine writes exactly.
"""

from .literal import Literals, literals_of, said
from .prompt import PLACEMENTS, note_for, render, where
from .service import Learned, Memory

__all__ = ["Learned", "Literals", "Memory", "literals_of", "said", "PLACEMENTS", "note_for", "render", "where"]
