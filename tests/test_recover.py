"""Settling the candidates a stopped pass left (clawdesk/lifecycle/recover.py), on a real SQLite
store without a model: which orphan is resumed, which is requeued and why, what the nightly
scheduler and `clawdesk status` make of it. The real kill inside the gate, and the resumed gate,
are tests/faults/test_stopped_gate.py."""

from __future__ import annotations

import datetime as dt
import json

from click.testing import CliRunner

from clawdesk import scheduler
from clawdesk.cli import cli
from clawdesk.lifecycle.recover import orphans, settle
from clawdesk.records import Sample


def consumed_run(store, n: int = 3, candidate: str = "", parent: int | None = None):
    """A run that trained on ``n`` samples and stopped before its decision (status 'done')."""
    conv = store.new_conversation()
    ids = []
    for i in range(n):
        u = store.add_message(conv.id, "user", f"q{i}")
        a = store.add_message(conv.id, "assistant", f"a{i}", parent_id=u.id, prompt_token_ids=[1], response_token_ids=[2])
        ids.append(store.upsert_sample(Sample(0, a.id, conv.id, [1], [2], 1.0, "explicit", "ready")).id)
    run = store.start_run("combined", {"parent_version": parent}, n)
    store.update_run(run.id, status="done", candidate_path=candidate,
                     metrics={"trained_ids": ids, "heldout_ids": [], "summary": {"backend": "lora"}})
    store.set_sample_status(ids, "used", run_id=run.id)
    return store.get_run(run.id), ids


def test_a_candidate_that_is_gone_is_requeued_and_status_says_so(store, settings):
    run, ids = consumed_run(store)
    assert [r.id for r in orphans(store)] == [run.id]
    nightly = settings.replace(train_min_samples=100, schedule_require_ac=False, schedule_idle_minutes=0)
    go, why = scheduler.should_run(store, nightly, dt.datetime.now(dt.timezone.utc))
    assert go and f"run {run.id}'s candidate was never gated" in why  # due although no new samples
    info = json.loads(CliRunner().invoke(cli, ["status", "--json"]).output)
    assert info["waiting"] == [run.id] and info["recovered"] is None

    resume, done = settle(store, "manual")
    assert resume is None and [(r.action, r.samples) for r in done] == [("requeued", 3)]
    assert "its candidate adapter is gone" in done[0].detail
    assert sorted(s.id for s in store.samples(status="ready")) == sorted(ids)
    assert store.get_run(run.id).status == "failed" and orphans(store) == []
    out = CliRunner().invoke(cli, ["status"]).output
    assert "Waiting:" not in out and "requeued: run 1 was stopped before its gate decision" in out


def test_the_newest_fair_candidate_is_resumed_and_older_ones_requeued(store, tmp_path):
    cand = tmp_path / "candidate"
    cand.mkdir()
    (cand / "adapter_config.json").write_text("{}")
    old, old_ids = consumed_run(store, 2, str(cand))
    new, new_ids = consumed_run(store, 2, str(cand))
    resume, done = settle(store, "schedule")
    assert resume is not None and resume.run_id == new.id and resume.trained_ids == new_ids
    assert resume.candidate_path == str(cand) and resume.parent_version is None and resume.backend == "lora"
    assert [(r.run_id, r.action) for r in done] == [(old.id, "requeued")]
    assert "a newer stopped candidate is gated instead" in done[0].detail
    assert {s.id for s in store.samples(status="ready")} == set(old_ids)
    assert store.get_run(new.id).status == "done"  # left for the gate


def test_a_changed_served_version_or_a_forgotten_sample_blocks_the_resume(store, tmp_path):
    cand = tmp_path / "candidate"
    cand.mkdir()
    (cand / "adapter_config.json").write_text("{}")
    run, ids = consumed_run(store, 2, str(cand))
    store.delete_samples(store.get_sample(ids[0]).message_id)  # forgotten meanwhile
    resume, done = settle(store, "manual")
    assert resume is None and "forgotten or handed back" in done[0].detail and done[0].samples == 1

    run, ids = consumed_run(store, 2, str(cand), parent=None)
    store.record_promotion(7, str(tmp_path), str(tmp_path / "a.gguf"), "adapter", None, None, {}, [])
    resume, done = settle(store, "manual")
    assert resume is None and "trained from the base model but version 7 is served now" in done[0].detail


def test_a_run_killed_after_its_decision_is_only_completed(store, tmp_path):
    promoted, _ = consumed_run(store, 1)
    store.record_promotion(1, str(tmp_path), str(tmp_path / "a.gguf"), "adapter", None, promoted.id, {}, [])
    refused, refused_ids = consumed_run(store, 1)
    store.update_run(refused.id, gate={"accepted": False, "reasons": ["FAIL  x"]})
    resume, done = settle(store, "manual")
    assert resume is None and sorted((r.run_id, r.action) for r in done) == [(promoted.id, "finished"),
                                                                             (refused.id, "finished")]
    assert store.get_run(promoted.id).status == "promoted" and store.get_run(refused.id).status == "refused"
    assert store.get_sample(refused_ids[0]).status == "used"  # a decided run keeps its samples, as before
