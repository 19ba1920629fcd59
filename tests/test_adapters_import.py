"""``clawdesk adapters import``: an adapter trained elsewhere comes back as a run of this home.

A "GPU server" home trains a real candidate (``clawdesk train --now --train-only`` in its own
process, on a tiny random llama GGUF — tests/tiny/tiny_models.py); its run folder is imported
into a fresh home that serves the same GGUF: checked, exported, verified by llama.cpp, registered,
gated and promoted. Folders that do not fit — another base with the same shapes, another shape, a
damaged file, a GGUF LoRA alone — are refused and change nothing. Real store, llama.cpp, peft."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).parent.parent
TINY = ROOT / "tests" / "tiny"
sys.path.insert(0, str(TINY))
from pass_home import make_home  # noqa: E402

from clawdesk import catalog, locations  # noqa: E402
from clawdesk.cli import cli  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> tuple[Path, Path]:
    """(the server's run folder, the tiny GGUF it trained on): a real training pass in a
    process of its own, as on a GPU server."""
    work = tmp_path_factory.mktemp("server")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CLAWDESK_")},
           "CLAWDESK_HOME": str(work / "home"), "CLAWDESK_TRAIN_THREADS": "1", "CLAWDESK_N_THREADS": "1",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT}{os.pathsep}{TINY}"}
    setup = "import sys; from pathlib import Path; from pass_home import make_home; make_home(Path(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", setup, str(work)], env=env, check=True, timeout=300)
    # judge first (explicit thumbs need no judge model), then train only: what a server runs
    for args in (["judge"], ["train", "--now", "--train-only"]):
        proc = subprocess.run([sys.executable, "-m", "clawdesk", *args], env=env, capture_output=True, text=True,
                              timeout=300, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = work / "home" / "data" / "runs" / "1"
    assert (run_dir / "candidate" / "adapter_config.json").exists(), list((work / "home").rglob("*"))
    return run_dir, work / "tiny-chat" / "tiny-llama.gguf"


def _home_serving(gguf: Path) -> None:
    """This home: the same GGUF file registered and selected, and some rated turns of its own."""
    from clawdesk.store import open_store

    store = open_store(locations.db_path())
    try:
        catalog.add_model(store, gguf, "tiny-chat")
        catalog.use_model(store, "tiny-chat")
    finally:
        store.close()


def _state(store) -> tuple:
    runs_dir = locations.runs_dir()
    return ([r.id for r in store.runs()], [a.version for a in store.adapters()], store.served_version(),
            sorted(p.name for p in runs_dir.iterdir()) if runs_dir.exists() else [])


def test_an_imported_run_is_checked_gated_promoted_and_served(server, store, tmp_path, monkeypatch):
    from clawdesk.engine import Engine

    run_dir, gguf = server
    monkeypatch.setenv("CLAWDESK_N_THREADS", "1")
    monkeypatch.setenv("CLAWDESK_TRAIN_THREADS", "1")
    _home_serving(gguf)
    brought = tmp_path / "from-server"
    shutil.copytree(run_dir, brought)

    registered = CliRunner().invoke(cli, ["adapters", "import", str(brought), "--no-promote", "--json"])
    assert registered.exit_code == 0, registered.output
    first = json.loads(registered.stdout)
    assert first["decision"] == "imported" and first["version"] is None and store.served_version() is None
    run = store.get_run(first["run_id"])
    assert run.status == "imported" and run.settings["trained_elsewhere"]["base_sha256"] == catalog.sha256_of(gguf)
    # servable: llama.cpp loads the exported GGUF LoRA on the base and answers with it
    engine = Engine(str(gguf), n_ctx=256, n_threads=1, adapter_path=first["gguf_path"])
    try:
        assert engine.generate([{"role": "user", "content": "Hi Sam!"}], temperature=0, max_tokens=4).response_token_ids
    finally:
        engine.close()

    gated = CliRunner().invoke(cli, ["adapters", "import", str(brought), "--json"])
    assert gated.exit_code == 0, gated.output
    second = json.loads(gated.stdout)
    run = store.get_run(second["run_id"])
    assert second["decision"] == run.status and run.gate["reasons"] == second["gate"]["reasons"]
    # no samples here: the objective cannot be measured, so the gate refuses and says so
    assert second["decision"] == "refused" and any("no samples to evaluate" in r for r in run.gate["reasons"])
    assert store.served_version() is None

    forced = CliRunner().invoke(cli, ["adapters", "import", str(brought), "--no-gate"])
    assert forced.exit_code == 0, forced.output
    assert "promoted without the gate" in forced.output and "is now served" in forced.output
    served = store.get_adapter(store.served_version())
    assert served.kind == "adapter" and Path(served.gguf_path).exists() and served.run_id == store.runs()[0].id


def test_an_import_is_gated_on_this_homes_samples(server, store, tmp_path, monkeypatch):
    """With rated turns here, the gate measures the objective on them (in-sample) and decides."""
    run_dir, gguf = server
    monkeypatch.setenv("CLAWDESK_N_THREADS", "1")
    monkeypatch.setenv("CLAWDESK_TRAIN_THREADS", "1")
    store.close()
    make_home(tmp_path / "local", name="tiny-local")  # rated turns; registers its own model...
    _home_serving(gguf)  # ...but serves the server's GGUF
    assert CliRunner().invoke(cli, ["judge"]).exit_code == 0
    result = CliRunner().invoke(cli, ["adapters", "import", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    objective = next(r for r in report["gate"]["reasons"] if "objective" in r)
    assert "in-sample" in objective and report["decision"] in ("promoted", "refused")
    assert report["decision"] == ("promoted" if report["gate"]["accepted"] else "refused")


@pytest.mark.parametrize("case", ["other-weights", "other-shapes", "damaged", "gguf-only"])
def test_a_folder_that_does_not_fit_is_refused_and_changes_nothing(case, server, store, tmp_path):
    import dataclasses

    from tiny_models import TINY, build

    run_dir, gguf = server
    brought = tmp_path / "brought"
    shutil.copytree(run_dir, brought)
    if case == "other-weights":  # same architecture and shapes, other weights: the record's hash tells
        other, _ = build(TINY["llama"], tmp_path / "other", seed=7)
        _home_serving(other)
        expected = "trained on another base model"
    elif case == "other-shapes":  # a deeper model, and no record to go by
        deeper = dataclasses.replace(TINY["llama"], config={**TINY["llama"].config, "num_hidden_layers": 3,
                                                           "hidden_size": 96})
        other, _ = build(deeper, tmp_path / "other")
        _home_serving(other)
        (brought / "candidate" / "clawdesk_run.json").unlink()
        expected = "trained for another model"
    elif case == "damaged":
        _home_serving(gguf)
        weights = brought / "candidate" / "adapter_model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        expected = "damaged"
    else:
        _home_serving(gguf)
        shutil.rmtree(brought / "candidate")
        (brought / "adapter.gguf").write_bytes(b"GGUF")
        expected = "not the peft adapter"
    before = _state(store)
    result = CliRunner().invoke(cli, ["adapters", "import", str(brought)])
    assert result.exit_code == 1 and expected in result.output, result.output
    assert _state(store) == before
    assert not [p for p in locations.runs_dir().iterdir() if p.name.startswith(".import")]
