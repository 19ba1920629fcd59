"""A full disk during an export, on a real size-limited file system (a small tmpfs; mounting
needs root, which the test machine and CI have — elsewhere the test is skipped and says why).
The write fails with ENOSPC; the served version is intact and no partial file is left in place."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from pathlib import Path

import pytest
from fault_helpers import install_version, run_cli

from clawdesk import locations
from clawdesk.lifecycle.promote import promote
from clawdesk.store import open_store

pytestmark = pytest.mark.faults


@contextlib.contextmanager
def tmpfs(path: Path, size_bytes: int):
    path.mkdir(parents=True, exist_ok=True)
    kib = max(8, size_bytes // 1024)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=0700", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a size-limited tmpfs here ({proc.stderr.strip() or 'not permitted'}); "
                    f"run as root to inject a real full disk")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_disk_full_while_exporting_a_new_version(store, quick, loras, model_path):
    root = locations.adapters_dir()
    # room for the served version and a copy of the candidate, not for the exported GGUF
    size = du(loras.a.peft) + loras.a.gguf.stat().st_size + du(loras.b.peft) + 256 * 1024
    with tmpfs(root, size):
        served = install_version(store, loras.a, 1)
        served_bytes = served.read_bytes()
        with pytest.raises(OSError) as info:
            promote(store, quick, loras.b.peft, model_path, [])
        assert info.value.errno == errno.ENOSPC
        assert store.served_version() == 1 and [a.version for a in store.adapters()] == [1]
        assert served.read_bytes() == served_bytes
        assert sorted(p.name for p in root.iterdir()) == ["v1"]  # no v2, no staging dir, no .part file


def test_disk_full_during_clawdesk_export(store, tmp_path):
    conv = store.new_conversation(name="big")
    for i in range(40):
        store.add_message(conv.id, "user", f"message {i} " + "x" * 4000)
    store.close()
    target = tmp_path / "small"
    with tmpfs(target, 64 * 1024):
        proc = run_cli("export", "-o", str(target / "backup.jsonl"))
        err = proc.stderr.decode()
        assert proc.returncode == 1 and "Traceback" not in err, err
        assert "full" in err and "nothing was written" in err
        assert os.listdir(target) == []  # neither the file nor its temp file
    s = open_store(locations.db_path())
    try:
        assert s.counts()["messages"] == 40
    finally:
        s.close()
