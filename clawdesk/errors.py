"""The few domain errors ClawDesk raises.

Each message is written for the person at the keyboard: it says what is wrong and what to do
about it in one sentence. The CLI prints ``str(error)`` without a traceback (``--debug`` shows
it); anything that is *not* a ``ClawDeskError`` is a bug and is shown in full.
"""

from __future__ import annotations


class ClawDeskError(Exception):
    """Base class: an expected failure with an actionable message."""


class ConfigError(ClawDeskError):
    """The settings file or an environment override is invalid."""


class ModelNotFound(ClawDeskError):
    """A model file or registry name does not resolve to a file on disk."""


class ModelCorrupt(ClawDeskError):
    """A file exists but is not a loadable GGUF model or adapter."""


class StoreError(ClawDeskError):
    """The SQLite store cannot be opened, read or written."""


class StoreLocked(StoreError):
    """Another process holds the database longer than the busy timeout allows."""


class TrainingError(ClawDeskError):
    """A training, judging or export pass cannot proceed."""


class PipelineBusy(ClawDeskError):
    """Another training pipeline holds the lock."""
