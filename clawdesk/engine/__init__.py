"""The inference engine: one llama.cpp model, optionally with a LoRA adapter, behind one lock.

Why a class of our own rather than ``create_chat_completion``: training needs the *exact* token
ids the model saw and sampled (docs/method.md §1), so we render the chat template ourselves, tokenize
once, sample with ``Llama.generate`` and keep both id lists. ``generate`` also reuses the KV
cache for the longest common prefix with the previous call, which is llama.cpp's prompt cache
for a conversation that grows turn by turn.

Swaps (a new adapter, a rollback, a new merged model) are *requested* from any thread and
applied between turns: a turn in progress finishes on the weights it started with.
"""

from .llama import Engine, EngineStats
from .vocab import Vocab

__all__ = ["Engine", "EngineStats", "Vocab"]
