"""The ``clawdesk`` command's entry point, kept apart from ``clawdesk.cli`` on purpose.

Importing the command line (click, rich and every command group) takes a few hundred
milliseconds; a Ctrl-C in that window used to print a Python traceback instead of the quiet
"Interrupted" every other moment gets. This module imports nothing heavy, so the only unguarded
window left is the interpreter's own start-up.
"""

from __future__ import annotations

import sys

INTERRUPTED = "\nInterrupted — nothing was lost.\n"


def main() -> None:
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write(INTERRUPTED)
        raise SystemExit(130) from None
    run()
