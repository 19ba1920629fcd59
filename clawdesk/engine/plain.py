"""Plain text by construction: the tokens a reply without Markdown never takes.

A person who asked for "plain sentences, no lists" (a screen reader, a plain-text mail client)
gets asterisks and "1." lists from the bundled model about half the time, with the wish in the
prompt (docs/memory.md). Markdown is made of a few markers, so rather than hope, the sampler is
kept off them: bold (``**``, ``__``) and code fences anywhere, and at the start of a line a list
marker (``-``, ``*``, ``+``, ``•``), a quote, a heading, a table row or a digit ("1."). A lone
``*``, ``#`` or ``|`` inside a line stays possible ("2 * 3", "C#", a shell pipe): those are not
formatting. The model still chooses every token among the rest. The vocabulary is read once
per model, shared with the engine's other processor.
"""

from __future__ import annotations

import re
from typing import Any

_ANYWHERE = re.compile(r"\*\*|__|```|\n[ \t]*(?:[-*+•>#|]|\d)")
_LINE_START = re.compile(r"^[ \t]*(?:[-*+•>#|]|\d)")
_ENDS_LINE = re.compile(r"\n[ \t]*$")


class PlainText:
    def __init__(self, texts: list[str]) -> None:
        """``texts``: each token's text, special tokens as '' (``TokenLoop.token_texts``)."""
        import numpy as np

        self.anywhere = np.array([i for i, t in enumerate(texts) if t and _ANYWHERE.search(t)], dtype=np.int64)
        self.line_start = np.array([i for i, t in enumerate(texts) if t and _LINE_START.match(t)], dtype=np.int64)
        self.ends_line = np.array([bool(t) and bool(_ENDS_LINE.search(t)) for t in texts], dtype=bool)
        self.blank = np.array([bool(t) and not t.strip(" \t") for t in texts], dtype=bool)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np

        scores[self.anywhere] = -np.inf
        if self.at_line_start(input_ids):
            scores[self.line_start] = -np.inf
        return scores

    def at_line_start(self, ids: Any) -> bool:
        """Only spaces since the last line break ("\n\n", " ", then "1." is still a list)."""
        i = len(ids) - 1
        while i >= 0 and self.blank[int(ids[i])]:
            i -= 1
        return i >= 0 and bool(self.ends_line[int(ids[i])])
