"""ChatService: conversations, turns, regeneration and feedback (see package docstring)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import catalog
from ..engine import Engine
from ..errors import ModelCorrupt, ModelNotFound, StoreError
from ..memory import Memory, render
from ..records import Conversation, Feedback, Generation, MemoryNote, Message
from ..settings import Settings
from ..store import Store


log = logging.getLogger("clawdesk.chat")


@dataclass
class Turn:
    user: Message
    assistant: Message
    generation: Generation


def served_adapter(store: Store) -> tuple[str | None, int | None, str | None]:
    """(adapter gguf, version, merged model gguf) of the version currently promoted, if any."""
    return _version_files(store, store.served_version())


def open_engine(store: Store, settings: Settings, model: str | None = None, with_adapter: bool = True) -> Engine:
    """Load the chat model (and the served adapter) named by the settings and the store.

    A served version whose files are missing or damaged must not keep the user from chatting:
    we fall back along its parents to the newest version that loads, else to the base model, and
    say so in ``engine.fallback_note`` (the UI shows it; ``clawdesk adapters`` can roll back)."""
    entry = catalog.resolve(store, model) if model else catalog.current_model(store, settings)
    adapter_path, version, merged = served_adapter(store) if with_adapter else (None, None, None)
    note = ""
    while True:
        try:
            path = merged if merged else entry.path
            engine = Engine(path, n_ctx=settings.n_ctx, n_threads=settings.n_threads,
                            adapter_path=adapter_path, adapter_version=version)
            break
        except (ModelCorrupt, ModelNotFound) as e:
            if version is None:
                raise
            log.warning("served version %s cannot be loaded: %s", version, e)
            broken = version
            parent = store.get_adapter(version).parent_version
            adapter_path, version, merged = _version_files(store, parent)
            note = (f"Adapter version {broken} could not be loaded ({e}); serving "
                    f"{'version %d' % version if version else 'the base model'} instead.")
    engine.model_name = entry.name
    engine.fallback_note = note
    return engine


def _version_files(store: Store, version: int | None) -> tuple[str | None, int | None, str | None]:
    if version is None:
        return None, None, None
    adapter = store.get_adapter(version)
    if adapter.kind == "merged":
        return None, version, adapter.gguf_path
    return adapter.gguf_path or None, version, None


class ChatService:
    def __init__(self, store: Store, engine: Engine | None, settings: Settings) -> None:
        """``engine`` may be None while the chat's model is still loading: feedback and
        conversation edits need no model; a turn before it is set raises ``ModelNotFound``."""
        self.store, self.engine, self.settings = store, engine, settings
        # The preference memory: wishes read out of feedback at once, and put into the next prompt.
        self.memory = Memory(store, settings)

    def _loaded(self) -> Engine:
        if self.engine is None:
            raise ModelNotFound("No model is loaded yet; wait for it to load, or pick one (F4 in the chat).")
        return self.engine

    @property
    def model_name(self) -> str:
        """The registry name of the engine's model (what the judge and trainer resolve later)."""
        engine = self._loaded()
        if engine.model_name:
            return engine.model_name
        here = Path(engine.model_path).resolve()
        for entry in catalog.all_models(self.store):
            if entry.path and Path(entry.path).resolve() == here:
                return entry.name
        return str(here)  # an unregistered file: its path resolves as a model too

    # --- conversations --------------------------------------------------------------------------
    def new_conversation(self, name: str = "New conversation", system_prompt: str | None = None) -> Conversation:
        prompt = self.settings.system_prompt if system_prompt is None else system_prompt
        return self.store.new_conversation(name=name, system_prompt=prompt, model=self.model_name)

    def context(self, conversation: Conversation, leaf_id: int | None,
                note: MemoryNote | None = None) -> list[dict[str, str]]:
        """The chat messages the model sees for a reply below ``leaf_id``, with the preference
        memory's ``note`` for that reply placed (``memory.render``: earlier turns keep the tokens
        they had, so the KV-prefix reuse holds)."""
        path = self.store.path_to(leaf_id) if leaf_id is not None else []
        notes = self.store.notes_of([m.id for m in path if m.role == "assistant"]) if note is not None else {}
        return render(conversation.system_prompt, path, notes, note)

    # --- turns ----------------------------------------------------------------------------------
    def send(self, conversation_id: int, text: str, parent_id: int | None = None,
             on_text: Callable[[str], None] | None = None, cancel: threading.Event | None = None,
             **sampling: float) -> Turn:
        """Log the user's message, generate and log the reply. ``parent_id`` defaults to the
        newest message of the conversation (continue where it left off)."""
        conv = self.store.get_conversation(conversation_id)
        if parent_id is None:
            leaf = self.store.latest_leaf(conversation_id)
            parent_id = leaf.id if leaf else None
        if not self.store.children(None, conversation_id) and conv.name == "New conversation":
            self.store.update_conversation(conversation_id, name=_title(text))
        user = self.store.add_message(conversation_id, "user", text, parent_id=parent_id)
        after_reply = parent_id is not None and self.store.get_message(parent_id).role == "assistant"
        self.memory.learn_from_message(user, after_reply)  # "too long, under 30 words please" counts for this reply
        return self._reply(conv, user, on_text, cancel, **sampling)

    def append(self, conversation_id: int, role: str, content: str, parent_id: int | None) -> Message:
        """Log a message the model did not write below ``parent_id``: an API client's user message,
        a tool result, or an earlier assistant reply the client holds and the store does not."""
        conv = self.store.get_conversation(conversation_id)
        if role == "user" and parent_id is None and conv.name == "New conversation":
            self.store.update_conversation(conversation_id, name=_title(content))
        return self.store.add_message(conversation_id, role, content, parent_id=parent_id)

    def reply(self, parent_id: int, on_text: Callable[[str], None] | None = None,
              cancel: threading.Event | None = None, **sampling: Any) -> Turn:
        """Generate and log the reply to a message already logged (a user message or a tool
        result): the path for a client that sends the history itself (``clawdesk serve``).
        ``sampling`` may also carry ``stop`` and ``tools`` through to the engine."""
        parent = self.store.get_message(parent_id)
        return self._reply(self.store.get_conversation(parent.conversation_id), parent, on_text, cancel, **sampling)

    def regenerate(self, assistant_id: int, on_text: Callable[[str], None] | None = None,
                   cancel: threading.Event | None = None, **sampling: float) -> Turn:
        """A new sibling answer to the same user message; the old one stays and is marked
        'regenerate' (negative evidence, docs/method.md §1)."""
        old = self.store.get_message(assistant_id)
        if old.role != "assistant" or old.parent_id is None:
            raise StoreError(f"Message {assistant_id} is not an assistant reply; only replies can be regenerated.")
        self.store.add_feedback(assistant_id, "regenerate")
        conv = self.store.get_conversation(old.conversation_id)
        user = self.store.get_message(old.parent_id)
        return self._reply(conv, user, on_text, cancel, **sampling)

    def _reply(self, conv: Conversation, user: Message, on_text: Callable[[str], None] | None,
               cancel: threading.Event | None, **sampling: Any) -> Turn:
        s = self.settings
        params = {"temperature": s.temperature, "top_p": s.top_p, "top_k": s.top_k,
                  "repeat_penalty": s.repeat_penalty, "max_tokens": s.max_tokens, "seed": s.seed}
        params.update(sampling)
        engine = self._loaded()
        note = self.memory.note()
        literals = self.memory.literals() if not params.get("tools") else None
        if literals:
            params.update(literals.generate_args())
        gen = engine.generate(self.context(conv, user.id, note), on_text=on_text, cancel=cancel, **params)
        assistant = self.store.add_message(
            conv.id, "assistant", gen.text, parent_id=user.id,
            prompt_token_ids=gen.prompt_token_ids, response_token_ids=gen.response_token_ids,
            model=self.model_name, adapter_version=engine.adapter_version, sampling=gen.sampling,
            finish_reason=gen.finish_reason, prompt_tokens=len(gen.prompt_token_ids),
            response_tokens=len(gen.response_token_ids), ttft_ms=gen.ttft_s * 1000,
            duration_ms=gen.duration_s * 1000, truncated_tokens=gen.truncated_tokens)
        self.memory.record(assistant.id, note)
        if gen.finish_reason == "cancelled":
            self.store.add_feedback(assistant.id, "stop")
        return Turn(user, assistant, gen)

    # --- feedback -------------------------------------------------------------------------------
    def thumbs_up(self, message_id: int) -> Feedback:
        return self.store.add_feedback(message_id, "thumbs_up")

    def thumbs_down(self, message_id: int, reason: str = "", comment: str = "") -> Feedback:
        fb = self.store.add_feedback(message_id, "thumbs_down", reason=reason, comment=comment)
        self.memory.learn_from_feedback(fb)
        return fb

    def correct(self, message_id: int, corrected: str) -> Feedback:
        fb = self.store.add_feedback(message_id, "correction", correction=corrected)
        self.memory.learn_from_feedback(fb)
        return fb

    def comment(self, message_id: int, text: str) -> Feedback:
        """A remark on a reply without a rating (\"nice, but call me Dana\"): a next state for the
        judge, and read for wishes at once."""
        fb = self.store.add_feedback(message_id, "comment", comment=text)
        self.memory.learn_from_feedback(fb)
        return fb

    def exclude(self, message_id: int) -> Feedback:
        return self.store.add_feedback(message_id, "exclude")

    def explain(self, feedback_id: int, reason: str = "", comment: str = "") -> None:
        """Attach a reason and/or comment to feedback already written (thumbs down first, why after)."""
        self.store.update_feedback(feedback_id, reason=reason or None, comment=comment or None)
        self.memory.learn_from_feedback(self.store.get_feedback(feedback_id))

    # --- conversation management (UI actions) ---------------------------------------------------
    def rename(self, conversation_id: int, name: str) -> None:
        self.store.update_conversation(conversation_id, name=name.strip() or "Untitled")

    def set_system_prompt(self, conversation_id: int, system_prompt: str) -> None:
        """The persona for the *next* turns; earlier turns keep the prompt they were answered with."""
        self.store.update_conversation(conversation_id, system_prompt=system_prompt)

    def delete_conversation(self, conversation_id: int) -> None:
        """Really delete: messages, feedback and samples go with it (docs/method.md §1), and any adapter
        version trained on them is flagged. The file-level scrub (VACUUM etc.) is left to
        ``clawdesk forget``: it needs the other connections closed and can take seconds."""
        gone = self.store.forget_conversations([conversation_id])
        self.store.flag_trained_on(gone["message_ids"])


def _title(text: str, width: int = 48) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"
