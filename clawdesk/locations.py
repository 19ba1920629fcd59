"""Where ClawDesk keeps its files.

``CLAWDESK_HOME`` puts everything (data, config, cache) under one directory — the tests and
anyone who wants a portable install use it. Otherwise the platform's own user dirs are used
(XDG on Linux, ~/Library on macOS). Directories are created 0700: they hold private chats.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "clawdesk"


def _home() -> Path | None:
    value = os.environ.get("CLAWDESK_HOME")
    if not value:
        return None
    home = Path(value).expanduser()
    if not home.exists():
        home.mkdir(parents=True, mode=0o700)
    return home


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        path.chmod(0o700)
    except PermissionError:  # a shared dir the user does not own: leave it alone
        pass
    return path


def data_dir() -> Path:
    """The database, adapters and exports live here."""
    home = _home()
    return _private_dir(home / "data" if home else Path(platformdirs.user_data_dir(APP)))


def config_dir() -> Path:
    """``settings.toml`` lives here."""
    home = _home()
    return _private_dir(home / "config" if home else Path(platformdirs.user_config_dir(APP)))


def cache_dir() -> Path:
    """Rebuildable things: the dequantised torch copy of a GGUF model."""
    home = _home()
    return _private_dir(home / "cache" if home else Path(platformdirs.user_cache_dir(APP)))


def db_path() -> Path:
    return data_dir() / "clawdesk.db"


def settings_path() -> Path:
    return config_dir() / "settings.toml"


def adapters_dir() -> Path:
    return _private_dir(data_dir() / "adapters")


def runs_dir() -> Path:
    return _private_dir(data_dir() / "runs")
