"""The tiny-architecture tests train torch models on one thread: two spin-waiting threads on a
busy 2-core machine are many times slower, and one thread keeps the float sums repeatable."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
