"""Learn now (F6): one learning pass in a child process, its stage and progress in the status bar.

The pass (judge → train → gate → promote, then the before/after answers) runs as
``python -m clawdesk.lifecycle.learn_now``: torch holds the GIL for long stretches and
allocates gigabytes, and neither may reach the process that draws the UI and answers through
llama.cpp — so the chat stays usable while it runs. An async worker reads the child's JSON
lines and turns each into a short status ("learning: judge 3/12", "learning: train step 2/4");
the last line is the outcome. A promoted version then arrives like any other promotion: the
hot-reload poll swaps it in between turns (``hot_reload``).

Quitting mid-pass sends the child SIGINT and waits for it: the pass unwinds as from a Ctrl-C
in ``clawdesk train --now`` and the next pass settles whatever it left (``lifecycle.recover``).
The child's stderr goes to ``learn-now.log`` in the data dir, the place to look when it fails.
Mixed into ``ClawDeskApp``; the methods annotate ``self`` with it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work

from .. import locations
from ..errors import PipelineBusy
from ..lifecycle.lock import pipeline_lock
from . import commands

if TYPE_CHECKING:
    from .app import ClawDeskApp

CHILD = [sys.executable, "-m", "clawdesk.lifecycle.learn_now"]
STOP_WAIT_S = 60.0  # how long quitting waits for an interrupted pass to unwind before killing it

# stage → what the status bar calls it; counted stages show "done/total"
STAGES = {"resume": "resuming a stopped pass", "judge-check": "measuring the judge", "judge": "judge",
          "memory": "reading remarks", "train:load": "loading the model", "train:score": "scoring",
          "train:train": "train step", "train:save": "saving", "gate": "gate", "promote": "promoting",
          "compare": "before/after"}
UNCOUNTED = {"resume", "train:load", "train:save", "gate", "promote"}


def stage_text(stage: str, done: int, total: int) -> str:
    """The status bar's words for one progress line."""
    name = STAGES.get(stage, stage)
    if stage in UNCOUNTED or total <= 0:
        return f"learning: {name}…"
    return f"learning: {name} {done}/{total}"


def log_path() -> Path:
    return locations.data_dir() / "learn-now.log"


class LearnNow:
    _learn_proc: asyncio.subprocess.Process | None = None
    _learn_stopping: bool = False

    @property
    def learning(self: ClawDeskApp) -> bool:
        return self._learn_proc is not None

    def action_learn_now(self: ClawDeskApp) -> None:
        """Start a pass unless one is running here or elsewhere (the nightly daemon, a
        ``clawdesk train --now`` in a terminal): then say so and start nothing."""
        if self.learning:
            self.notify("Already learning — the status bar shows how far it is.", timeout=5)
            return
        try:
            with pipeline_lock():  # a probe: the child takes the lock itself a moment later
                pass
        except PipelineBusy as e:
            self.status.learning = "not started: another training pass is running"
            self.notify(str(e), title="Not started", severity="warning", timeout=10)
            return
        self.status.learning = "learning: starting…"
        self._learn_pass()

    @work(exclusive=True, group="learn", exit_on_error=False)
    async def _learn_pass(self: ClawDeskApp) -> None:
        try:
            fd = os.open(log_path(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                # A session of its own: a signal meant for the terminal's foreground group never
                # reaches it by accident; it stops only when we ask (``stop_learning``).
                proc = await asyncio.create_subprocess_exec(*CHILD, stdin=asyncio.subprocess.DEVNULL,
                                                            stdout=asyncio.subprocess.PIPE, stderr=fd,
                                                            start_new_session=True)
            finally:
                os.close(fd)
        except OSError as e:
            self.status.learning = "learning failed"
            self.notify(f"Could not start the learning process: {e}", title="Learning failed", severity="error",
                        timeout=15)
            return
        self._learn_proc, self._learn_stopping = proc, False
        outcome: dict[str, Any] | None = None
        assert proc.stdout is not None
        async for raw in proc.stdout:
            try:
                event = json.loads(raw)
            except json.JSONDecodeError:
                continue  # not ours (a library printing to stdout); stderr has the details
            if not isinstance(event, dict):
                continue
            if "outcome" in event:
                outcome = event
            elif "stage" in event and self.is_running:
                self.status.learning = stage_text(event["stage"], event.get("done", 0), event.get("total", 0))
        code = await proc.wait()
        if not self._learn_stopping:
            self._learn_proc = None
        if self.is_running and not self._learn_stopping:
            self.show_learn_outcome(outcome, code)

    def show_learn_outcome(self: ClawDeskApp, outcome: dict[str, Any] | None, code: int) -> None:
        """The status bar's last word on the pass, and a toast with the whole of it."""
        if outcome is None:
            self.status.learning = "learning failed"
            self.notify(f"The learning process stopped without a result (exit code {code}); "
                        f"its log is {log_path()}.", title="Learning failed", severity="error", timeout=15)
            return
        kind, summary = outcome.get("outcome"), outcome.get("summary", "")
        memory = next(b for b in commands.APP_BINDINGS if b.id == "memory")
        if kind == "promoted":
            self.status.learning = (f"learned: version {outcome['version']} promoted "
                                    f"({commands.keys_in_effect(self, memory)}: before/after)")
            self.notify(f"Version {outcome['version']} is promoted; the chat switches to it before its "
                        "next reply. 'What I learned' shows its answers next to the previous version's.",
                        title="Learned", timeout=10)
        elif kind == "refused":
            detail = outcome.get("detail") or summary
            self.status.learning = f"refused by the gate: {detail}"
            self.notify(f"{summary}. The served version is unchanged.", title="Not promoted", timeout=10)
        elif kind == "skipped":
            nothing = "no ready samples" in summary
            self.status.learning = "nothing new to learn from" if nothing else f"not trained: {summary}"
            if nothing:
                self.notify("Rate, correct or comment on a few replies first (+, -, c); then learn again.",
                            title="Nothing new to learn from", timeout=8)
        elif kind == "busy":
            self.status.learning = "not started: another training pass is running"
            self.notify(summary, title="Not started", severity="warning", timeout=10)
        else:
            self.status.learning = "learning failed"
            self.notify(f"{summary} (log: {log_path()})", title="Learning failed", severity="error", timeout=15)
        self.hot_reload.refresh_counts()

    async def stop_learning(self: ClawDeskApp) -> None:
        """On quit: SIGINT to the child, then wait for it to unwind (killed after STOP_WAIT_S)."""
        proc = self._learn_proc
        if proc is None or proc.returncode is not None:
            return
        self._learn_stopping = True
        try:
            proc.send_signal(signal.SIGINT)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(proc.wait(), STOP_WAIT_S)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        finally:
            self._learn_proc = None
