"""Export one conversation to a file a person can keep: Markdown (the branch on screen, readable)
or JSON (every branch with its feedback, for tools).

Files go to ``<data dir>/exports`` and are created 0600 before anything is written: a
transcript is as private as the database it came from.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import locations
from ..records import Feedback, Message
from ..store import Store


def exports_dir() -> Path:
    path = locations.data_dir() / "exports"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def markdown(store: Store, conversation_id: int, branch: list[Message]) -> str:
    """The branch as a readable transcript; feedback shown as a short note under each reply."""
    conv = store.get_conversation(conversation_id)
    lines = [f"# {conv.name}", ""]
    if conv.system_prompt:
        lines += ["> **System:** " + conv.system_prompt.replace("\n", "\n> "), ""]
    for m in branch:
        who = "You" if m.role == "user" else "Assistant" if m.role == "assistant" else m.role.title()
        lines += [f"## {who}", "", m.content.rstrip(), ""]
        notes = _notes(m, store.feedback_for(m.id))
        if notes:
            lines += [f"*{notes}*", ""]
    return "\n".join(lines).rstrip() + "\n"


def as_json(store: Store, conversation_id: int) -> dict[str, Any]:
    """The whole tree (all branches) with feedback — the same shape as ``clawdesk logs export``."""
    conv = store.get_conversation(conversation_id)
    msgs = []
    for m in store.messages(conversation_id):
        d = m.__dict__.copy()
        d["feedback"] = [f.__dict__ for f in store.feedback_for(m.id)]
        msgs.append(d)
    return {**conv.__dict__, "messages": msgs}


def export(store: Store, conversation_id: int, fmt: str, branch: list[Message] | None = None) -> Path:
    """Write the conversation as ``fmt`` ('md' or 'json') and return the new file's path."""
    conv = store.get_conversation(conversation_id)
    if fmt == "md":
        text = markdown(store, conversation_id, branch if branch is not None else _latest_branch(store, conversation_id))
    elif fmt == "json":
        text = json.dumps(as_json(store, conversation_id), indent=2, ensure_ascii=False) + "\n"
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    slug = re.sub(r"[^a-z0-9]+", "-", conv.name.lower())[:40].strip("-") or "conversation"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = exports_dir() / f"{conv.id}-{slug}-{stamp}.{fmt}"
    n = 1
    while path.exists():
        n += 1
        path = path.with_name(f"{conv.id}-{slug}-{stamp}-{n}.{fmt}")
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def _latest_branch(store: Store, conversation_id: int) -> list[Message]:
    leaf = store.latest_leaf(conversation_id)
    return store.path_to(leaf.id) if leaf else []


def _notes(m: Message, feedback: list[Feedback]) -> str:
    notes = []
    for f in feedback:
        if f.kind == "thumbs_up":
            notes.append("👍")
        elif f.kind == "thumbs_down":
            notes.append("👎" + (f" ({f.reason})" if f.reason else "") + (f": {f.comment}" if f.comment else ""))
        elif f.kind == "correction":
            notes.append(f"corrected to: {f.correction}")
        elif f.kind in ("stop", "regenerate", "exclude"):
            notes.append({"stop": "stopped", "regenerate": "regenerated", "exclude": "excluded from learning"}[f.kind])
    return " · ".join(notes)
