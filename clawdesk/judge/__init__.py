"""The process-reward judge and the hint judge (docs/method.md §2–§3), and the pass that turns logged
turns into training samples.

- ``parse``: reading votes (last ``\\boxed{}`` wins, hints between tags, majority, hint filter).
- ``prompts``: the two prompts and their GBNF grammars.
- ``judge``: ``Judge`` — m votes of a local llama.cpp model at temperature 0.6.
- ``pipeline``: ``judge_pending`` — the service entry point the CLI and the nightly pass call.

The judge is a frozen local model: by default the chat model's base GGUF *without* the served
adapter (a separate ``Engine``), configurable to any registered GGUF with ``judge_model``.
"""

from .judge import Judge

__all__ = ["Judge"]
