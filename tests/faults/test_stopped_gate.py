"""A night is never lost: a real `clawdesk train --now` stopped *inside the gate* (SIGKILL, and a
Ctrl-C's SIGINT), after training had already marked its samples used.

Before: run #1 stayed 'done' with no gate decision, its samples 'used', and the next pass said "no
ready samples". Now `clawdesk status` says the candidate waits for its gate, and the next pass
either gates that candidate again (resumed) or, when it can no longer be judged fairly (the served
version changed meanwhile), hands its samples back to 'ready' (requeued) — and `status` says which.

How the kill lands inside the gate without a racing sleep: the child is the real command line
(``clawdesk._launch.main`` with ``train --now``) with one function of the gate, ``_kl`` (the KL
check on general prompts, after the objective check has run), wrapped to print a marker and then
wait; the test signals the child only once it has read that marker, so the signal always arrives
while the gate is on the stack."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from fault_helpers import ROOT, child_env, install_version, run_cli

from clawdesk.lifecycle.lock import pipeline_lock
from clawdesk.lifecycle.recover import settle

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TRAIN_ENV = {"CLAWDESK_TRAIN_RANK": "4", "CLAWDESK_TRAIN_ALPHA": "8", "CLAWDESK_TRAIN_BATCH_SIZE": "4",
             "CLAWDESK_TRAIN_HELDOUT_FRACTION": "0", "CLAWDESK_TRAIN_SEED": "0", "CLAWDESK_TRAIN_EPOCHS": "1",
             "CLAWDESK_TRAIN_CONTEXT_TOKENS": "128", "CLAWDESK_MAX_TOKENS": "8",
             # a bare 👎 keeps its RL term (the reference method): every rated turn is trained on, so
             # "its samples are used" means all of them; the fault under test is the stop
             "CLAWDESK_TRAIN_W_UNGUIDED_NEGATIVE": "1"}

GATE_CHILD = """
import signal, sys, time
# As from a terminal: earlier tests in the same pytest process may leave SIGINT ignored, and a
# child inherits that (see test_interrupt.py).
signal.signal(signal.SIGINT, signal.default_int_handler)
from clawdesk import _launch
from clawdesk.train import gate

original = gate._kl
def held(*args, **kwargs):
    print("IN GATE", flush=True)
    time.sleep(3600)  # the test's signal ends this
    return original(*args, **kwargs)
gate._kl = held
sys.argv = ["clawdesk", "train", "--now"]
_launch.main()
"""


def stop_in_gate(sig: signal.Signals, timeout: float = 600) -> tuple[int, str]:
    """Run `clawdesk train --now`, send ``sig`` once it is inside the gate; (exit status, output)."""
    proc = subprocess.Popen([sys.executable, "-c", GATE_CHILD], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=ROOT, env=child_env(**TRAIN_ENV), text=True)
    seen = []
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            seen.append(line)
            if "IN GATE" in line:
                proc.send_signal(sig)
                break
            assert time.monotonic() < deadline, "".join(seen)[-3000:]
        seen.append(proc.stdout.read())
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(seen)
    assert "IN GATE" in out, out[-3000:]
    return code, out


@pytest.fixture
def rated(chat, hf_cache):
    """Three real turns with thumbs (explicit rewards: the judge model is never needed)."""
    ids = []
    for i, (question, up) in enumerate([("Say hi.", True), ("Name a fruit.", False), ("Count to three.", True)]):
        conv = chat.new_conversation()
        turn = chat.send(conv.id, question, seed=i, max_tokens=8)
        (chat.thumbs_up if up else chat.thumbs_down)(turn.assistant.id)
        ids.append(turn.assistant.id)
    return ids


def assert_left_waiting(store, rated) -> int:
    """What a pass stopped in the gate leaves: a trained, undecided run that consumed the samples;
    the lock is free and `clawdesk status` says the candidate waits for its gate."""
    (run,) = store.runs()
    assert run.status == "done" and not run.gate and run.candidate_path
    used = store.samples(status="used", run_id=run.id)
    assert sorted(s.message_id for s in used) == sorted(rated)
    with pipeline_lock():  # the kernel released the stopped holder's flock
        pass
    status = run_cli("status")
    assert status.returncode == 0, status.stderr
    assert f"Waiting:      run #{run.id} trained a candidate" in status.stdout.decode()
    return run.id


def test_sigkill_in_the_gate_then_the_next_pass_resumes_it(store, rated):
    code, out = stop_in_gate(signal.SIGKILL)
    assert code == -signal.SIGKILL, out[-3000:]
    run_id = assert_left_waiting(store, rated)

    nxt = run_cli("train", "--now", timeout=900, **TRAIN_ENV)
    text = nxt.stdout.decode()
    assert nxt.returncode == 0, nxt.stderr.decode()[-3000:]
    assert f"run {run_id} (resumed — its pass was stopped before the gate decided)" in text
    run = store.get_run(run_id)
    assert run.gate and run.status in ("promoted", "refused")  # decided, this time
    assert len(store.runs()) == 1  # gated again, not trained again
    (entry,) = store.pipeline_log(decisions=["resumed"])
    assert entry["run_id"] == run_id and "gated again" in entry["detail"]
    if run.status == "promoted":
        assert store.served_version() == store.adapters()[0].version and store.adapters()[0].run_id == run_id

    status = run_cli("status").stdout.decode()
    assert "Waiting:" not in status
    assert f"resumed: run {run_id} was stopped before its gate decision; gated again:" in status


def test_sigint_in_the_gate_then_a_rollback_requeues_its_samples(store, rated, loras):
    code, out = stop_in_gate(signal.SIGINT)
    assert code == 130, out[-3000:]
    assert "Interrupted — nothing was lost." in out and "Traceback" not in out
    run_id = assert_left_waiting(store, rated)

    # Meanwhile another version became the served one: the candidate (trained from the base model)
    # can no longer be compared fairly, so the next pass hands its samples back instead.
    install_version(store, loras.a, 1)
    resume, done = settle(store, "manual")
    assert resume is None and [(r.run_id, r.action, r.samples) for r in done] == [(run_id, "requeued", 3)]
    assert sorted(s.message_id for s in store.samples(status="ready")) == sorted(rated)
    run = store.get_run(run_id)
    assert run.status == "failed" and "returned to ready" in run.error

    status = run_cli("status").stdout.decode()
    assert "Waiting:" not in status
    assert f"requeued: run {run_id} was stopped before its gate decision" in status
    assert "3 samples went back to ready" in status
