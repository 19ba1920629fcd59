"""Training under several processes: 2 CPU processes (accelerate's Accelerator on gloo) take the
same optimizer steps as 1 process on the same global batches — the same loss trajectory and
gradient norms within float tolerance (train/distributed.py). Real accelerate, real
torch.distributed, a tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
ROOT = HERE.parent.parent


def _run(args: list[str], out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, *args, str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_two_gloo_processes_follow_the_one_process_loss_trajectory(tmp_path):
    one = _run([str(HERE / "ddp_run.py")], tmp_path / "one.json")
    # On GPUs the command is `accelerate launch --multi_gpu --num_processes N`, which starts the
    # processes through torch.distributed.run; `accelerate launch` has no multi-process CPU mode
    # without MPI, so the CPU test starts them the same way directly. accelerate then picks gloo.
    two = _run(["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                str(HERE / "ddp_run.py")], tmp_path / "two.json")
    assert (one["processes"], two["processes"]) == (1, 2)
    assert len(one["loss"]) == len(two["loss"]) == 4  # 7 samples, batches of 5, 2 epochs: 5, 2, 5, 2
    assert two["tokens"] == one["tokens"]  # the diagnostics cover the whole batch, not one shard
    for a, b in zip(one["loss"] + one["grad_norm"], two["loss"] + two["grad_norm"]):
        assert abs(a - b) <= 1e-5 + 1e-4 * abs(a), (one, two)
    assert one["loss"][0] != one["loss"][2]  # the steps moved the model: the trajectories are not trivial


def test_a_whole_pass_under_two_processes_writes_from_process_0_only(tmp_path, clawdesk_home):
    """`clawdesk train --now --launcher accelerate` on the CPU: 2 gloo processes. With nothing to
    train, process 0 releases the other, which exits instead of waiting; with rated turns, the pass
    judges, trains in both, gates and promotes — one run record, one run folder, the samples used
    once, and process 1 trained as many steps as the record holds."""
    from pass_home import make_home

    from clawdesk import locations
    from clawdesk.store import open_store

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}",
           "CLAWDESK_TRAIN_THREADS": "1", "CLAWDESK_N_THREADS": "1"}
    command = [sys.executable, "-m", "clawdesk", "train", "--now", "--launcher", "accelerate", "--num-processes", "2"]

    empty = subprocess.run(command + ["--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert empty.returncode == 0, empty.stderr[-3000:]
    assert json.loads(empty.stdout)["decision"] == "skipped"

    make_home(tmp_path)
    proc = subprocess.run(command + ["--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    store = open_store(locations.db_path())
    try:
        [run] = store.runs()
        assert report["run_id"] == run.id and run.status == report["decision"] in ("promoted", "refused")
        steps = run.metrics["steps"]
        assert run.metrics["summary"]["processes"] == 2 and steps
        assert f"Process 1: trained its shard of run {run.id} ({len(steps)} steps)." in proc.stderr
        assert sorted(p.name for p in locations.runs_dir().iterdir()) == [str(run.id)]
        assert (locations.runs_dir() / str(run.id) / "candidate" / "adapter_config.json").exists()
        used = sorted(s.id for s in store.samples(status="used"))
        assert used == sorted(run.metrics["trained_ids"]) == sorted(s.id for s in store.samples(run_id=run.id))
    finally:
        store.close()
