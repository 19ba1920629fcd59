"""kill -9 of the trainer mid-step and of a promotion mid-export, for real (SIGKILL to a child
process when its progress marker appears). Afterwards the served version is untouched, the lock
is free (flock dies with its holder), and the next run cleans up and completes."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time

import pytest
from fault_helpers import ROOT, child_env, install_version
from train_samples import add_sample

from clawdesk import locations
from clawdesk.chat import open_engine
from clawdesk.lifecycle.lock import pipeline_lock
from clawdesk.lifecycle.promote import promote, sweep
from clawdesk.train import train_pass

pytestmark = [pytest.mark.faults, pytest.mark.slow]

# A bare 👎 keeps its RL term here (the reference method), so every rated sample has a term and
# "what the dead run left" is every sample: the fault under test is the kill, not the weighing.
TRAIN_ENV = {"CLAWDESK_TRAIN_RANK": "4", "CLAWDESK_TRAIN_ALPHA": "8", "CLAWDESK_TRAIN_BATCH_SIZE": "1",
             "CLAWDESK_TRAIN_HELDOUT_FRACTION": "0", "CLAWDESK_TRAIN_SEED": "0", "CLAWDESK_TRAIN_EPOCHS": "1",
             "CLAWDESK_TRAIN_W_UNGUIDED_NEGATIVE": "1"}

TRAIN_CHILD = """
from clawdesk import locations
from clawdesk.lifecycle.lock import pipeline_lock
from clawdesk.settings import load_settings
from clawdesk.store import open_store
from clawdesk.train import train_pass

store = open_store(locations.db_path())
with pipeline_lock():
    train_pass(store, load_settings(), progress=lambda p: print("PROGRESS", p.phase, p.done, flush=True))
print("FINISHED", flush=True)
"""

# The export is slowed down only so that the kill lands inside it: the GGUF header and metadata
# are already in the temp file when the tensors start to be written.
EXPORT_CHILD = """
import sys, time
import gguf
from clawdesk import locations
from clawdesk.settings import load_settings
from clawdesk.store import open_store
from clawdesk.lifecycle.lock import pipeline_lock
from clawdesk.lifecycle.promote import promote

original = gguf.GGUFWriter.write_tensors_to_file
def slow(self, *a, **k):
    print("EXPORTING", flush=True)
    time.sleep(60)
    return original(self, *a, **k)
gguf.GGUFWriter.write_tensors_to_file = slow
store = open_store(locations.db_path())
with pipeline_lock():
    promote(store, load_settings(), __import__("pathlib").Path(sys.argv[1]), sys.argv[2], [])
print("FINISHED", flush=True)
"""


def kill_at(args: list[str], marker: str, env: dict[str, str], timeout: float = 300) -> tuple[int, str]:
    """Start the child, SIGKILL it as soon as ``marker`` is printed; (pid, output so far)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, env=env, text=True)
    seen = []
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith(marker):
                proc.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "".join(seen)[-3000:]
        assert proc.wait(timeout=30) == -signal.SIGKILL, "".join(seen)[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.pid, "".join(seen)


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_trainer_killed_mid_step(chat, store, quick, hf_cache, loras):
    served = install_version(store, loras.a, 1)
    served_sha = sha(served)
    samples = [add_sample(chat, q, reward=r, seed=i, max_tokens=8)
               for i, (q, r) in enumerate([("Say hi.", 1.0), ("Name a fruit.", -1.0), ("Count to three.", 1.0)])]

    pid, out = kill_at([sys.executable, "-c", TRAIN_CHILD], "PROGRESS train 1", child_env(**TRAIN_ENV))
    assert "FINISHED" not in out

    run = store.runs()[0]
    assert run.status == "running" and run.pid == pid  # what the dead process left
    assert all(s.status == "ready" for s in store.samples())  # nothing consumed
    assert not (locations.runs_dir() / str(run.id) / "candidate").exists()
    with pipeline_lock():  # no stale lock: the kernel released the dead holder's flock
        pass
    assert store.served_version() == 1 and sha(served) == served_sha
    engine = open_engine(store, quick)
    try:
        assert engine.adapter_version == 1 and not engine.fallback_note
    finally:
        engine.close()

    settings = quick.replace(train_rank=4, train_alpha=8.0, train_batch_size=1, train_epochs=1,
                             train_heldout_fraction=0.0, train_w_unguided_negative=1.0)
    result = train_pass(store, settings)  # the next run: marks the dead record failed, trains again
    dead = store.get_run(run.id)
    assert dead.status == "failed" and "interrupted" in dead.error
    assert store.get_run(result.run_id).status == "done"
    assert sorted(result.trained_ids) == sorted(s.id for s in samples)
    assert result.parent_version == 1  # it resumed from the served adapter, not from the dead run


def test_promotion_killed_mid_export(store, quick, loras, model_path):
    served = install_version(store, loras.a, 1)
    served_sha = sha(served)

    kill_at([sys.executable, "-c", EXPORT_CHILD, str(loras.b.peft), model_path], "EXPORTING", child_env())

    root = locations.adapters_dir()
    assert store.served_version() == 1 and [a.version for a in store.adapters()] == [1]
    assert sha(served) == served_sha
    assert not (root / "v2").exists()
    staged = root / ".staging-v2"
    assert staged.is_dir()  # what the kill left: hidden, never loaded...
    assert not (staged / "adapter.gguf").exists()  # ...and no half-written file under the final name
    assert [p.name for p in staged.iterdir() if p.name.endswith(".part")]
    with pipeline_lock():
        pass
    engine = open_engine(store, quick)
    try:
        assert engine.adapter_version == 1 and not engine.fallback_note
    finally:
        engine.close()

    assert sweep(store) == [".staging-v2"]  # the next pipeline run starts by clearing it
    adapter = promote(store, quick, loras.b.peft, model_path, [])
    assert adapter.version == 2 and store.served_version() == 2
    assert sorted(p.name for p in root.iterdir()) == ["v1", "v2"]
