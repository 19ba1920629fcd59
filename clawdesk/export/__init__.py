"""From a trained peft LoRA to something llama.cpp serves — and proof that it does.

The trainer leaves a peft folder (LoRA on q, k, v, o, gate, up, down of every layer). The chat
runs llama.cpp on a GGUF. Two ways to serve the new behaviour (``settings.serve``):

* ``adapter`` — ``peft_to_gguf_lora``: a small GGUF LoRA (a few MB) that llama.cpp applies on
  top of the unchanged base, hot-swapped in ~0.03 s; rollback is swapping the previous file.
* ``merged`` — ``merge_to_gguf``: base + LoRA folded into one model, quantised by llama.cpp's
  own quantiser (Q8_0 by default, Q4_K_M smaller). No adapter overhead at run time, but a full
  model file per version and a model reload to switch.

``verify_served`` loads the result through the real serving path and checks that llama.cpp
reproduces what torch + peft produced; the promotion step calls it before renaming a file into
place. Every writer here goes through ``atomic.atomic_output``: a crash never leaves a partial
file at the destination.

The two things that make a LoRA mean the same in llama.cpp as in torch — tensor names and the
RoPE row permutation of q/k — are explained in ``layout.py``; why a merge must never be
re-quantised to the base's Q4_1 is in ``merge.py``.
"""

from .adapter import peft_to_gguf_lora
from .merge import QTYPES, merge_to_gguf
from .verify import open_served, served_greedy, verify_served

__all__ = ["QTYPES", "merge_to_gguf", "open_served", "peft_to_gguf_lora", "served_greedy", "verify_served"]
