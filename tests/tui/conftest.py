"""Fixtures for the TUI tests: a one-thread engine and quick greedy settings."""

from __future__ import annotations

import pytest

from clawdesk.engine import Engine
from clawdesk.settings import Settings


@pytest.fixture(scope="session")
def engine(model_path: str):
    """One llama.cpp thread: on a 2-core machine shared with other jobs, the two-thread barrier
    is many times slower than one thread (measured: 0.2 s vs 30 s for a 24-token reply under load)."""
    e = Engine(model_path, n_ctx=2048, n_threads=1)
    yield e
    e.close()


@pytest.fixture
def quick(settings: Settings) -> Settings:
    """Greedy, seeded, short replies: deterministic and fast."""
    return settings.replace(temperature=0.0, seed=0, max_tokens=24, n_threads=1)
