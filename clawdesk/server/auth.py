"""The server's bearer token: made on first start, kept 0600 in the config dir.

Binding 127.0.0.1 keeps other machines out, not other local users or a web page's script that
can reach localhost; a random token in a file only this user can read does. Clients send it as
``Authorization: Bearer <token>`` — what the ``openai`` client sends as its ``api_key``.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from .. import locations
from .errors import ApiError


def token_path() -> Path:
    return locations.config_dir() / "serve-token"


def load_or_create_token(path: Path | None = None) -> str:
    """The token in ``path`` (default: the config dir), created 0600 if missing or empty."""
    path = path or token_path()
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            os.chmod(path, 0o600)  # a copied-in file may have arrived world-readable
            return token
    token = "cd-" + secrets.token_urlsafe(32)
    # O_EXCL-free but created with 0600 from the first byte: never readable by others, even briefly
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def check_bearer(header: str | None, token: str) -> None:
    """Raise a 401 unless ``header`` is ``Bearer <token>`` (compared in constant time)."""
    if not header:
        raise ApiError(401, "Missing bearer token. Send `Authorization: Bearer <token>`; "
                            "`clawdesk serve --show-token` prints it.", "missing_api_key")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "Wrong bearer token; `clawdesk serve --show-token` prints the right one.",
                       "invalid_api_key")
