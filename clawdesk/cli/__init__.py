"""The ``clawdesk`` command line. One module per command group; this one wires them together
and turns domain errors into one actionable line (``--debug`` shows the traceback)."""

from __future__ import annotations

import sys

import click

from ..errors import ClawDeskError
from .context import AppContext


class _Group(click.Group):
    """Domain errors print one line; Ctrl-C exits quietly with 130; everything else is a bug."""

    def main(self, *args, **kwargs):  # type: ignore[override]
        debug = "--debug" in sys.argv
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            click.echo("\nInterrupted — nothing was lost.", err=True)
            sys.exit(130)
        except KeyboardInterrupt:
            click.echo("\nInterrupted — nothing was lost.", err=True)
            sys.exit(130)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except ClawDeskError as e:
            if debug:
                raise
            click.secho(f"Error: {e}", fg="red", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.version_option(package_name="clawdesk")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """ClawDesk: a private, local AI agent that learns from being used."""
    from ..privacy import private_files

    private_files()  # everything written from here on (db, adapters, exports) is 0600 / 0700
    if not debug:
        _quiet_libraries()
    ctx.obj = AppContext(debug=debug)
    ctx.call_on_close(ctx.obj.close)


def _quiet_libraries() -> None:
    """The ML libraries print deprecation notices, optional-kernel warnings and their own
    progress bars on stderr; next to ClawDesk's progress bars they read like errors. Keep them for
    ``--debug``."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|transformers|peft|bitsandbytes)\b.*")
    for name in ("bitsandbytes", "transformers", "peft", "accelerate", "apscheduler"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _register() -> None:
    """Every module in this package that defines ``register(cli)`` adds its commands."""
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(cli)


_register()


def main() -> None:
    cli()
