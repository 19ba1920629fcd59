"""The training pass: LoRA/QLoRA on the combined binary-RL + top-k OPD objective (docs/method.md §3–§5).

Modules, by concern: ``loss`` (the objective, pure tensor functions), ``scoring`` (student,
teacher and reference log-probs from one torch forward), ``data`` (held-out split, which samples
a method uses, batches), ``backend`` (model + LoRA on CPU or CUDA), ``run`` (the pass itself).
"""

from .run import train_pass

__all__ = ["train_pass"]
