"""A judge that knows it is weak: measure the judge on labelled cases before trusting its rewards.

An *implicit* reward is the judge's verdict on what you did next (you re-asked, you said thanks);
an explicit one is your own 👍/👎, correction or regenerate. A judge that gets the sign of a
verdict wrong more often than right turns implicit rewards into noise that trains the model the
wrong way — and the bundled 135M judge is such a judge (below chance on ±1 cases:
docs/benchmarks.md, "Judge accuracy"). So before the first implicit reward is used, the judge as
configured (model, votes, temperature, grammar, token limit, prompt) is run over the labelled
±1 cases shipped in ``labelled_cases.jsonl``; with a sign accuracy below ``judge_min_accuracy``
(0.6) implicit rewards are off and only explicit feedback, demonstrations and hints teach.

Why hints stay on: a hint is a directive (the teacher is the same weights with the hint in
context), and most hints are the user's own words — corrections, comments, 👎 reasons — which
the judge does not decide. What the labelled cases measure is the reward's sign; that is what
is switched off.

Cost and caching: at most (±1 cases) × ``judge_votes`` votes — 42 × 3 for the shipped cases, a
few minutes on the bundled model on one thread — and usually fewer: the cases are interleaved
across categories and the measurement stops as soon as the remaining cases cannot change the
verdict against the bar. The counts are cached in the store's ``state`` table under a key of
the model file's identity (its sha256 where known), the judge settings, the prompt and the
cases, so it runs once per judge model, not every night; changing any of them measures again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources
from itertools import zip_longest
from typing import Any

from .. import catalog
from ..errors import ClawDeskError
from ..records import ModelEntry
from ..settings import Settings
from ..store import Store
from . import prompts
from .judge import Judge

Progress = Callable[[int, int, str], None]  # (done, total, what)
CASES_FILE = "labelled_cases.jsonl"
SEED = 0  # the measurement's votes are seeded: the same judge gets the same numbers


@dataclass(frozen=True)
class JudgeAccuracy:
    """A judge's sign accuracy on the labelled ±1 cases (possibly stopped early), as cached."""

    model: str
    correct: int  # verdicts with the label's sign
    judged: int  # cases judged (≤ total: the measurement stops once the verdict is settled)
    total: int  # ±1 cases available
    votes: int  # votes per case
    seconds: float
    measured_at: str

    @property
    def sign_accuracy(self) -> float:
        return self.correct / self.judged if self.judged else 0.0

    def passes(self, bar: float) -> bool | None:
        """Whether the accuracy over *all* cases is ≥ ``bar``: True/False once the judged ones
        settle it whatever the rest would give, None while they do not."""
        need = math.ceil(bar * self.total - 1e-9)
        if self.correct >= need:
            return True
        if self.correct + (self.total - self.judged) < need:
            return False
        return None

    def describe(self, bar: float, judge_hints: bool = False) -> str:
        """One line for ``clawdesk status`` / ``doctor``. ``judge_hints``: whether the judge's own
        hints are kept below the bar (``judge_hints_when_weak``), which the line then says."""
        on = self.passes(bar)
        part = "" if self.judged == self.total else f" (stopped early: {self.total - self.judged} could not change it)"
        head = f"sign accuracy {self.sign_accuracy:.2f} on {self.judged} of {self.total} labelled cases{part}"
        if on is None:
            return f"{head}; not enough to decide against judge_min_accuracy {bar}: measured again before its next implicit reward"
        if on:
            return f"{head}, at least judge_min_accuracy {bar}: implicit rewards on"
        if judge_hints:
            return (f"{head}, below judge_min_accuracy {bar}: implicit rewards off — explicit feedback, "
                    "corrections and hints teach, the judge's own hints too (judge_hints_when_weak)")
        return (f"{head}, below judge_min_accuracy {bar}: implicit rewards off — only explicit feedback and "
                "your own words teach (👎 reasons, comments, corrections; judge_hints_when_weak off)")


def load_cases() -> list[dict[str, Any]]:
    """Every labelled case shipped with the package (also what bench/judge_accuracy.py reads)."""
    text = (resources.files(__package__) / CASES_FILE).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def sign_cases(cases: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The ±1 cases, interleaved across categories (praise, correction, re-ask, …) so that a
    measurement stopped early has still seen every kind of case."""
    by_category: dict[str, list[dict[str, Any]]] = {}
    for case in cases if cases is not None else load_cases():
        if case["label"] != 0:
            by_category.setdefault(case["category"], []).append(case)
    return [c for row in zip_longest(*by_category.values()) for c in row if c is not None]


def judge_entry(store: Store, settings: Settings) -> ModelEntry:
    """The judge model: ``judge_model`` if set, else the chat model's base GGUF."""
    return (catalog.resolve(store, settings.judge_model) if settings.judge_model
            else catalog.current_model(store, settings))


def cache_key(entry: ModelEntry, settings: Settings) -> str:
    """What a measurement is valid for: the model file, the judge settings, prompt and cases.
    The file's sha256 where the catalog knows it (bundled and added models), else its path, size
    and modification time — hashing a multi-GB file every night would cost more than it saves."""
    if entry.sha256:
        identity = entry.sha256
    else:
        st = os.stat(entry.path)
        identity = f"{entry.path}:{st.st_size}:{st.st_mtime_ns}"
    parts = {"model": identity, "votes": settings.judge_votes, "temperature": settings.judge_temperature,
             "grammar": settings.judge_grammar, "max_tokens": settings.judge_max_tokens,
             "prompt": prompts.PRM_SYSTEM + prompts.PRM_USER + prompts.PRM_GRAMMAR,
             "cases": json.dumps(sign_cases(), sort_keys=True), "seed": SEED}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def cached(store: Store, settings: Settings) -> JudgeAccuracy | None:
    """The stored measurement for the judge as configured now, if any."""
    value = store.get_state(_state_key(store, settings))
    return JudgeAccuracy(**json.loads(value)) if value else None


def measure(judge: Judge, bar: float | None, progress: Progress | None = None) -> JudgeAccuracy:
    """Run the judge over the ±1 cases; stop once the verdict against ``bar`` is settled (None:
    judge every case, for a full number)."""
    cases = sign_cases()
    say = progress or (lambda *_: None)
    start = time.perf_counter()
    correct = judged = 0
    result = JudgeAccuracy(judge.model_name, 0, 0, len(cases), judge.votes, 0.0, "")
    for case in cases:
        say(judged, len(cases), f"{case['category']}: {correct}/{judged} right")
        verdict = judge.reward(case["request"], case["response"], case["next_state"], case.get("role", "user"))
        judged += 1
        correct += int(verdict.value == case["label"])
        result = JudgeAccuracy(judge.model_name, correct, judged, len(cases), judge.votes, 0.0, "")
        if bar is not None and result.passes(bar) is not None:
            break
    say(len(cases), len(cases), f"{correct}/{judged} right")
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return JudgeAccuracy(judge.model_name, correct, judged, len(cases), judge.votes,
                         round(time.perf_counter() - start, 1), now)


def implicit_rewards_on(store: Store, settings: Settings, engine: Any,
                        progress: Progress | None = None) -> tuple[bool, JudgeAccuracy | None]:
    """Whether implicit rewards may be used with the judge as configured: the cached measurement
    if it settles the question, else a new one (on ``engine``, the judge's), stored for next time.
    ``judge_min_accuracy`` 0 switches the check off."""
    bar = settings.judge_min_accuracy
    if bar <= 0:
        return True, None
    found = cached(store, settings)
    if found is None or found.passes(bar) is None:
        found = measure(Judge.from_settings(engine, settings, seed=SEED), bar, progress)
        save(store, settings, found)
    return bool(found.passes(bar)), found


def status_line(store: Store, settings: Settings) -> str:
    """Where the judge stands, in one line (``clawdesk status`` and ``doctor``)."""
    bar = settings.judge_min_accuracy
    try:
        name = judge_entry(store, settings).name
        found = cached(store, settings)
    except (ClawDeskError, OSError) as e:
        return f"unavailable ({e})"
    if bar <= 0:
        return f"{name}: accuracy check off (judge_min_accuracy = 0): implicit rewards on"
    if found is None:
        return (f"{name}: not measured yet — measured once ({len(sign_cases())} labelled cases × "
                f"{settings.judge_votes} votes at most) before its first implicit reward, or now with "
                "`clawdesk judge --check`")
    return f"{name}: {found.describe(bar, settings.judge_hints_when_weak)}"


def save(store: Store, settings: Settings, result: JudgeAccuracy) -> None:
    """Cache ``result`` for the judge as configured now."""
    store.set_state(_state_key(store, settings), json.dumps(asdict(result)))


def _state_key(store: Store, settings: Settings) -> str:
    return f"judge_accuracy:{cache_key(judge_entry(store, settings), settings)}"
