"""One message on screen, focusable, with its feedback state at a glance.

Assistant replies stream into a Textual ``Markdown`` through ``Markdown.get_stream`` (it batches
fragments, so the growing document is never re-rendered per token); when the turn ends the
widget renders the final text once. The single-letter feedback keys are bound here so that
they only act while a message has focus, and they run app actions (``app.thumbs_up`` …) so the
command palette and the keys share one code path.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message as UIMessage
from textual.widgets import Markdown, Static

from ...chat import Turn
from ...records import Message
from ..state import MessageState

MESSAGE_BINDINGS = [
    Binding("plus", "app.thumbs_up", "👍", id="thumbs_up"),
    Binding("minus", "app.thumbs_down", "👎", id="thumbs_down"),
    Binding("c", "app.correct", "Correct", id="correct"),
    Binding("r", "app.regenerate", "Regenerate", id="regenerate"),
    Binding("x", "app.exclude", "Don't learn", id="exclude"),
    Binding("y", "app.copy_message", "Copy", id="copy"),
    Binding("left_square_bracket", "app.sibling(-1)", "◀ answer", id="previous_answer"),
    Binding("right_square_bracket", "app.sibling(1)", "answer ▶", id="next_answer"),
    Binding("k,up", "app.focus_message(-1)", "Previous message", id="message_up", show=False),
    Binding("j,down", "app.focus_message(1)", "Next message", id="message_down", show=False),
]


class MessageView(Vertical, can_focus=True):
    BINDINGS = MESSAGE_BINDINGS

    class Piece(UIMessage):
        """A decoded text fragment from the generation thread."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Finished(UIMessage):
        """The turn was logged; posted after the last Piece so it is handled after it."""

        def __init__(self, turn: Turn | None, error: str = "") -> None:
            super().__init__()
            self.turn, self.error = turn, error

    class Completed(UIMessage):
        """Bubbles to the app once the final text is on screen."""

        def __init__(self, view: "MessageView", turn: Turn | None, error: str) -> None:
            super().__init__()
            self.view, self.turn, self.error = view, turn, error

    class Focused(UIMessage):
        def __init__(self, view: "MessageView") -> None:
            super().__init__()
            self.view = view

    def __init__(self, role: str, message: Message | None = None, text: str = "") -> None:
        super().__init__(classes=f"-{role}")
        self.role = role
        self.message = message
        self._text = message.content if message else text
        self._stream = None
        self.state = MessageState()

    def compose(self) -> ComposeResult:
        if self.role == "assistant":
            yield Markdown(self._text, classes="body")
        else:
            yield Static(self._text, markup=False, classes="body")
        yield Static("", markup=False, classes="correction")

    def on_mount(self) -> None:
        self._render_state()

    def on_focus(self) -> None:
        self.post_message(self.Focused(self))

    # --- streaming ------------------------------------------------------------------------------
    def start_stream(self) -> None:
        self.add_class("-streaming")
        self._stream = Markdown.get_stream(self.query_one(Markdown))
        self._render_state()

    async def on_message_view_piece(self, event: Piece) -> None:
        event.stop()
        self._text += event.text
        if self._stream is not None:
            await self._stream.write(event.text)

    async def on_message_view_finished(self, event: Finished) -> None:
        event.stop()
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.remove_class("-streaming")
        if event.turn is not None:
            self.message = event.turn.assistant
            self._text = self.message.content
            # One full render of the final text: fixes anything the incremental parse got wrong.
            await self.query_one(Markdown).update(self._text)
        self.post_message(self.Completed(self, event.turn, event.error))

    # --- state ----------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        return self._text

    def show_state(self, state: MessageState, message: Message | None = None) -> None:
        self.state = state
        if message is not None:
            self.message = message
        self._render_state()

    def _render_state(self) -> None:
        s = self.state
        title = "You" if self.role == "user" else "Assistant"
        if self.has_class("-streaming"):
            title += " · writing… (Esc stops)"
        badges = []
        if s.thumbs == "up":
            badges.append("👍")
        elif s.thumbs == "down":
            badges.append("👎" + (f" {s.reason}" if s.reason else ""))
        if s.correction:
            badges.append("✎ corrected")
        if s.excluded:
            badges.append("⊘ excluded")
        if s.stopped:
            badges.append("■ stopped")
        self.border_title = " · ".join([title, *badges])
        self.border_subtitle = f"[ {s.sibling}/{s.siblings} ]" if s.siblings > 1 else ""
        for cls, on in (("-up", s.thumbs == "up"), ("-down", s.thumbs == "down"), ("-excluded", s.excluded)):
            self.set_class(on, cls)
        if self.is_mounted:
            note = self.query_one(".correction", Static)
            note.update(f"✎ correction: {s.correction}" if s.correction else "")
            note.set_class(bool(s.correction), "-shown")
