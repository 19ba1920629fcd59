"""Hold a real TUI turn after its first streamed piece. Tests that press a key "mid-reply" raced
the model: on a loaded CI machine the event loop can stall long enough for a short greedy reply
to finish before the key arrives (seen once: `_cancel` already None after the first Ctrl-C). The
engine still generates every token; only the worker waits between two of them."""

from __future__ import annotations

import threading

from clawdesk.tui import ClawDeskApp


def hold_after_first_piece(app: ClawDeskApp) -> threading.Event:
    """Make every turn of ``app`` wait after its first piece until the returned event is set:
    set it after the key under test, and the generation goes on (or, if stopped, stops at its
    next token)."""
    release = threading.Event()
    start_turn = app._start_turn

    def gated(view, run):
        def gated_run(on_text, cancel):
            def on_piece(piece):
                on_text(piece)
                release.wait(120)
            return run(on_piece, cancel)
        start_turn(view, gated_run)

    app._start_turn = gated  # type: ignore[method-assign]
    return release
