"""Before and after: the same recent prompts answered by two versions, greedily.

``clawdesk adapters diff`` prints it and the chat's "What I learned" shows it for the last
promotion, so both call this module. Decoding is greedy (temperature 0): the two columns then
differ only by the weights, and running it again gives the same text.

After a promotion from the chat's "Learn now" the child process computes the new version
against its parent at once and keeps the result with the run (``metrics["before_after"]``):
the child has just finished with the model and the chat's own engine is busy answering, so the
view opens instantly and no second model copy is ever loaded in the chat's process. What the
person sees is what the version changed *when it was promoted*, on the prompts of that moment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from .. import catalog
from ..engine import Engine
from ..errors import ClawDeskError
from ..records import Message
from ..settings import Settings
from ..store import Store


@dataclass(frozen=True)
class Side:
    """What one column is answered with: an adapter on the base model, or a merged model file."""

    label: str  # "base", "v3", "served (v3)"
    adapter_path: str | None = None
    merged_path: str | None = None


def side(store: Store, version: str | int | None) -> Side:
    """``version``: a number, "base", or None for whatever is served now."""
    if version is None:
        served = store.served_version()
        if served is None:
            return Side("served (base)")
        s = side(store, served)
        return Side(f"served ({s.label})", s.adapter_path, s.merged_path)
    if isinstance(version, str) and version.lower() == "base":
        return Side("base")
    a = store.get_adapter(int(version))
    if a.kind == "merged":
        return Side(f"v{a.version}", merged_path=a.gguf_path)
    return Side(f"v{a.version}", adapter_path=a.gguf_path)


def recent_prompts(store: Store, count: int) -> list[Message]:
    """The person's newest distinct prompts (short ones: a pasted page is no quick comparison)."""
    seen: set[str] = set()
    out: list[Message] = []
    if count <= 0:
        return out
    for conv in store.list_conversations(limit=50):
        for m in reversed(store.messages(conv.id)):
            if m.role == "user" and m.content not in seen and len(m.content) < 500:
                seen.add(m.content)
                out.append(m)
                if len(out) >= count:
                    return out
    return out


def answer(store: Store, settings: Settings, s: Side, prompts: list[str], max_tokens: int,
           on_answer: Callable[[int], None] | None = None) -> list[str]:
    """Each prompt answered on its own (no history, no persona), greedily, by ``s``."""
    base = catalog.current_model(store, settings).path
    engine = Engine(s.merged_path or base, n_ctx=settings.n_ctx, n_threads=settings.n_threads,
                    adapter_path=s.adapter_path)
    try:
        out = []
        for p in prompts:
            out.append(engine.generate([{"role": "user", "content": p}], temperature=0, max_tokens=max_tokens,
                                       repeat_penalty=settings.repeat_penalty).text)
            if on_answer:
                on_answer(len(out))
        return out
    finally:
        engine.close()


@dataclass
class BeforeAfter:
    """A promoted version against its parent on the person's recent prompts."""

    version: int
    before_label: str  # the parent: "v2" or "base"
    prompts: list[str]
    before: list[str]
    after: list[str]
    max_tokens: int
    at: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BeforeAfter:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def before_after(store: Store, settings: Settings, version: int,
                 progress: Callable[[int, int], None] | None = None) -> BeforeAfter | None:
    """Compare ``version`` with its parent on the newest ``learn_compare_prompts`` prompts;
    None when there are no prompts yet. ``progress(done, total)`` counts answers."""
    prompts = [m.content for m in recent_prompts(store, settings.learn_compare_prompts)]
    if not prompts:
        return None
    parent = store.get_adapter(version).parent_version
    before_side = side(store, parent if parent is not None else "base")
    total = 2 * len(prompts)
    say = progress or (lambda done, total: None)
    n = settings.learn_compare_tokens
    before = answer(store, settings, before_side, prompts, n, lambda i: say(i, total))
    after = answer(store, settings, side(store, version), prompts, n, lambda i: say(len(prompts) + i, total))
    return BeforeAfter(version, before_side.label, prompts, before, after, n,
                       datetime.now(timezone.utc).isoformat(timespec="seconds"))


def store_with_run(store: Store, run_id: int, result: BeforeAfter) -> None:
    """Keep the comparison in the run's metrics, beside its curves."""
    run = store.get_run(run_id)
    store.update_run(run_id, metrics={**run.metrics, "before_after": asdict(result)})


def last_before_after(store: Store) -> BeforeAfter | None:
    """The newest promoted run's comparison, if one was kept."""
    for run in store.runs(limit=20):
        found = run.metrics.get("before_after")
        if run.status == "promoted" and found:
            try:
                return BeforeAfter.from_dict(found)
            except TypeError as e:
                raise ClawDeskError(f"Run {run.id}'s before/after record is damaged ({e}); "
                                    f"`clawdesk adapters diff` recomputes it.") from None
    return None
