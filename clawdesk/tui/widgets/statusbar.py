"""One line at the bottom: model, adapter version, speed of the last answer, samples waiting
for training, the last training run, a Learn now pass's stage or outcome — and loading/hot-reload
notices."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


class StatusBar(Static):
    model: reactive[str] = reactive("")
    adapter: reactive[str] = reactive("")
    notice: reactive[str] = reactive("Loading model…")
    error: reactive[bool] = reactive(False)
    tokens_per_s: reactive[float | None] = reactive(None)
    samples_ready: reactive[int] = reactive(0)
    last_run: reactive[str] = reactive("")
    learning: reactive[str] = reactive("")  # "learning: judge 3/12", then the outcome

    def render(self) -> Text:
        parts: list[tuple[str, str]] = []
        if self.model:
            parts.append((f"⬢ {self.model}", "bold"))
        parts.append((f"adapter {self.adapter or 'none'}", ""))
        if self.tokens_per_s is not None:
            parts.append((f"{self.tokens_per_s:.0f} tok/s", ""))
        parts.append((f"{self.samples_ready} samples ready", ""))
        if self.last_run and not self.learning:  # a running pass's stage says more, in less room
            parts.append((self.last_run, ""))
        if self.learning:
            parts.append((self.learning, "bold $accent"))
        if self.notice:
            parts.append((self.notice, "bold red" if self.error else "bold $accent"))
        text = Text(" ")
        for i, (part, style) in enumerate(parts):
            if i:
                text.append("  │  ", style="dim")
            text.append(part, style=style.replace("$accent", "yellow"))
        return text
