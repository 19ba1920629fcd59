"""The training pass end to end: `clawdesk train --now` on a store of explicit-feedback samples,
`clawdesk runs list|show`, an interrupted pass and a re-run, and learning that accumulates over
a served adapter. Real logged turns on the bundled model, real SQLite, real torch; LoRA rank 4.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from train_samples import add_demo, add_sample, chat, one_torch_thread, tiny  # noqa: F401 (fixtures)

from clawdesk import locations
from clawdesk.cli import cli
from clawdesk.train import train_pass

pytestmark = pytest.mark.slow


def test_train_now_cli_produces_a_candidate_and_a_run_record(chat, monkeypatch):
    for key, value in {"TRAIN_RANK": "4", "TRAIN_ALPHA": "8", "TRAIN_BATCH_SIZE": "2", "TRAIN_W_DEMO": "1.0",
                       "TRAIN_HELDOUT_FRACTION": "0.25", "TRAIN_THREADS": "1", "TRAIN_EPOCHS": "1",
                       "TRAIN_LR": "5e-4"}.items():
        monkeypatch.setenv(f"CLAWDESK_{key}", value)
    store = chat.store
    down = add_sample(chat, "Describe the sea.", reward=-1.0, hints=["Keep it under ten words."], seed=4)
    add_sample(chat, "Say hello.", reward=1.0, seed=5)
    add_sample(chat, "What is a cat?", reward=-1.0, seed=6)
    add_sample(chat, "Name a colour.", reward=1.0, seed=7)
    add_demo(chat, down, "The sea is vast and blue.")

    result = CliRunner().invoke(cli, ["train", "--now", "--train-only"])
    assert result.exit_code == 0, result.output
    assert "Candidate adapter:" in result.output and "held out for the gate" in result.output

    run = store.runs()[0]
    assert run.status == "done" and run.method == "combined"
    candidate = Path(run.candidate_path)
    assert candidate == locations.runs_dir() / str(run.id) / "candidate"
    assert (candidate / "adapter_config.json").exists() and (candidate / "adapter_model.safetensors").exists()
    assert json.loads((candidate / "adapter_config.json").read_text())["r"] == 4
    assert not list(candidate.parent.glob("candidate.tmp*"))
    steps = run.metrics["steps"]
    assert len(steps) == 2  # 4 trained samples (5 minus 1 held-out turn), batches of 2
    for key in ("loss", "reward_mean", "opd_adv_mean", "clip_frac", "kl_old", "grad_norm", "tokens_per_s"):
        assert key in steps[0]
    heldout = set(run.metrics["heldout_ids"])
    trained = set(run.metrics["trained_ids"])
    assert len(heldout) == 1 and not heldout & trained
    statuses = {s.id: s.status for s in store.samples()}
    assert all(statuses[i] == "used" for i in trained) and all(statuses[i] == "ready" for i in heldout)
    assert store.served_version() is None  # the served adapter is untouched until the gate promotes

    listing = CliRunner().invoke(cli, ["runs", "list"])
    assert listing.exit_code == 0 and f"{run.id:>4}" in listing.output and "done" in listing.output
    shown = CliRunner().invoke(cli, ["runs", "show", str(run.id)])
    assert shown.exit_code == 0 and "grad_norm" in shown.output and "tokens_per_s" in shown.output


def test_interrupted_run_leaves_everything_retrainable_and_learning_accumulates(chat, settings):
    store = chat.store
    settings = tiny(settings, train_batch_size=1)
    samples = [add_sample(chat, "Tell me a joke.", reward=-1.0, hints=["Make it about cats."], seed=8),
               add_sample(chat, "Say thanks.", reward=1.0, seed=9)]
    crashed = store.start_run("combined", {}, 2)  # a pass that died without a word (same pid = not alive)

    def interrupt(p):
        if p.phase == "train":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_pass(store, settings, progress=interrupt)
    runs = {r.id: r for r in store.runs()}
    assert runs[crashed.id].status == "failed" and "interrupted" in runs[crashed.id].error
    interrupted = max(runs)
    assert runs[interrupted].status == "failed" and runs[interrupted].error == "interrupted"
    assert all(s.status == "ready" for s in store.samples())
    assert not (locations.runs_dir() / str(interrupted) / "candidate").exists()

    first = train_pass(store, settings)  # re-run: same samples, a fresh record
    assert first.parent_version is None and sorted(first.trained_ids) == sorted(s.id for s in samples)
    assert all(s.status == "used" for s in store.samples())

    version = store.add_adapter(first.candidate_path, run_id=first.run_id).version
    store.set_state("served_adapter", str(version))
    new = [add_sample(chat, "Say thanks again.", reward=1.0, seed=10)]
    second = train_pass(store, settings.replace(train_rank=8), method="rl", samples=new)
    assert second.parent_version == version
    # it continued the served rank-4 adapter instead of starting a fresh rank-8 one
    assert json.loads((Path(second.candidate_path) / "adapter_config.json").read_text())["r"] == 4
    assert store.get_run(second.run_id).settings["parent_version"] == version
