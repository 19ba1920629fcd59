"""Loading the chat model, and switching to another one (F4), without freezing the screen.

Opening a GGUF takes seconds, so it runs in a worker and the screen is usable meanwhile: the
status bar says "Loading model…", and a message typed before the model is there is sent when
it is. A model that cannot be loaded is a message in the chat with the way out (F4), not a
traceback. Mixed into ``ClawDeskApp``; the methods annotate ``self`` with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.widgets import Markdown

from .. import catalog
from ..chat import open_engine
from ..engine import Engine
from ..errors import ClawDeskError
from .screens.choose import ChooseScreen

if TYPE_CHECKING:
    from .app import ClawDeskApp


def version_label(version: int | None) -> str:
    return f"v{version}" if version is not None else "none"


class ModelLoading:
    @work(thread=True, exclusive=True, group="engine")
    def load_engine(self: ClawDeskApp, model: str | None) -> None:
        try:
            engine = open_engine(self._bg_store, self.settings, model=model)
        except ClawDeskError as e:
            self.call_from_thread(self.engine_failed, str(e))
            return
        self.call_from_thread(self.engine_ready, engine)

    def engine_ready(self: ClawDeskApp, engine: Engine) -> None:
        notices = self.log_view.query(".notice")
        if notices:  # recovered from a failed load: drop its messages
            notices.remove()
            self.clear_notifications()
        self.engine = engine
        self.chat.engine = self._bg_chat.engine = engine
        self.hot_reload.attach(engine)
        self.status.error = False
        self.status.notice = ""
        self.status.model = self.chat.model_name
        self.status.adapter = version_label(engine.adapter_version)
        if engine.fallback_note:  # the served version did not load; we serve an older one
            self.notify(engine.fallback_note, title="Adapter not loaded", severity="warning", timeout=15)
        if self._send_when_ready:
            self._send_when_ready = False
            self.prompt.action_send()

    def engine_failed(self: ClawDeskApp, message: str) -> None:
        self.status.error = True
        self.status.notice = "No model loaded — F4 picks another"
        self.notify(message, title="Could not load the model", severity="error", timeout=30)
        self.log_view.mount(Markdown(f"**Could not load the model.** {message}\n\nPress F4 to choose another "
                                     "model, or fix it with `clawdesk models list` / `clawdesk models add "
                                     "PATH.gguf`.", classes="notice"))

    def action_switch_model(self: ClawDeskApp) -> None:
        current = self.chat.model_name if self.engine else None
        choices = [(m.name, f"{'●' if m.name == current else ' '} {m.name}  ({'bundled' if m.bundled else m.path})")
                   for m in catalog.all_models(self.store)]

        def done(name: str | None) -> None:
            if name and name != current and not self.busy():
                self.status.error = False
                self.status.notice = f"Loading {name}…"
                self._switch_model(name)

        self.push_screen(ChooseScreen("Chat with which model? (`clawdesk models add` registers more)",
                                      choices, current), done)

    @work(thread=True, exclusive=True, group="engine")
    def _switch_model(self: ClawDeskApp, name: str) -> None:
        try:
            entry = catalog.use_model(self._bg_store, name)
            if self.engine is None:
                engine = open_engine(self._bg_store, self.settings, model=entry.name)
                self.call_from_thread(self.engine_ready, engine)
                return
            # Another model: the served adapter was trained for the old one, so drop it.
            self.engine.request_swap(None, None, model_path=entry.path)
            self.engine.model_name = entry.name
        except ClawDeskError as e:
            self.call_from_thread(self.engine_failed, str(e))
            return
        self.hot_reload.model = entry.name
        self.call_from_thread(self.engine_ready, self.engine)
