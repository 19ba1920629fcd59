"""One pipeline at a time, with a lock that survives crashes.

``flock`` on a file in the data dir: the kernel drops the lock when the holder exits for any
reason (kill -9 included), so there is never a stale lock to clean up by hand. The holder's pid
is written into the file only to tell the user who holds it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import locations
from ..errors import PipelineBusy


def lock_path() -> Path:
    return locations.data_dir() / "pipeline.lock"


@contextmanager
def pipeline_lock(path: Path | None = None) -> Iterator[None]:
    path = path or lock_path()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise PipelineBusy(f"A training pipeline is already running (pid {holder}); wait for it to "
                               f"finish — `clawdesk status` shows its progress.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
