"""Stop sequences for streamed text (the OpenAI ``stop`` parameter).

A stop string can arrive split across tokens ("END" as "EN" + "D"), so text that might be the
start of one is held back until the next piece decides: either the stop string completes (the
reply ends *before* it, as in the OpenAI API) or it does not (the held text is released). The
token ids are not cut: the reply's ids end with the token that completed the stop string, which
is what the model sampled and what training must score (docs/method.md §1).
"""

from __future__ import annotations

from collections.abc import Sequence


class StopScanner:
    """Feed decoded pieces; get back the text that is safe to show, and whether a stop hit."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.text = ""  # everything decoded so far (up to the stop string once one hit)
        self._sent = 0  # how much of ``text`` has been released
        self.hit = False
        self.which = ""  # the stop string that hit

    def feed(self, piece: str) -> str:
        """Add a piece; return the newly releasable text (possibly empty)."""
        if self.hit:
            return ""
        self.text += piece
        longest = max((len(s) for s in self.stops), default=0)
        start = max(0, self._sent - longest + 1)
        found = [(i, s) for i, s in ((self.text.find(s, start), s) for s in self.stops) if i >= 0]
        if found:
            self.hit = True
            at, self.which = min(found)
            self.text = self.text[:at]
            return self._release(len(self.text))
        return self._release(len(self.text) - self._held())

    def flush(self) -> str:
        """The reply ended without a stop string: release whatever was held back."""
        return self._release(len(self.text))

    def _held(self) -> int:
        """Length of the longest tail of ``text`` that is a proper prefix of some stop string."""
        best = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(self.text)), best, -1):
                if self.text.endswith(s[:n]):
                    best = n
                    break
        return best

    def _release(self, upto: int) -> str:
        upto = max(upto, self._sent)
        out, self._sent = self.text[self._sent: upto], upto
        return out
