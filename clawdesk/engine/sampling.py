"""The token loop under ``Engine.generate``: tokens until an end of turn, a stop string, a cancel
or the budget, streamed as valid UTF-8.

It lives apart from the engine because a shaped reply (``shape.py``: fixed words at its start or
its last line, a word limit) runs it more than once per reply, with different budgets and stops,
and because its two constraints beyond llama.cpp's samplers — no end of turn or line break before
the first ``min_tokens`` of a closing line, and plain text (``plain.py``) — are logits processors
over the vocabulary's token texts, read once.
"""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .plain import PlainText
from .stops import StopScanner


@dataclass
class Run:
    """One stretch of sampling: its tokens, text, why it ended, when its first token came."""

    ids: list[int] = field(default_factory=list)
    text: str = ""
    finish: str = "length"
    first: float = 0.0


class TokenLoop:
    def __init__(self, llm: Any, is_eog: Callable[[int], bool]) -> None:
        self._llm, self._eog = llm, is_eog
        self._texts: list[str] | None = None  # every token's text, read once (``token_texts``)
        self._line_enders: Any = None  # token ids that end a turn or hold a line break, found once
        self._plain: PlainText | None = None  # found once, when first asked for

    def token_texts(self) -> list[str]:
        """Each token's text (special tokens as ''), for the logits processors below: read from
        the vocabulary once per model, not once per processor."""
        if self._texts is None:
            self._texts = [self._llm.detokenize([t], special=False).decode("utf-8", "replace")
                           for t in range(self._llm.n_vocab())]
        return self._texts

    def sample(self, prompt_ids: list[int], max_tokens: int, *, temperature: float, top_p: float, top_k: int,
               repeat_penalty: float, grammar: Any, cancel: threading.Event | None, stop: Sequence[str],
               on_text: Callable[[str], None] | None, min_tokens: int = 0,
               scanner: list[StopScanner] | None = None, until: Callable[[str], bool] | None = None,
               plain: bool = False) -> Run:
        """No end of turn, no line break and no ``stop`` before ``min_tokens`` (a closing line's
        "Hope this helps" + "!" is not yet its end); ``scanner`` receives the stop scanner (which
        stop string hit). ``until(text)`` true for the text with a new piece added
        ends the run *before* that piece (finish 'words'): it is neither shown nor kept. ``plain``
        keeps the sampler off Markdown's markers (``plain.py``)."""
        stopper = StopScanner(stop) if stop else None
        if scanner is not None and stopper is not None:
            scanner.append(stopper)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        run = Run()
        pieces: list[str] = []
        processors = self._processors(run, min_tokens, plain)
        # No grammar reset needed: llama-cpp-python builds a fresh grammar sampler per call.
        gen = self._llm.generate(prompt_ids, top_k=top_k, top_p=top_p, temp=temperature,
                                 repeat_penalty=repeat_penalty, grammar=grammar, min_p=0.0,
                                 logits_processor=processors)
        try:
            for tok in gen:
                if not run.ids:
                    run.first = time.perf_counter()
                run.ids.append(int(tok))
                if self._eog(tok):
                    run.finish = "stop"
                    break
                piece = decoder.decode(self._llm.detokenize([tok]))
                if stopper is not None and len(run.ids) > min_tokens:
                    piece = stopper.feed(piece)
                if until is not None and piece and until("".join(pieces) + piece):
                    run.finish = "words"
                    break
                if piece:
                    pieces.append(piece)
                    if on_text:
                        on_text(piece)
                if stopper is not None and stopper.hit:
                    run.finish = "stop"
                    break
                if cancel is not None and cancel.is_set():
                    run.finish = "cancelled"
                    break
                if len(run.ids) >= max_tokens:
                    break
        finally:
            gen.close()
        tail = decoder.decode(b"", final=True) if run.finish != "words" else ""
        if stopper is not None:
            tail = "" if stopper.hit else stopper.feed(tail) + stopper.flush()
        if tail:
            pieces.append(tail)
            if on_text:
                on_text(tail)
        run.text = "".join(pieces)
        return run

    def _processors(self, run: Run, min_tokens: int, plain: bool) -> Any:
        if not min_tokens and not plain:
            return None
        from llama_cpp import LogitsProcessorList

        found = [self._not_before(run, min_tokens)] if min_tokens else []
        if plain:
            if self._plain is None:
                self._plain = PlainText(self.token_texts())
            found.append(self._plain)
        return LogitsProcessorList(found)

    def _not_before(self, run: Run, n: int) -> Callable[[Any, Any], Any]:
        """A logits processor that keeps end-of-turn and line-break tokens out of the first ``n``."""
        import numpy as np

        if self._line_enders is None:
            texts = self.token_texts()
            self._line_enders = np.array([t for t, text in enumerate(texts) if self._eog(t) or "\n" in text],
                                         dtype=np.int64)
        banned = self._line_enders

        def block(_ids: Any, scores: Any) -> Any:
            if len(run.ids) < n:
                scores[banned] = -np.inf
            return scores
        return block
