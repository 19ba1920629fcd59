"""The preference memory in the chat: "What I learned" (F5) and the status bar's "learned: …".

"What I learned" also shows what the last promoted pass changed: the previous and the new
version's answers to a few recent prompts, computed by the learning process right after the
promotion and kept with its run (``lifecycle.compare``) — so opening it costs one row read.

Wishes are learned by the chat service as feedback is given — on the UI thread (a correction,
a 👎 and its reason) or in the turn's worker (a complaint in the next message). Both services'
``on_learned`` land here, on the event loop, and the status bar says what was learned and where
it goes. Mixed into ``ClawDeskApp``; the methods annotate ``self`` with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ClawDeskError
from ..lifecycle.compare import BeforeAfter, last_before_after
from ..memory import Learned
from . import commands
from .screens.memory import MemoryScreen

if TYPE_CHECKING:
    from .app import ClawDeskApp


class MemoryActions:
    def wire_memory(self: ClawDeskApp) -> None:
        """Hear about learned wishes from both chat services (call once, after they exist)."""
        self.chat.memory.on_learned = self.show_learned
        self._bg_chat.memory.on_learned = lambda learned: self.call_from_thread(self.show_learned, learned)

    def show_learned(self: ClawDeskApp, learned: list[Learned]) -> None:
        fresh = [x for x in learned if x.kind != "confirmed"]
        shown = fresh or learned
        verb = "learned" if fresh else "confirmed"
        binding = next(b for b in commands.APP_BINDINGS if b.id == "memory")
        self.status.notice = (f"{verb}: {' '.join(x.wish.text for x in shown)} "
                              f"({commands.keys_in_effect(self, binding)}: what I learned)")

    def action_memory(self: ClawDeskApp) -> None:
        compared: BeforeAfter | None = None
        try:
            compared = last_before_after(self.store)
        except ClawDeskError as e:
            self.notify(str(e), severity="warning", timeout=8)
        self.push_screen(MemoryScreen(self.chat.memory, compared))
