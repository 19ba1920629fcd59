"""For what the rules miss: a local model picks the clause of the user's words that states a
lasting wish — and can pick nothing else.

The hint judge of docs/method.md §3 writes a free-form hint; on the bundled 135M model such text
is mostly noise, and a wrong wish would sit in every prompt from then on. So this judge does not
write: a GBNF grammar built from the person's own text allows exactly ``WISH: <one of its
clauses>`` or ``NONE``. Whatever it answers is grounded in what the person said; the model only
decides *which* part is a wish about every reply. It votes ``judge_votes`` times at the judge
temperature, and a clause needs a strict majority.

``extract_pending`` is the batch entry point (``clawdesk memory extract``, and the nightly pass):
it reads the feedback comments and the complaint-like messages written since its last run, skips
those the rules already understood, and meets each found wish with the profile exactly as a rule's
would be (tombstones included: a deleted wish is not re-learned from the same turns).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..engine import Engine
from ..records import WishSource
from ..settings import Settings
from ..store import Store
from .rules import Candidate, extract
from .service import Learned, Memory

SYSTEM = """You read what a user wrote about an assistant's reply.
Part of it may be a lasting wish about how every future answer should be: its length, format, tone, language, how to address the user, or how to start or end.
If so, copy that part exactly after "WISH: ". If nothing in it is a lasting wish (a question, a fact, a request about this one answer, thanks), answer NONE."""

USER = """What the user wrote:
{text}

Copy the lasting wish after "WISH: ", or answer NONE."""

MAX_WORDS = 60  # longer texts are rewritten answers or new requests, not remarks about a reply
STATE_KEY = "memory_judge_upto"  # {"feedback": id, "message": id} read so far


# A clause can be a wish only if it asks for something or states a preference; the rest ("thanks,
# that helped", "Paris is the capital") is never offered to the model. On the 135M model this
# filter does most of the work: left to choose among every clause it picks the first one.
_WISHY = re.compile(r"\b(?:i (?:prefer|like|love|want|need|hate|'d like|would like|'d rather|would rather|"
                    r"don't like|do not like)|please|you should|make sure|remember|always|never|from now on)\b|"
                    r"^(?:use|avoid|stop|keep|be|write|answer|reply|talk|speak|give|include|add|show|put|"
                    r"don't|do not)\b", re.IGNORECASE)


# A request for this one reply ("Give me some ideas for a healthy breakfast", "Tell me about
# volcanoes", "Write a haiku") asks for something too, but for content, not for how every reply
# should be. The judge reads every message that follows a reply, the next question included, and
# on the headline grid it took a next question as a wish: it then sat in every prompt, and the
# model answered it instead of the question asked. Such a clause is a wish only when it also
# says it lasts or speaks of replies ("Give me a summary at the end of every answer").
_REQUEST = re.compile(r"^(?:please\s+)?(?:can you\s+|could you\s+)?(?:give|show|tell|write|send|find|list|explain|"
                      r"describe|suggest|recommend|teach|make|draft|create|plan)\s+(?:(?:me|us)\s+)?"
                      r"(?:a|an|the|some|any|\d+|one|two|three|few|several|more|about|how|why|what|where|when|"
                      r"who|which|ideas?|examples?|tips?|steps?)\b", re.IGNORECASE)
_LASTING = re.compile(r"\b(?:always|never|from now on|every|each|any ?more|in (?:the )?future|going forward|"
                      r"next time|answers?|replies|reply|responses?)\b", re.IGNORECASE)


def clauses(text: str) -> list[str]:
    """The parts of ``text`` that could state a wish: its sentences, split again at "; ", at
    ", but/and/so" and before a new subject (", I live in …"), kept when they ask for something
    about replies — not when they ask one question or for one reply's content (``_REQUEST``)."""
    parts = re.split(r"(?<=[.!?])\s+|;\s+|,\s+(?:but|and|so)\s+|,\s+(?=(?:i|you|it|that|this|they|we)\b)",
                     " ".join(text.split()), flags=re.IGNORECASE)
    out = []
    for p in parts:
        one_reply = p.rstrip().endswith("?")  # a question ("How can I remember names better?") too
        p = p.strip(" ,.!?")
        if len(p.split()) >= 2 and p not in out and _WISHY.search(p) and \
                (not (one_reply or _REQUEST.match(p)) or _LASTING.search(p)):
            out.append(p)
    return out


def grammar_for(options: list[str]) -> str:
    """``WISH: <an option>`` or ``NONE`` — nothing else can be sampled."""
    def literal(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    alts = " | ".join(literal(o) for o in options)
    return f'root ::= "NONE" | "WISH: " ({alts})\n'


class WishJudge:
    def __init__(self, engine: Engine, votes: int = 3, temperature: float = 0.6, seed: int | None = None) -> None:
        self.engine, self.votes, self.temperature = engine, max(1, votes), temperature
        self._rng = random.Random(seed) if seed is not None else None

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings, **overrides: Any) -> WishJudge:
        kw: dict[str, Any] = dict(votes=settings.judge_votes, temperature=settings.judge_temperature,
                                  seed=settings.judge_seed)
        kw.update(overrides)
        return cls(engine, **kw)

    def pick(self, text: str) -> str | None:
        """The clause of ``text`` a strict majority of votes calls a lasting wish, or None."""
        options = clauses(text)
        if not options:
            return None
        from llama_cpp import LlamaGrammar

        grammar = LlamaGrammar.from_string(grammar_for(options), verbose=False)
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER.format(text=text)}]
        prompt_ids, _ = self.engine.fit(messages, reserve=64)
        longest = max(len(self.engine.tokenize(o)) for o in options)
        picks: Counter[str] = Counter()
        for _ in range(self.votes):
            seed = self._rng.randrange(2**31) if self._rng else -1
            gen = self.engine.generate(prompt_ids=prompt_ids, temperature=self.temperature, top_p=1.0, top_k=40,
                                       repeat_penalty=1.0, max_tokens=longest + 8, seed=seed, grammar=grammar)
            answer = gen.text.strip()
            picks[answer[len("WISH: "):] if answer.startswith("WISH: ") else "NONE"] += 1
        best, n = picks.most_common(1)[0]
        return best if best != "NONE" and n * 2 > self.votes and best in options else None


def _as_wishes(clause: str) -> list[Candidate]:
    """The wishes a picked clause states. The rules refuse a whole message that also asks a
    question ("Too long, keep it under 30 words. How do I …?"), yet they know the clause alone:
    read that way it takes its slot, so it confirms or rewords the length wish the person already
    has instead of sitting beside it as a second, differently worded one in every prompt."""
    return extract(clause, "comment") or [Candidate(clause, "", clause)]


def _for_judge(text: str, channel: str) -> bool:
    """A remark the judge should read: short enough to be a remark, no wish the rules found, and
    some clause left to offer (none: the judge is not even loaded)."""
    return len(text.split()) <= MAX_WORDS and not extract(text, channel) and bool(clauses(text))


def extract_pending(store: Store, settings: Settings, make_judge: Callable[[], WishJudge],
                    progress: Callable[[int, int], None] | None = None) -> list[Learned]:
    """Judge the remarks written since the last run that the rules found no wish in.
    ``make_judge`` is called only when there is something to judge (loading a model takes time)."""
    if not settings.memory_learn:
        return []
    upto = json.loads(store.get_state(STATE_KEY) or '{"feedback": 0, "message": 0}')
    feedback, messages = store.memory_signals(upto["feedback"], upto["message"])
    todo: list[tuple[str, WishSource]] = []
    for fb in feedback:
        # A correction's text is the reply rewritten, and an answer's own imperatives ("Use a
        # calendar: …") read as wishes: the judge took one as a lasting wish, and the model then
        # repeated that sentence in every reply. The rules still read a correction that is an
        # instruction ("under 30 words please"); the judge reads only comments.
        text = fb.comment
        channel = "comment" if fb.kind == "comment" else "thumbs_down"
        if _for_judge(text, channel):
            todo.append((text, WishSource(fb.message_id, fb.id, None, "judge", "")))
    memory = Memory(store, settings)
    for m in messages:
        text = memory.remark(m)  # what the rules read (the message without a question asked again)
        if _for_judge(text, "message"):
            todo.append((text, WishSource(m.id, None, m.conversation_id, "judge", "")))
    learned: list[Learned] = []
    judge = make_judge() if todo else None
    for i, (text, source) in enumerate(todo):
        clause = judge.pick(text) if judge else None
        if clause:
            source = WishSource(source.message_id, source.feedback_id, source.conversation_id, "judge", clause)
            for candidate in _as_wishes(clause):
                got = memory.learn(candidate, source, origin="judge")
                if got is not None:
                    learned.append(got)
        if progress:
            progress(i + 1, len(todo))
    top_f = max([fb.id for fb in feedback], default=upto["feedback"])
    top_m = max([m.id for m in messages], default=upto["message"])
    store.set_state(STATE_KEY, json.dumps({"feedback": top_f, "message": top_m}))
    return learned
