"""Key bindings, the ``[keymap]`` remapping, the help table and the command palette.

Every action has a ``Binding`` whose id is the name the settings file's ``[keymap]`` uses.
The help screen (F1) and the command palette (Ctrl+P) are both generated from those bindings
*as remapped*: a palette entry names a binding id, and its action and the keys in its hint come
from that binding with the keymap applied — so remapping ``thumbs_up = "u"`` changes what the
palette says, and no hint can name a key the person no longer has. Entries without a key (roll
back, delete the open conversation) name their action instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from textual import actions
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType

from ..settings import Settings
from .widgets.message import MESSAGE_BINDINGS
from .widgets.prompt import PromptInput
from .widgets.sidebar import Sidebar

APP_BINDINGS = [
    Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
    Binding("escape", "cancel", "Stop", id="cancel"),
    Binding("ctrl+n", "new_conversation", "New", id="new_conversation"),
    Binding("ctrl+b", "toggle_sidebar", "Sidebar", id="toggle_sidebar"),
    Binding("ctrl+f", "search", "Search", id="search"),
    Binding("f2", "rename", "Rename", id="rename", show=False),
    Binding("f3", "system_prompt", "Persona", id="system_prompt", show=False),
    Binding("f4", "switch_model", "Model", id="switch_model", show=False),
    Binding("f5", "memory", "What I learned", id="memory", show=False),
    # priority: the prompt's TextArea binds F6 (select line), and the prompt has the focus nearly always
    Binding("f6", "learn_now", "Learn now", id="learn_now", show=False, priority=True),
    Binding("f8", "export('md')", "Export .md", id="export_markdown", show=False),
    Binding("f9", "export('json')", "Export .json", id="export_json", show=False),
    Binding("f1,question_mark", "help", "Help", id="help"),
]



def _bindings(group: Iterable[BindingType]) -> list[Binding]:
    return [b for b in group if isinstance(b, Binding)]


# Where each group of bindings acts (the help table's first column).
BINDING_GROUPS: list[tuple[str, list[Binding]]] = [
    ("anywhere", APP_BINDINGS), ("message", MESSAGE_BINDINGS),
    ("prompt", _bindings(PromptInput.BINDINGS)), ("sidebar", _bindings(Sidebar.BINDINGS)),
]


@dataclass(frozen=True)
class PaletteEntry:
    """One command-palette line. ``binding``: the id whose (remapped) keys and action it uses;
    ``action``: an app action for an entry that has no key of its own."""

    title: str
    help: str
    binding: str = ""
    action: str = ""


PALETTE = [
    PaletteEntry("New conversation", "Start a fresh conversation", "new_conversation"),
    PaletteEntry("Rename conversation", "Give this conversation a name", "rename"),
    PaletteEntry("Delete conversation", "Delete this conversation with its feedback and samples",
                 action="delete_conversation"),
    PaletteEntry("Search conversations", "Full-text search over every message", "search"),
    PaletteEntry("Toggle sidebar", "Show or hide the conversation list", "toggle_sidebar"),
    PaletteEntry("Thumbs up", "Rate the selected reply 👍", "thumbs_up"),
    PaletteEntry("Thumbs down", "Rate the selected reply 👎, optionally say why", "thumbs_down"),
    PaletteEntry("Correct reply", "Edit the reply; your version is the correction", "correct"),
    PaletteEntry("Regenerate reply", "A new answer; the old one stays as a sibling", "regenerate"),
    PaletteEntry("Previous answer", "Show the previous sibling answer", "previous_answer"),
    PaletteEntry("Next answer", "Show the next sibling answer", "next_answer"),
    PaletteEntry("Don't learn from this reply", "Exclude the selected reply from training", "exclude"),
    PaletteEntry("Copy reply", "Copy the selected message to the clipboard", "copy"),
    PaletteEntry("Stop generating", "Keep the partial answer, marked stopped", "cancel"),
    PaletteEntry("System prompt / persona", "Set this conversation's system prompt", "system_prompt"),
    PaletteEntry("Switch model", "Chat with another registered model", "switch_model"),
    PaletteEntry("What I learned", "The wishes learned from your feedback, used in every reply; edit or delete them",
                 "memory"),
    PaletteEntry("Learn now", "Learn from your feedback now (judge → train → gate → promote) while you chat",
                 "learn_now"),
    PaletteEntry("Export conversation to Markdown", "Write the branch on screen to a .md file", "export_markdown"),
    PaletteEntry("Export conversation to JSON", "Write every branch with feedback to a .json file", "export_json"),
    PaletteEntry("Roll back the adapter", "Serve the version before the current one (or the base model)",
                 action="rollback"),
    PaletteEntry("Keys and help", "Every key binding and how to remap it", "help"),
]

# Bindings with no palette entry, and why: quitting is in Textual's own palette commands; the
# rest only make sense where they are pressed (moving between messages, the prompt's Enter, the
# sidebar's delete of the *highlighted* item — the palette deletes the open conversation).
NOT_IN_PALETTE = {"quit", "message_up", "message_down", "send", "newline", "delete_conversation"}


def all_bindings() -> list[Binding]:
    return [b for _, group in BINDING_GROUPS for b in group]


def apply_keymap(app: App[None], settings: Settings) -> None:
    """Install the settings' ``[keymap]``; an id no binding has is a warning, not a crash."""
    known = {b.id for b in all_bindings() if b.id}
    unknown = sorted(set(settings.keymap) - known)
    if unknown:
        app.notify(f"Unknown binding id(s) in [keymap]: {', '.join(unknown)} — F1 lists the ids.",
                   severity="warning", timeout=8)
    app.set_keymap({k: str(v) for k, v in settings.keymap.items() if k in known})


def keys_in_effect(app: App[None], binding: Binding) -> str:
    """The binding's keys after the keymap, as the footer writes them ("^n", "f2, ?")."""
    keys = app._keymap.get(binding.id, binding.key) if binding.id else binding.key
    return ", ".join(app.get_key_display(Binding(k.strip(), binding.action)) for k in keys.split(","))


def binding_rows(app: App[None]) -> list[tuple[str, str, str, str]]:
    """The help table: (where, keys in effect, what it does, binding id)."""
    rows = [(where, keys_in_effect(app, b), b.description, b.id or "")
            for where, group in BINDING_GROUPS for b in group]
    rows.append(("anywhere", "ctrl+p", "Command palette", ""))
    return rows


def palette_commands(app: App[None]) -> Iterator[SystemCommand]:
    """The palette entries, their hints carrying the keys in effect."""
    by_id = {b.id: b for b in all_bindings() if b.id}
    for entry in PALETTE:
        binding = by_id.get(entry.binding)
        action = entry.action or (binding.action if binding else "")
        hint = f"{entry.help} ({keys_in_effect(app, binding)})" if binding else entry.help
        yield SystemCommand(entry.title, hint, _runner(app, action))


def _runner(app: App[None], action: str) -> Callable[[], object]:
    """Call the app's ``action_*`` method directly, as a key press's handler would after its
    checks: the palette closes first, and the action itself says why when it cannot act."""
    _, name, params = actions.parse(action)  # "app.thumbs_up": the namespace is always the app here
    return lambda: getattr(app, f"action_{name}")(*params)
