"""Is this file a GGUF llama.cpp can load? Cheap structural checks before llama.cpp sees it.

They live with the engine, not the model catalog, so the engine stays a leaf: it depends on
errors and records only, never on the catalog or the store. The catalog, the exporter, the
promotion step and ``clawdesk doctor`` call the same checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelCorrupt, ModelNotFound

GGUF_MAGIC = b"GGUF"


def check_gguf(path: Path | str) -> Any:
    """Magic bytes and a readable header whose tensors fit inside the file (catches truncated
    copies, which llama.cpp may not). Returns the ``gguf.GGUFReader`` it built, for callers that
    read the file anyway (parsing a header with a 49k-token vocabulary takes seconds)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except FileNotFoundError:
        raise ModelNotFound(f"No model file at {path}.") from None
    except OSError as e:
        raise ModelCorrupt(f"Cannot read {path}: {e.strerror}.") from None
    if magic != GGUF_MAGIC:
        raise ModelCorrupt(f"{path} is not a GGUF file (bad magic bytes); replace it with a valid .gguf.")
    try:
        import gguf  # local import: heavy-ish, only needed here

        reader = gguf.GGUFReader(str(path))
        size = path.stat().st_size
        for t in reader.tensors:
            if t.data_offset + t.n_bytes > size:
                raise ValueError("tensor data past end of file")
    except Exception as e:  # noqa: BLE001 — any parse failure means "not usable"
        raise ModelCorrupt(f"{path} is damaged or truncated ({e}); replace it or pick another model.") from None
    return reader


_checked: set[tuple[str, int, int]] = set()


def ensure_gguf(path: Path | str) -> None:
    """``check_gguf`` once per file version (path, size, mtime): parsing a big vocabulary header
    costs seconds, and the engine reloads the same files on every swap."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ModelNotFound(f"No model file at {p}.") from None
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _checked:
        check_gguf(p)
        _checked.add(key)
