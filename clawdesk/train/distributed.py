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

A whole pass (``clawdesk train --now`` under the launcher) keeps the store single-writer: process 0
alone takes the pipeline lock, judges, picks the samples, opens the run record, and afterwards saves
the candidate, gates and promotes. When it has picked the samples it sends them — a ``Plan`` —
to the other processes, which have been waiting in ``receive_plan``; they load the same base, score
the same samples, train their shards in lock-step and exit without writing anything. If process 0
ends before training (nothing to train, the lock busy, an error), ``release`` sends "no plan" so
the others exit instead of waiting.

tests/tiny/test_accelerate_ddp.py checks that 2 CPU processes (gloo) give the 1-process loss
trajectory, and that a whole pass under 2 processes completes with process 0 alone writing.
FSDP, for a base that does not fit one GPU, is accelerate's configuration, not code here
(docs/gpu.md).
"""

from __future__ import annotations

import functools
import math
import os
import socket
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..records import Sample, TrainResult
from ..settings import Settings
from ..store import Store

# How long the other processes wait for process 0 at a collective. Process 0 judges the night's
# turns before it sends the plan (minutes to hours on a CPU), and torch's default (10–30 minutes)
# would end the waiting processes first.
JOIN_TIMEOUT = timedelta(hours=24)
_plan_sent = False


def launched() -> bool:
    """Whether this process is one of several started by ``accelerate launch`` (or torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@functools.cache
def accelerator() -> Any | None:
    """accelerate's ``Accelerator`` when launched with several processes, else None (one process
    needs no wrapping; importing accelerate is then skipped). One per process: the CLI and the
    pass share it."""
    if not launched():
        return None
    import torch
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    # Without CUDA accelerate must be told it is a CPU run, or it runs each process on its own.
    return Accelerator(cpu=not torch.cuda.is_available(),
                       kwargs_handlers=[InitProcessGroupKwargs(timeout=JOIN_TIMEOUT)])


def is_follower() -> bool:
    """Whether this process is one of the others (not process 0) of a launched pass."""
    dist = accelerator()
    return dist is not None and not dist.is_main_process


@dataclass
class Plan:
    """What process 0 decided for this pass, sent once to every other process: the same samples
    in the same order (``train_pass``'s usable + mixed-in positives), the method, and the adapter
    the pass starts from. The run id is only for the others' log lines."""

    run_id: int
    method: str
    samples: list[Sample]
    adapter_dir: str | None


def send_plan(plan: Plan) -> None:
    """Process 0: hand the plan to the others (a no-op with one process)."""
    global _plan_sent
    dist = accelerator()
    if dist is None or _plan_sent:
        return
    from accelerate.utils import broadcast_object_list

    broadcast_object_list([plan], from_process=0)
    _plan_sent = True


def release() -> None:
    """Process 0, when its command ends: if it never sent a plan (no pass ran), tell the others
    there is none so they exit instead of waiting."""
    global _plan_sent
    dist = accelerator()
    if dist is None or not dist.is_main_process or _plan_sent:
        return
    from accelerate.utils import broadcast_object_list

    broadcast_object_list([None], from_process=0)
    _plan_sent = True


def finish() -> None:
    """Every process, when its command ended normally: wait for the others, then close the process
    group. Without it the first process to exit tears down its connections while another's gloo
    thread still holds them, and that process aborts ("terminate called without an active
    exception"): 4 of 15 empty passes on a loaded 2-core machine. After an error nobody waits:
    the launcher stops the others."""
    dist = accelerator()
    if dist is None:
        return
    import torch.distributed as td

    dist.wait_for_everyone()
    if td.is_initialized():
        td.destroy_process_group()


def receive_plan() -> Plan | None:
    """A process other than 0: wait for process 0's plan (None: process 0 ran no pass)."""
    from accelerate.utils import broadcast_object_list

    received: list[Any] = [None]
    broadcast_object_list(received, from_process=0)
    return received[0]


def follow(store: Store, settings: Settings, plan: Plan) -> TrainResult:
    """A process other than 0: train its shard of process 0's ``plan``. Nothing is written to
    the store or the run folder."""
    from .run import train_pass

    return train_pass(store, settings, method=plan.method, plan=plan)


def launch_command(num_processes: int, args: list[str]) -> list[str]:
    """The command that runs ``python -m clawdesk ARGS`` in ``num_processes`` processes: accelerate
    launch on CUDA GPUs (one process per GPU, NCCL); torch's own launcher on the CPU, because
    ``accelerate launch`` has no multi-process CPU mode without MPI (accelerate then picks gloo).
    Both start the processes through ``torch.distributed.run``."""
    import torch

    if torch.cuda.is_available():
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                str(num_processes), "--num_machines", "1", "-m", "clawdesk", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(num_processes),
            "--master_port", str(free_port()), "-m", "clawdesk", *args]


def free_port() -> int:
    """A TCP port free now on this machine, for the processes' rendezvous (two passes launched at
    once on a fixed port would collide)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
