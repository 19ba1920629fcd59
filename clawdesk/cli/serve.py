"""``clawdesk serve``: the OpenAI-compatible endpoint (docs/serve.md)."""

from __future__ import annotations

import click

from .. import locations
from .context import AppContext, pass_app
from .progress import spinner


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--allow-remote", is_flag=True,
              help="Allow a --host other machines can reach. Anyone with the token can then read and steer your agent.")
@click.option("--show-token", is_flag=True, help="Print the bearer token (created on first use) and exit.")
@click.option("-m", "--model", help="Registered model name or GGUF path (default: the current model).")
@pass_app
def serve(app: AppContext, host: str, port: int, allow_remote: bool, show_token: bool, model: str | None) -> None:
    """Serve the agent over an OpenAI-compatible API (chat completions, models, feedback).

    Every main turn is logged and learned from like a chat turn; clients authenticate with the
    bearer token kept in the config dir."""
    from ..chat import open_engine
    from ..server import is_loopback, load_or_create_token, run, token_path

    token = load_or_create_token()
    if show_token:
        click.echo(token)
        return
    if not is_loopback(host) and not allow_remote:
        raise click.UsageError(f"--host {host} can be reached from other machines; add --allow-remote if you "
                               f"mean it (anyone with the token can then read and steer your agent).")
    with spinner("Loading model"):
        engine = open_engine(app.store, app.settings, model=model)
    if getattr(engine, "fallback_note", ""):
        click.secho(engine.fallback_note, fg="yellow", err=True)
    version = engine.adapter_version
    click.echo(f"Serving {getattr(engine, 'model_name', engine.model_path)} "
               f"({'adapter v%d' % version if version is not None else 'base model'}) on "
               f"http://{host}:{port}/v1")
    click.echo(f"Bearer token: {token_path()} (`clawdesk serve --show-token` prints it). Ctrl-C stops.")
    if not is_loopback(host):
        click.secho("Warning: listening beyond this machine. Use a firewall or a TLS proxy; the token travels "
                    "in clear over plain HTTP.", fg="yellow", err=True)
    try:
        run(locations.db_path(), engine, app.settings, host, port, token, model=model)
    finally:
        engine.close()


def register(cli: click.Group) -> None:
    cli.add_command(serve)
