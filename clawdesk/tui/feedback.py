"""The keys that act on one message: rate, correct, exclude, copy, step between answers, move.

Which message a key acts on: the focused one, else the one focused last, else the newest reply
on screen — so ``+`` right after an answer arrives rates that answer without moving first.
Feedback is written at once (a thumbs down before its optional reason), then the message's
badges are re-read from the store, so the screen shows what was saved, not what was meant.
Mixed into ``ClawDeskApp``; the methods annotate ``self`` with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..records import Message
from .screens.editor import EditorScreen
from .screens.feedback import ThumbsDownScreen
from .widgets.message import MessageView
from .widgets.prompt import PromptInput

if TYPE_CHECKING:
    from .app import ClawDeskApp

FEEDBACK_ACTIONS = {"thumbs_up", "thumbs_down", "correct", "regenerate", "exclude"}


class MessageFeedback:
    def target(self: ClawDeskApp, any_role: bool = False) -> Message | None:
        """The message the keys act on (see the module docstring). Feedback needs an assistant
        reply (``any_role`` lifts that)."""
        focused = self.focused
        if isinstance(focused, MessageView) and focused.message is None:
            self.notify("This reply is still being written.")
            return None
        if isinstance(focused, MessageView) and focused.message is not None:
            m = focused.message
        elif self.current_id in self.conv_tree.by_id and self.log_view.view_for(self.current_id):
            m = self.conv_tree.by_id[self.current_id]
        else:
            replies = [m for m in self.conv_tree.branch() if m.role == "assistant"]
            m = replies[-1] if replies else None
        if m is None:
            self.notify("No reply to act on yet.")
            return None
        if m.role != "assistant" and not any_role:
            self.notify("Feedback applies to the assistant's replies — move to one with ↑/↓ or j/k.")
            return None
        return self.conv_tree.by_id.get(m.id, m)

    def check_action(self: ClawDeskApp, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the message keys from the footer while a user message has focus."""
        if action in FEEDBACK_ACTIONS:
            focused = self.focused
            if isinstance(focused, MessageView) and focused.role != "assistant":
                return None  # shown dimmed: these keys only act on replies
        return True

    def action_thumbs_up(self: ClawDeskApp) -> None:
        m = self.target()
        if m is not None:
            self.chat.thumbs_up(m.id)
            self.refresh_message(m.id)

    def action_thumbs_down(self: ClawDeskApp) -> None:
        m = self.target()
        if m is None:
            return
        fb = self.chat.thumbs_down(m.id)  # written now; the reason is optional and comes after
        self.refresh_message(m.id)

        def done(answer: tuple[str, str] | None) -> None:
            if answer:
                self.chat.explain(fb.id, *answer)
                self.refresh_message(m.id)

        self.push_screen(ThumbsDownScreen(), done)

    def action_correct(self: ClawDeskApp) -> None:
        m = self.target()
        if m is None:
            return

        def done(text: str | None) -> None:
            if text is not None and text.strip() and text.strip() != m.content.strip():
                self.chat.correct(m.id, text.strip())
                self.refresh_message(m.id)

        self.push_screen(EditorScreen("Correct the answer — your version teaches the model", m.content,
                                      "Type to replace the answer (an arrow key edits it instead) · Ctrl+S "
                                      "saves the correction · Esc cancels"), done)

    def action_exclude(self: ClawDeskApp) -> None:
        m = self.target()
        if m is None:
            return
        if m.exclude:
            self.notify("Already excluded from learning.")
            return
        self.chat.exclude(m.id)
        self.refresh_message(m.id)

    def action_copy_message(self: ClawDeskApp) -> None:
        focused = self.focused
        m = focused.message if isinstance(focused, MessageView) else self.target()
        if m is not None:
            self.copy_to_clipboard(m.content)
            self.notify("Copied to the clipboard.", timeout=2)

    async def action_sibling(self: ClawDeskApp, delta: int) -> None:
        m = self.target(any_role=True)
        if m is None or self.busy():
            return
        other = self.conv_tree.step(m.id, delta)
        if other is None:
            self.bell()
            return
        await self.show_branch()
        view = self.log_view.view_for(other.id)
        if view is not None:
            view.focus()

    # --- moving between messages ----------------------------------------------------------------
    def on_message_view_focused(self: ClawDeskApp, event: MessageView.Focused) -> None:
        if event.view.message is not None:
            self.current_id = event.view.message.id

    def action_focus_message(self: ClawDeskApp, delta: int) -> None:
        views = self.log_view.views
        if not views:
            return
        focused = self.focused
        index = views.index(focused) if focused in views else len(views)
        target = index + delta
        if target >= len(views):
            self.prompt.focus()
        elif target >= 0:
            views[target].focus()

    def on_prompt_input_leave_up(self: ClawDeskApp, event: PromptInput.LeaveUp) -> None:
        self.action_focus_message(-1)
