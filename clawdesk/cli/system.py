"""``clawdesk status``, ``doctor`` and ``config``: what is where, and is it healthy."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import shutil
from pathlib import Path
from typing import Any

import click

from .. import catalog, locations
from ..engine.gguf_check import check_gguf
from ..errors import ClawDeskError
from ..judge.accuracy import status_line
from ..settings import allowed, describe, load_settings
from .context import AppContext, pass_app


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Output as JSON.")
@pass_app
def status(app: AppContext, as_json: bool) -> None:
    """Model, adapter version, database size and counts, last training run."""
    store = app.store
    runs = store.runs(limit=1)
    info = {
        "model": catalog.current_name(store, app.settings),
        "adapter_version": store.served_version(),
        "database": str(store.path),
        "database_bytes": store.path.stat().st_size,
        "counts": store.counts(),
        "last_run": ({"id": runs[0].id, "status": runs[0].status, "finished_at": runs[0].finished_at}
                     if runs else None),
        **_recovery(store),
        "judge": status_line(store, app.settings),
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    c = info["counts"]
    click.echo(f"Model:        {info['model']}")
    click.echo(f"Adapter:      {info['adapter_version'] or 'none (base model)'}")
    click.echo(f"Database:     {info['database']} ({info['database_bytes'] / 1e6:.1f} MB)")
    click.echo(f"Logged:       {c['conversations']} conversations, {c['messages']} messages, "
               f"{c['feedback']} feedback, {c['samples']} samples ({c['samples_ready']} ready)")
    last = info["last_run"]
    click.echo(f"Last run:     {'#%d %s %s' % (last['id'], last['status'], last['finished_at']) if last else 'never'}")
    click.echo(f"Judge:        {info['judge']}")
    for run_id in info["waiting"]:
        click.secho(f"Waiting:      run #{run_id} trained a candidate but its pass stopped before the gate decided; "
                    "the next `clawdesk train --now` (or nightly pass) gates it", fg="yellow")
    if info["recovered"]:
        click.echo(f"Recovered:    {info['recovered']['at']} {info['recovered']['decision']}: "
                   f"{info['recovered']['detail']}")


def _recovery(store) -> dict:
    """What ``status`` says about passes that were stopped (``lifecycle.recover``): candidates still
    waiting for their gate, and the last one resumed or requeued — so that a stopped pass is never
    silent about where the user's feedback went."""
    from ..lifecycle.recover import orphans

    last = store.pipeline_log(limit=1, decisions=["resumed", "requeued"])
    return {"waiting": [r.id for r in orphans(store)],
            "recovered": {k: last[0][k] for k in ("at", "decision", "detail", "run_id")} if last else None}


def _check(ok: bool, label: str, detail: str) -> bool:
    click.echo(f"{click.style('ok  ' if ok else 'FAIL', fg='green' if ok else 'red')} {label}: {detail}")
    return ok


def _info(label: str, detail: str) -> None:
    click.echo(f"{click.style('info', fg='blue')} {label}: {detail}")


TINY_PARAMS = 1_000_000_000  # below this a model judges near chance and follows hints poorly (docs/platform.md)


def _advise_teacher(store: Any, settings: Any) -> None:
    """Recommend a bigger judge and OPD teacher when the chat model is tiny and none is set."""
    try:
        params = catalog.approx_params(catalog.current_model(store, settings).path)
    except ClawDeskError:
        return
    if params is None or params >= TINY_PARAMS:
        return
    if settings.judge_model and settings.teacher_model:
        _info("teacher", f"judge_model = {settings.judge_model}, teacher_model = {settings.teacher_model}")
        return
    _info("teacher", f"the chat model is tiny (~{params / 1e6:.0f}M parameters): its judgements are near chance and "
                     f"it follows hints poorly. If this machine has a GPU or the memory, register a bigger model of "
                     f"the same family (`clawdesk models add`) and set judge_model and teacher_model to it "
                     f"(docs/gpu.md).")


@click.command()
@click.option("--repair", is_flag=True,
              help="Rebuild a damaged database from the rows SQLite can still read (the original is kept).")
@pass_app
def doctor(app: AppContext, repair: bool) -> None:
    """Check the install: model file, database, disk, llama.cpp and torch builds, GPU."""
    if repair:
        _repair_database(app)
    good = True
    try:
        settings = app.settings
        good &= _check(True, "settings", str(locations.settings_path()))
    except ClawDeskError as e:
        good &= _check(False, "settings", str(e))
        settings = load_settings(env={}, path=Path("/nonexistent"))
    try:
        store = app.store
        result = store.integrity_check()
        good &= _check(result == "ok", "database", f"{store.path} integrity {result}")
    except ClawDeskError as e:
        good &= _check(False, "database", str(e))
        store = None
    if store is not None:
        try:
            entry = catalog.current_model(store, settings)
            check_gguf(entry.path)
            detail = entry.path
            if entry.sha256:
                digest = catalog.sha256_of(entry.path)
                ok = digest == entry.sha256
                detail += "" if ok else f" (sha256 {digest[:12]}… ≠ manifest {entry.sha256[:12]}…)"
                good &= _check(ok, "model", detail)
            else:
                good &= _check(True, "model", detail)
        except ClawDeskError as e:
            good &= _check(False, "model", str(e))
    if store is not None:
        _info("judge", status_line(store, settings))
        _advise_teacher(store, settings)
    free = shutil.disk_usage(locations.data_dir()).free
    good &= _check(free > 2e9, "disk", f"{free / 1e9:.1f} GB free in {locations.data_dir()} "
                                       f"(training and export want ≥ 2 GB)")
    try:
        import llama_cpp

        system_info = llama_cpp.llama_print_system_info().decode()
        flags = [f for f in ("AVX2", "AVX512", "FMA", "F16C") if f"{f} = 1" in system_info]
        good &= _check(True, "llama.cpp", f"llama-cpp-python {llama_cpp.__version__}, CPU features {', '.join(flags) or 'none'}")
    except ImportError:
        cc = shutil.which("cc") or shutil.which("gcc")
        good &= _check(False, "llama.cpp", "llama-cpp-python is not installed; `make install` builds it"
                       + ("" if cc else " — and needs a C/C++ compiler and cmake, which are missing"))
    try:
        import torch

        cuda = torch.cuda.is_available()
        good &= _check(True, "torch", f"{torch.__version__}")
        _info("GPU", "CUDA available → QLoRA training" if cuda else "none → training runs LoRA on the CPU (slower, works)")
    except ImportError:
        good &= _check(False, "torch", "not installed; `make install` installs torch==2.13.0 (CPU)")
    try:
        importlib.metadata.version("bitsandbytes")
        _info("bitsandbytes", "installed (QLoRA available)")
    except importlib.metadata.PackageNotFoundError:
        _info("bitsandbytes", "not installed (QLoRA off; install the 'qlora' extra)")
    _info("python", f"{platform.python_version()} on {platform.system()} {platform.machine()}")
    if not good:
        raise SystemExit(1)


def _repair_database(app: AppContext) -> None:
    from ..store.repair import is_damaged, repair

    path = locations.db_path()
    app.close()  # our own connection must not hold the file while it is swapped
    app._store = None
    problem = is_damaged(path) if path.exists() else None
    if problem is None:
        _info("repair", f"{path} is healthy; nothing to repair")
        return
    _info("repair", f"{path} is damaged ({problem[:120]}); rebuilding from the readable rows")
    report = repair(path)
    got = ", ".join(f"{n} {t}" for t, n in report.recovered.items() if n) or "no rows"
    _info("repair", f"recovered {got}")
    if report.lost or report.unreadable_tables:
        lost = ", ".join(f"{n} {t}" for t, n in report.lost.items())
        unreadable = ", ".join(report.unreadable_tables)
        click.secho(f"     lost: {lost or 'none counted'}" + (f"; unreadable tables: {unreadable}" if unreadable else ""),
                    fg="yellow")
    _info("repair", f"the damaged file is kept as {report.original}")


@click.group()
def config() -> None:
    """Show the settings and where they come from."""


@config.command()
@click.option("--json", "as_json", is_flag=True, help="Output as JSON.")
@pass_app
def show(app: AppContext, as_json: bool) -> None:
    """Every setting: value, whether it differs from the default, and what it does."""
    rows = describe(app.settings)
    if as_json:
        click.echo(json.dumps({name: value for name, value, _, _ in rows}, indent=2))
        return
    click.echo(f"# {locations.settings_path()}  (env: CLAWDESK_<NAME>)")
    for name, value, default, help_ in rows:
        mark = click.style(" (changed)", fg="yellow") if value != default else ""
        click.echo(f"{name} = {value!r}{mark}")
        click.secho(f"    {help_}", dim=True)
        accepts = allowed(name)
        if accepts not in ("text", "true or false", "a table"):
            click.secho(f"    allowed: {accepts}", dim=True)


@config.command()
def path() -> None:
    """Print the settings file path."""
    click.echo(locations.settings_path())


def register(cli: click.Group) -> None:
    for command in (status, doctor, config):
        cli.add_command(command)
