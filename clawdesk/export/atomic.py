"""Write a file so that readers see either the old file or the complete new one — never half.

The promotion step renames an exported GGUF into the place the chat loads from; a crash, a
full disk or a kill in the middle of a multi-megabyte write must not leave a truncated model
there (llama.cpp may load a truncated file and fail much later, or not at all). So every
export writes to a temp file in the *same directory* (``os.replace`` is only atomic within one
file system), fsyncs the data, renames, then fsyncs the directory so the rename itself
survives a power cut. On any exception the temp file is removed; after a hard kill it stays
behind as a hidden ``.NAME.*.part`` file that nothing loads.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def fsync_path(path: Path | str, directory: bool = False) -> None:
    """Flush a file's (or a directory entry's) data to disk."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:  # some platforms (Windows) cannot open a directory; the rename still happened
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(out_path: Path | str) -> Iterator[Path]:
    """Yield a temp path next to ``out_path``; on clean exit it becomes ``out_path`` atomically.

    The temp file is created 0600: adapters are distilled from private chats.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".part", dir=out_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, out_path)
        fsync_path(out_path.parent, directory=True)
    except OSError as e:
        # numpy's tofile (used by the gguf writer) reports a full disk as "N requested and M
        # written" without an errno; name the real cause (checked before the temp file frees
        # its space) so callers and users can act on it
        full = e.errno is None and _no_space(out_path.parent)
        tmp.unlink(missing_ok=True)
        if full:
            raise OSError(errno.ENOSPC, f"No space left on device while writing {out_path}") from e
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _no_space(directory: Path) -> bool:
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1024 * 1024


@contextlib.contextmanager
def scratch_file(near: Path | str, suffix: str) -> Iterator[Path]:
    """A temp file next to ``near`` that is removed on exit, whatever happens."""
    near = Path(near)
    near.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{near.name}.", suffix=suffix, dir=near.parent)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)
