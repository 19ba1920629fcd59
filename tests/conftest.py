"""Shared fixtures. Every test runs against a fresh ``CLAWDESK_HOME`` (tmp dir), a real SQLite
file and — where a model is needed — the real bundled SmolLM2-135M through real llama.cpp.

Test tiers are applied here, not remembered by each author: a test that uses a model fixture
(directly or through another fixture) is marked ``model``; a test of a benchmark script is
marked ``bench``. ``make test-fast`` runs ``-m "not model and not bench"``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clawdesk import catalog
from clawdesk.settings import Settings, load_settings
from clawdesk.store import Store, open_store


# ``make test`` runs one pytest-xdist worker per core. Each worker then gets its share of the
# cores: two workers that each start a thread per core would oversubscribe the machine, and torch
# slows down badly when its threads wait on each other. Set before anything imports torch.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
THREADS = max(1, (os.cpu_count() or 1) // WORKERS) if WORKERS > 1 else 0  # 0 = the settings' default
if THREADS:
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

# Fixtures whose use means the test loads the bundled model (llama.cpp or its torch copy).
MODEL_FIXTURES = frozenset({"model_path", "engine", "shared_hf", "hf_cache"})


# The slowest files of a clean-clone run (``make test`` prints the slowest tests), longest first.
LONG_FIRST = ("test_lifecycle.py", "test_learn_now_pass.py", "test_stopped_gate.py", "test_bench_smoke.py",
              "test_anti_collapse.py", "test_export.py", "test_bench_grid.py", "test_privacy.py",
              "test_train_context.py", "test_accelerate_ddp.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tiers. ``fixturenames`` is the transitive closure, so a fixture that builds on
    ``engine`` (a chat service, a trained adapter) marks its tests too."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)
        if item.path.name.startswith("test_bench"):
            item.add_marker(pytest.mark.bench)
    # The longest files first: ``--dist loadfile --no-loadscope-reorder`` hands files out in this
    # order, and a long file that comes last keeps one worker busy while the other sits idle
    # (docs/benchmarks.md). A stable sort: the tests of a file, and the other files, keep their order.
    items.sort(key=lambda item: LONG_FIRST.index(item.path.name) if item.path.name in LONG_FIRST else len(LONG_FIRST))


@pytest.fixture(autouse=True)
def clawdesk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("CLAWDESK_HOME", str(home))
    for key in list(os.environ):
        if key.startswith("CLAWDESK_") and key != "CLAWDESK_HOME":
            monkeypatch.delenv(key)
    # Implicit rewards stay on, as these tests were written: measuring the judge before its first
    # implicit reward takes minutes on the bundled model, and tests/judge/test_judge_accuracy.py
    # tests that check (and what it switches off) on its own.
    monkeypatch.setenv("CLAWDESK_JUDGE_MIN_ACCURACY", "0")
    if THREADS:
        monkeypatch.setenv("CLAWDESK_N_THREADS", str(THREADS))
        monkeypatch.setenv("CLAWDESK_TRAIN_THREADS", str(THREADS))
    return home


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def store(clawdesk_home: Path) -> Store:
    from clawdesk import locations

    s = open_store(locations.db_path())
    yield s
    s.close()


@pytest.fixture(scope="session")
def model_path() -> str:
    entry = next(m for m in catalog.bundled_models() if m.name == catalog.DEFAULT_MODEL)
    assert entry.path and Path(entry.path).exists(), "the bundled model is not installed (make install)"
    return entry.path


@pytest.fixture(scope="session")
def engine(model_path: str):
    """One real llama.cpp engine for the whole session (loading costs ~1 s)."""
    from clawdesk.engine import Engine

    e = Engine(model_path, n_ctx=2048, n_threads=THREADS or 2)
    yield e
    e.close()


@pytest.fixture(scope="session")
def shared_hf(tmp_path_factory: pytest.TempPathFactory, model_path: str) -> Path:
    """The dequantised torch copy of the bundled GGUF, built once per session (~20 s each time
    it is built) and linked into each test's home by ``hf_cache``."""
    from clawdesk.engine.torch_model import hf_dir_for

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLAWDESK_HOME", str(tmp_path_factory.mktemp("hfhome")))
        return hf_dir_for(model_path)


@pytest.fixture
def hf_cache(shared_hf: Path, clawdesk_home: Path) -> Path:
    """Make this test's CLAWDESK_HOME (and its subprocesses) find the session's torch copy, which
    is where ``hf_dir_for`` looks first."""
    from clawdesk import locations

    target = locations.cache_dir() / "hf" / shared_hf.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(shared_hf, target_is_directory=True)
    return target
