"""F5 / "What I learned": the preference memory, where it goes in the prompt, and its editing;
below it, what the last promoted training pass changed (before/after on recent prompts).

A wish deleted here is out of the very next reply's prompt and is never re-learned from the
turns it came from (a tombstone, docs/memory.md); ``a`` adds one by hand, ``e`` rewords one.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from rich.text import Text
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from ...lifecycle.compare import BeforeAfter
from ...memory import Memory, said, where
from ...records import Wish
from .editor import LineEditScreen


def describe(w: Wish) -> str:
    """One wish as a list row: its words, then where it came from."""
    origin = {"user": "added by you", "judge": "learned by the judge"}.get(w.origin, "learned")
    turns = len(w.sources)
    came = f" from {turns} turn{'s' if turns != 1 else ''}" if turns else ""
    return f"{w.text}\n  {origin}{came}, last confirmed {w.confirmed_at[:10]}"


def before_after_widgets(c: BeforeAfter) -> ComposeResult:
    """The last promotion's answers, prompt by prompt: previous version, then the new one."""
    yield Label(f"What the last training changed: version {c.version} against {_name(c.before_label)}, "
                f"on {len(c.prompts)} of your recent prompts ({c.at[:10]}; greedy, up to {c.max_tokens} tokens)",
                classes="section", id="before-after-title")
    with VerticalScroll(id="before-after"):
        for prompt, before, after in zip(c.prompts, c.before, c.after):
            text = Text()
            text.append(f"» {prompt}\n", style="bold")
            text.append(f"before ({c.before_label}): ", style="dim")
            text.append(f"{before.strip()}\n")
            text.append(f"after (v{c.version}): ", style="bold green")
            text.append(after.strip() + ("  (unchanged)" if after.strip() == before.strip() else ""))
            yield Static(text, classes="pair")


def _name(label: str) -> str:
    return "the base model" if label == "base" else f"version {label.removeprefix('v')}"


class MemoryScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q", "close", "Close", id="memory_close"),
        Binding("a", "add", "Add", id="memory_add"),
        Binding("e", "edit", "Edit", id="memory_edit"),
        Binding("d,delete", "delete", "Delete", id="memory_delete"),
    ]

    def __init__(self, memory: Memory, compared: BeforeAfter | None = None) -> None:
        """``compared``: the last promoted pass's before/after, if one was kept."""
        super().__init__()
        self.memory = memory
        self.compared = compared

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="memory wide" if self.compared else "memory"):
            yield Label("What I learned about you", classes="title")
            yield Label(f"Used in every reply: {where(self.memory.settings.memory_placement)}.", id="where")
            yield Label("", id="exact")
            yield Label("", id="empty")
            yield OptionList(markup=False)
            if self.compared:
                yield from before_after_widgets(self.compared)
            yield Label("a add · e edit · d delete · Esc close — changes count from the next reply.", classes="hint")

    def on_mount(self) -> None:
        self.reload()
        self.query_one(OptionList).focus()

    @property
    def wishes(self) -> list[Wish]:
        return self.memory.wishes()

    def reload(self, keep: int | None = None) -> None:
        options = self.query_one(OptionList)
        wishes = self.wishes
        options.clear_options()
        options.add_options([Option(describe(w), id=str(w.id)) for w in wishes])
        options.display = bool(wishes)
        exact = said(self.memory.literals())
        self.query_one("#exact", Label).update(exact)
        self.query_one("#exact", Label).display = bool(exact)
        self.query_one("#empty", Label).update("" if wishes else (
            "Nothing yet. Say what you want in a correction, a 👎 comment or your next message "
            "(\"keep it under 30 words\", \"call me Dana\") — or press a."))
        if wishes:
            ids = [w.id for w in wishes]
            options.highlighted = ids.index(keep) if keep in ids else 0

    def selected(self) -> Wish | None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return None
        option = options.get_option_at_index(options.highlighted)
        return next((w for w in self.wishes if str(w.id) == option.id), None)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_edit()

    def action_add(self) -> None:
        def done(text: str | None) -> None:
            if text and text.strip():
                wish = self.memory.add(text)
                self.reload(keep=wish.id)

        self.app.push_screen(LineEditScreen("A wish for every reply (\"Call me Dana\")", ""), done)

    def action_edit(self) -> None:
        wish = self.selected()
        if wish is None:
            return

        def done(text: str | None) -> None:
            if text and text.strip() and text.strip() != wish.text:
                self.memory.edit(wish.id, text)
                self.reload(keep=wish.id)

        self.app.push_screen(LineEditScreen("Reword the wish", wish.text), done)

    def action_delete(self) -> None:
        wish = self.selected()
        if wish is None:
            return
        self.memory.remove(wish.id)
        self.app.notify(f"Deleted: {wish.text} — out of the prompt from the next reply.", timeout=4)
        self.reload()

    def action_close(self) -> None:
        self.dismiss(None)
