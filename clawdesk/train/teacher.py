"""A teacher bigger than the chat model: ``teacher_model``.

Why: on-policy distillation is only as good as its teacher — the chat model with the hint in its
context. The bundled 135M model follows a hint poorly (docs/platform.md: "keep it under 30 words"
0.60 compliant with the hint), and on a GPU, or a CPU with the memory, a bigger model of the same
family can read the hint far better. The teacher's log-probs are then taken on the *same* token
ids as the student's, so it must share the student's tokenizer — same vocabulary, same ids —
which is checked here, not assumed: another family's model would give log-probs of other tokens.

The teacher is frozen and used only for scoring under π_old, once per pass and once in the gate,
then freed; it is loaded like the gate's base (``backend.gate_backend``: fp32 on the CPU, the
trainer's NF4 or bf16 on the GPU).
"""

from __future__ import annotations

import logging
from typing import Any

from .. import catalog
from ..errors import TrainingError
from ..settings import Settings
from ..store import Store

log = logging.getLogger(__name__)


def load_teacher(store: Store, settings: Settings, student_tokenizer: Any) -> Any | None:
    """The frozen ``teacher_model`` in eval mode, or None when the setting is empty. TrainingError
    when it cannot be trained on (architecture) or does not share the student's tokenizer."""
    if not settings.teacher_model:
        return None
    from .backend import base_weights_dir, check_trainable, gate_backend, load_base

    entry = catalog.resolve(store, settings.teacher_model)
    check_trainable(entry)
    model, tokenizer = load_base(base_weights_dir(entry), gate_backend(settings.train_backend))
    if tokenizer.get_vocab() != student_tokenizer.get_vocab():
        raise TrainingError(f"teacher_model '{entry.name}' does not share the chat model's tokenizer, so its "
                            f"log-probs would be of other tokens; pick a model of the same family "
                            f"(same vocabulary), or clear teacher_model.")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    log.info("OPD teacher: %s", entry.name)
    return model


def release(model: Any | None) -> None:
    """Free a teacher's memory as soon as scoring is done (it is not needed for the steps)."""
    if model is None:
        return
    import gc

    import torch

    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
