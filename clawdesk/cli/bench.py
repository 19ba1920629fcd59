"""``clawdesk bench``: run the benchmarks in the repository's bench/ folder.

The benchmarks are scripts beside the package, not part of it (they are measurement tools, and
the personalisation one drives the whole app from outside, as a user would). This group only
finds the folder and runs the script with the same interpreter, passing every argument through:

    clawdesk bench personalize --quick
    clawdesk bench personalize --methods combined,rl --set train_lr=3e-4
    clawdesk bench all            (the performance benchmarks: serving, hotswap, training, memory)

Each benchmark uses its own temporary CLAWDESK_HOME, never the user's data.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from ..errors import ClawDeskError

SCRIPTS = {"personalize": "personalize.py", "serving": "serving.py", "hotswap": "hotswap.py",
           "training": "training.py", "memory": "memory.py", "all": "run_all.py"}


def bench_dir() -> Path:
    """bench/ of the source checkout this package runs from (an editable install)."""
    folder = Path(__file__).resolve().parents[2] / "bench"
    if not (folder / "run_all.py").exists():
        raise ClawDeskError(f"No bench/ folder next to the clawdesk package ({folder}); the benchmarks "
                            f"run from a source checkout (`make install` installs it editable).")
    return folder


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                 "help_option_names": []})
@click.argument("name", type=click.Choice(sorted(SCRIPTS)))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(name: str, args: tuple[str, ...]) -> None:
    """Run benchmark NAME; ARGS go to its script (`clawdesk bench NAME --help` lists them)."""
    script = bench_dir() / SCRIPTS[name]
    code = subprocess.run([sys.executable, str(script), *args]).returncode
    if code:
        sys.exit(code)


def register(cli: click.Group) -> None:
    cli.add_command(bench)
