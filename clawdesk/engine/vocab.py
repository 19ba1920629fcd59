"""A model's tokenizer without its weights: llama.cpp's vocab-only load (milliseconds, a few MB).

Used where text must become the *chat model's* token ids but no chat engine is at hand — e.g.
turning a user's corrected answer into a demonstration sample while a different model judges.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from .gguf_check import check_gguf
from ..errors import ModelCorrupt, ModelNotFound
from .llama import _quiet_stderr


class Vocab:
    def __init__(self, model_path: str | Path, verbose: bool = False) -> None:
        from llama_cpp import Llama

        self.model_path = str(model_path)
        if not Path(self.model_path).exists():
            raise ModelNotFound(f"No model file at {self.model_path}; `clawdesk models list` shows what is registered.")
        check_gguf(self.model_path)
        try:
            with _quiet_stderr() if not verbose else contextlib.nullcontext():
                self._llm = Llama(model_path=self.model_path, vocab_only=True, verbose=verbose)
        except (ValueError, RuntimeError) as e:
            raise ModelCorrupt(f"llama.cpp could not read the vocabulary of {self.model_path} ({e}).") from None

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def detokenize(self, ids: list[int]) -> str:
        return self._llm.detokenize(list(ids)).decode("utf-8", errors="replace")

    def eos_id(self) -> int:
        """The end-of-sequence token; in ChatML models the end of an assistant turn (<|im_end|>)."""
        return self._llm.token_eos()

    def close(self) -> None:
        self._llm.close()
