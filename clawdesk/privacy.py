"""Privacy: forgetting, private files, backups that leave nothing behind.

ClawDesk keeps private conversations, and adapters distilled from them, on one machine. Three
promises, each enforced here or tested end to end (tests/test_privacy.py):

* **Nothing leaves the machine.** There is no network code in ClawDesk; llama.cpp, torch and
  peft load local files only. The test suite runs a chat turn, a judge pass and a training pass
  with every Internet socket blocked and asserts that nothing even tried to connect.
* **Files are private.** ``private_files()`` sets the process umask to 077 (the CLI calls it first
  thing), so everything ClawDesk writes — database, adapters, run folders, exports, backups, the
  dequantised model cache — is created 0600 / 0700 without each writer having to remember.
* **Forget means forget.** ``forget`` deletes a conversation's messages, feedback and samples in
  one transaction, then scrubs the database files (``Store.scrub``: zeroed free pages, merged
  full-text index, checkpointed WAL, VACUUM) so the text is no longer in the file's bytes. An
  adapter cannot unlearn, so every version trained on a forgotten turn — and every version that
  started from its weights — is flagged; ``clean_version`` is where to roll back to, and
  ``rollback_to_clean`` does it and re-queues the other turns those versions used, so that the
  next ``clawdesk train --now`` learns them again without the forgotten ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .store import Store


@dataclass
class ForgetReport:
    """What ``clawdesk forget`` removed, and which adapter versions had learned from it."""

    conversations: int = 0
    messages: int = 0
    feedback: int = 0
    samples: int = 0
    flagged_versions: list[int] = field(default_factory=list)  # newly marked trained_on_forgotten
    served_flagged: bool = False  # the version being served now learned from forgotten turns
    clean_version: int | None = None  # newest ancestor of the served version that did not (None = base)


def private_files() -> int:
    """Make every file this process creates private to the user (returns the old umask)."""
    return os.umask(0o077)


def forget(store: Store, conversation_ids: list[int] | None = None) -> ForgetReport:
    """Delete the conversations (``None`` = all of them) for real and flag what learned from them."""
    ids = store.conversation_ids() if conversation_ids is None else list(dict.fromkeys(conversation_ids))
    counts = store.forget_conversations(ids)
    report = ForgetReport(conversations=counts["conversations"], messages=counts["messages"],
                          feedback=counts["feedback"], samples=counts["samples"])
    report.flagged_versions = store.flag_trained_on(counts["message_ids"])
    store.scrub()
    report.served_flagged, report.clean_version = served_taint(store)
    return report


def served_taint(store: Store) -> tuple[bool, int | None]:
    """(is the served version trained on forgotten data, newest clean ancestor or None = base)."""
    version = store.served_version()
    flagged = False
    while version is not None:
        adapter = store.get_adapter(version)
        if not adapter.trained_on_forgotten:
            return flagged, version
        flagged = True
        version = adapter.parent_version
    return flagged, None


def rollback_to_clean(store: Store) -> tuple[int | None, int]:
    """Serve the newest version not trained on forgotten data (or the base model) and put the
    samples that the flagged versions were trained on back in the queue ('used' → 'ready'), so
    the next training pass relearns them. Returns (version now served, samples re-queued)."""
    flagged, clean = served_taint(store)
    if not flagged:
        return store.served_version(), 0
    runs = []
    version = store.served_version()
    while version is not None and version != clean:
        adapter = store.get_adapter(version)
        if adapter.run_id is not None:
            runs.append(adapter.run_id)
        version = adapter.parent_version
    store.set_served(clean)
    return clean, store.requeue_samples(runs)
