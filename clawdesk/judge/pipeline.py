"""judge_pending: logged turns → judged samples (docs/method.md §1–§3, §7.1).

For every assistant message not yet judged:

1. ``signals.find_next_state`` finds its next state. Explicit feedback sets the reward; otherwise
   the PRM judge reads (request, response, next state) and m votes decide (ties/all-failed → 0).
2. The hint judge reads the same text whenever there is text to read; hints from its +1 votes join
   the user's own corrections and comments (always candidates).
3. One sample per message is written (``source`` explicit | judge), ready or dropped with a reason:
   "no next state" (re-examined on later passes: the conversation may go on), "judge: all votes
   failed", "reward 0 and no hint", "no token ids logged". A correction adds a ``demo`` sample
   whose response is the corrected text in the chat model's tokens (docs/method.md §7.1).

Idempotent: a message is judged again only when its next state changed (new feedback, a reply
arrived) or when asked (``rejudge``). Failed votes are stored verbatim and counted; a failed
judgement never becomes a reward.

Before the first implicit reward (step 1's judge verdict) a pass checks that the judge is good
enough to give one (``accuracy``: measured once per judge model, cached); below
``judge_min_accuracy`` no reward votes are cast, the turn keeps its hints, and without any it is
dropped as "implicit reward off".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import catalog
from ..engine import Engine, Vocab
from ..records import Judgement, Message, NextState, Sample
from ..settings import Settings
from ..signals import find_next_state, turn_messages
from ..store import Store
from .accuracy import implicit_rewards_on, judge_entry
from .judge import Judge
from .parse import select_hints
from .transfer import transfer_edits

Progress = Callable[[int, int, str], None]  # (done, total, what) for a progress bar

PRIMARY_SOURCES = ["explicit", "judge"]
IMPLICIT_OFF = "implicit reward off: the judge is below judge_min_accuracy"


@dataclass
class JudgeReport:
    """What one judging pass did (or, with dry_run, would do)."""

    examined: int = 0  # assistant messages whose signals were read
    explicit: int = 0  # samples whose reward came from explicit feedback
    judged: int = 0  # samples the PRM judge scored
    demos: int = 0  # demonstration samples from corrections
    transfers: int = 0  # a correction's edit repeated on other replies (judge/transfer.py)
    ready: int = 0
    dropped: int = 0
    votes: int = 0  # judge votes cast (reward + hint)
    failed_votes: int = 0  # votes without a parsable \\boxed{}
    purged: int = 0  # samples removed because their message/conversation is now excluded
    judge_model: str = ""
    implicit_rewards: bool | None = None  # None: no turn needed one this pass
    judge_accuracy: float | None = None  # the judge's measured sign accuracy, when checked
    implicit_off: int = 0  # turns whose implicit reward was not used (the judge is below the bar)
    dry_run: bool = False
    samples: list[Sample] = field(default_factory=list)  # produced (or, dry run, would be)


def open_judge_engine(store: Store, settings: Settings) -> Engine:
    """The judge model as a separate engine *without* any adapter: a frozen judge (docs/method.md §2)."""
    entry = judge_entry(store, settings)
    engine = Engine(entry.path, n_ctx=settings.n_ctx, n_threads=settings.n_threads)
    engine.model_name = entry.name
    return engine


def pending(store: Store, rejudge: bool = False) -> list[tuple[Message, NextState]]:
    """Assistant messages whose sample is missing or out of date, with their next state.

    A sample is out of date when the next state it was built from (``Sample.next_state``, which
    includes a summary of the explicit feedback) differs from the current one — unless it was
    already trained on ('used').

    Only the store's change queue is read (turns never judged, or whose signals changed since a
    pass last found them up to date), so a pass costs what changed, not the whole history; the
    turns found up to date are settled off the queue. ``rejudge`` reads every turn."""
    if rejudge:
        return [(msg, find_next_state(store, msg)) for msg in store.assistant_messages()]
    out, settled = [], []
    for msg, seq in store.changed_turns():
        ns = find_next_state(store, msg)
        if _up_to_date(store, msg, ns):
            settled.append((msg.id, seq))
        else:
            out.append((msg, ns))
    store.settle_turns(settled)
    return out


def _up_to_date(store: Store, msg: Message, ns: NextState) -> bool:
    current = [s for s in store.samples_for(msg.id) if s.source in PRIMARY_SOURCES]
    if current and current[0].status == "used":
        return True  # already trained on: a late signal must not train the same turn twice
    return bool(current) and current[0].source == _source(ns) and current[0].next_state == ns.summary


def judge_pending(store: Store, settings: Settings, judge_engine: Engine | None = None, limit: int | None = None,
                  dry_run: bool = False, rejudge: bool = False, progress: Progress | None = None,
                  judge: Judge | None = None, check_progress: Progress | None = None) -> JudgeReport:
    """Judge every pending turn (at most ``limit``) and write its samples.

    ``dry_run`` reads the signals and reports what would be produced without loading a model or
    writing anything (turns that need the judge show as status 'needs judge'). The judge engine is
    loaded only when some turn needs it, and closed again if this function opened it. The judge's
    accuracy is checked (``accuracy``; ``check_progress`` reports a first measurement) only when
    some turn needs an implicit reward."""
    report = JudgeReport(dry_run=dry_run)
    if not dry_run:
        report.purged = store.purge_excluded_samples()
    todo = pending(store, rejudge=rejudge)
    if limit is not None:
        todo = todo[:limit]
    opened = None
    vocabs: dict[str, Vocab] = {}
    try:
        for done, (msg, ns) in enumerate(todo):
            if progress:
                progress(done, len(todo), f"message {msg.id}")
            if judge is None and not dry_run and _needs_judge(ns):
                judge_engine = judge_engine or (opened := open_judge_engine(store, settings))
                judge = Judge.from_settings(judge_engine, settings)
            # the judge is checked before its first implicit reward, or its first hint when a weak
            # judge's hints are not kept
            asks = ns.source == "judge" or (bool(ns.text) and not settings.judge_hints_when_weak)
            if report.implicit_rewards is None and judge is not None and asks:
                report.implicit_rewards, measured = implicit_rewards_on(store, settings, judge.engine, check_progress)
                report.judge_accuracy = measured.sign_accuracy if measured else None
            samples = build_samples(store, msg, ns, None if dry_run else judge,
                                    lambda m: _chat_vocab(store, settings, m, judge, vocabs),
                                    implicit=report.implicit_rewards is not False,
                                    judge_hints=settings.judge_hints_when_weak or report.implicit_rewards is not False)
            report.implicit_off += report.implicit_rewards is False and ns.source == "judge"
            report.examined += 1
            for s in samples:
                _count(report, s)
                if not dry_run:
                    s = store.upsert_sample(s)
                report.samples.append(s)
            if not dry_run:
                if not any(s.source == "demo" for s in samples):
                    store.delete_samples(msg.id, ["demo"])  # the correction was withdrawn
                stale = [src for src in PRIMARY_SOURCES if src != samples[0].source]
                store.delete_samples(msg.id, stale)  # explicit feedback overrides a judge sample
        if progress:
            progress(len(todo), len(todo), "done")
        moved = transfer_edits(store, settings, lambda m: _chat_vocab(store, settings, m, judge, vocabs), dry_run)
        report.transfers, report.samples = len(moved.samples), report.samples + moved.samples
    finally:
        if opened is not None:
            opened.close()
        for v in vocabs.values():
            v.close()
    report.judge_model = judge.model_name if judge else ""
    return report


def build_samples(store: Store, msg: Message, ns: NextState, judge: Judge | None,
                  vocab_for: Callable[[Message], Vocab | Engine], implicit: bool = True,
                  judge_hints: bool = True) -> list[Sample]:
    """The primary sample of one turn, plus a demonstration when the user corrected it.
    ``judge`` None means dry run: judge-needing samples come back with status 'needs judge'.
    ``implicit`` False (the judge is below ``judge_min_accuracy``): no reward votes are cast; the
    turn keeps its hints, and without any is dropped as IMPLICIT_OFF. ``judge_hints`` False: the
    judge is not asked for hints, so only the user's own (a reason, a comment) are kept."""
    request = next((m["content"] for m in reversed(turn_messages(store, msg)) if m["role"] == "user"), "")
    base = Sample(id=0, message_id=msg.id, conversation_id=msg.conversation_id,
                  prompt_token_ids=list(msg.prompt_token_ids or []),
                  response_token_ids=list(msg.response_token_ids or []), reward=None, source=_source(ns),
                  status="ready", next_state=ns.summary, prompt_messages=turn_messages(store, msg))
    if not msg.prompt_token_ids or not msg.response_token_ids:
        return [_drop(base, "no token ids logged")]
    if ns.source == "none":
        return [_drop(base, "no next state")]
    hint_votes: Judgement | None = None
    if judge is not None and ns.text and judge_hints:
        hint_votes = judge.hints(request, msg.content, ns.text, ns.role)
        base.votes += [_vote("hint", v) for v in hint_votes.votes]
        base.judge_model = judge.model_name
    judge_hints = [v.hint for v in hint_votes.votes if v.value == 1 and v.hint] if hint_votes else []
    base.hints = select_hints(judge_hints, ns.hints)

    if ns.source == "explicit":
        base.reward = ns.reward
        base.votes = [{"kind": "feedback", "text": ns.feedback, "value": ns.reward}] + base.votes
    elif judge is None:
        base.status, base.drop_reason = "needs judge", ""
    elif not implicit:
        base.reward = 0.0  # no RL term: the judge's sign is not to be trusted
        if not base.hints:
            _drop(base, IMPLICIT_OFF)
    else:
        verdict = judge.reward(request, msg.content, ns.text, ns.role)
        base.votes = [_vote("reward", v) for v in verdict.votes] + base.votes
        base.judge_model = judge.model_name
        if verdict.valid == 0:
            # docs/method.md §2: all-failed gives 0 — no RL term; the failure stays visible
            base.reward = 0.0
            if not base.hints:
                _drop(base, "judge: all votes failed")
        else:
            base.reward = float(verdict.value)
    base.failed_votes = sum(1 for v in base.votes if v["kind"] != "feedback" and v["value"] is None)
    if base.status == "ready" and not base.reward and not base.hints:
        _drop(base, "reward 0 and no hint")
    out = [base]
    if ns.correction.strip():
        out.append(_demo(base, msg, ns.correction, vocab_for(msg)))
    return out


def _demo(base: Sample, msg: Message, corrected: str, vocab: Vocab | Engine) -> Sample:
    """docs/method.md §7.1: the corrected answer as an off-policy positive example. Its response ids are
    the correction in the chat model's tokens plus the end-of-turn token — the one this message
    ended with if it finished normally, else the model's EOS (<|im_end|> in ChatML models)."""
    logged = msg.response_token_ids or []
    eot = logged[-1] if msg.finish_reason == "stop" and logged else _eos(vocab)
    return Sample(id=0, message_id=msg.id, conversation_id=msg.conversation_id,
                  prompt_token_ids=list(base.prompt_token_ids),
                  response_token_ids=vocab.tokenize(corrected.strip()) + [eot], reward=None, source="demo",
                  status="ready", next_state=base.next_state, prompt_messages=list(base.prompt_messages))


def _eos(vocab: Vocab | Engine) -> int:
    return vocab.eos_id() if isinstance(vocab, Vocab) else vocab._llm.token_eos()


def _chat_vocab(store: Store, settings: Settings, msg: Message, judge: Judge | None,
                cache: dict[str, Vocab]) -> Vocab | Engine:
    """The tokenizer of the model that wrote ``msg``: the judge engine if it is the same file,
    else a vocab-only load (cached for the pass)."""
    if judge is not None and msg.model in (judge.engine.model_name or None,
                                           Path(judge.engine.model_path).stem):
        return judge.engine
    path = catalog.written_with(store, settings, msg.model)
    if judge is not None and judge.engine.model_path == path:
        return judge.engine
    if path not in cache:
        cache[path] = Vocab(path)
    return cache[path]


def _needs_judge(ns: NextState) -> bool:
    return bool(ns.text)  # reward votes for judge signals, hint votes for any readable next state


def _source(ns: NextState) -> str:
    return "explicit" if ns.source == "explicit" else "judge"


def _drop(sample: Sample, reason: str) -> Sample:
    sample.status, sample.drop_reason = "dropped", reason
    return sample


def _vote(kind: str, vote) -> dict:
    return {"kind": kind, "text": vote.text, "value": vote.value, "hint": vote.hint}


def _count(report: JudgeReport, s: Sample) -> None:
    if s.source == "demo":
        report.demos += 1
    elif s.source == "explicit":
        report.explicit += 1
    elif any(v["kind"] == "reward" for v in s.votes):
        report.judged += 1
    report.ready += s.status == "ready"
    report.dropped += s.status == "dropped"
    judge_votes = [v for v in s.votes if v.get("kind") != "feedback"]
    report.votes += len(judge_votes)
    report.failed_votes += s.failed_votes
