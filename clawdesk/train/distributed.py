"""Training on several GPUs (or processes) through ``accelerate launch``: DDP, nothing home-made.

Under ``accelerate launch --num_processes N`` every process runs the same pass; accelerate wraps
the LoRA model in torch's DistributedDataParallel, which averages the gradients across processes
during ``backward``. What ClawDesk adds is only the bookkeeping that makes N processes take the
*same* optimizer steps one process would:

* every process forms the same seeded global batches (``data.epoch_batches``) and takes its
  shard ``batch[rank::N]``;
* a process's loss is its samples' per-sample objectives summed and scaled by N / B (B the global
  batch), so DDP's average over N processes is exactly the one-process Σ/B;
* every process runs the same number of forward/backward calls per step (DDP's collectives must
  pair up): its shard is cut into the same number of micro-batches everywhere, and a process whose
  shard ran out runs one sample with weight 0 (it contributes nothing, but takes part).

tests/tiny/test_accelerate_ddp.py checks that 2 CPU processes (gloo) give the 1-process loss
trajectory. FSDP, for a base that does not fit one GPU, is accelerate's configuration, not code
here (docs/gpu.md).
"""

from __future__ import annotations

import math
import os
from typing import Any


def launched() -> bool:
    """Whether this process is one of several started by ``accelerate launch`` (or torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def accelerator() -> Any | None:
    """accelerate's ``Accelerator`` when launched with several processes, else None (one process
    needs no wrapping; importing accelerate is then skipped)."""
    if not launched():
        return None
    import torch
    from accelerate import Accelerator

    # Without CUDA accelerate must be told it is a CPU run, or it runs each process on its own.
    return Accelerator(cpu=not torch.cuda.is_available())


def shard(batch: list[Any], rank: int, world: int, micro_batch: int) -> list[tuple[list[Any], float]]:
    """This process's part of a global batch as (micro-batch, loss weight) pairs — the same count
    on every process. The weight multiplies the sum of the micro-batch's per-sample objectives."""
    mine = batch[rank::world]
    per_process = math.ceil(len(batch) / world)
    n = max(1, math.ceil(per_process / max(1, micro_batch)))
    size = max(1, math.ceil(per_process / n))
    chunks = [mine[i * size:(i + 1) * size] for i in range(n)]
    weight = world / len(batch)
    return [(chunk, weight) if chunk else (batch[:1], 0.0) for chunk in chunks]
