"""Simulated users' preferences as data, and the programs that score replies against them.

A scenario (one TOML file in ``bench/scenarios/``) is a written preference a person really has,
the rules that check it, what the person says when it is not met, and two disjoint prompt pools
(training and held out). Rules come from a small fixed set of kinds implemented here
(``RULE_KINDS``); their parameters come from the file, so a new scenario needs no code.

Scoring a reply (no model anywhere in it):

- **compliance** = the fraction of the scenario's rules the reply follows;
- **answers** = the reply still answers the question: enough words once the preference's own
  phrases (greeting, summary label) are set aside, a content word shared with the prompt or with
  the prompt's keyword list, and not degenerate (a run of repeats, mostly non-words);
- **score** = compliance if it answers, else 0.

The score is what the benchmark reports. Compliance alone is gameable: a model driven by
negative rewards collapses to short gibberish that "complies" with "be brief"
(docs/platform.md, prototype experiment) — such a reply scores 0 here. Compliance is still
kept separately, to show exactly that gap.

Each rule also knows how the simulated user would *fix* a reply (``fix``): the correction a
person types — truncated, stripped of Markdown, greeted — which is then checked to still answer.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clawdesk.train.answers import answers, words  # the gate's "still answers" check: one copy for both

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

# --- rules --------------------------------------------------------------------------------------

_LIST_LINE = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s")
_EMPHASIS = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__|(?<![\w*])\*[^*\s][^*\n]*\*(?![\w*])")
_TABLE = re.compile(r"^\s*\|.*\|\s*$")


class Rule:
    """One checkable part of a preference. ``order`` sets the order fixes are applied in."""

    kind = ""
    order = 0

    def __init__(self, **params: Any) -> None:
        self.params = params

    def check(self, reply: str) -> bool:
        raise NotImplementedError

    def fix(self, reply: str) -> str:
        return reply

    def phrases(self) -> list[str]:
        """Text this rule asks for (a greeting, a label) — not evidence that the reply answers."""
        return []


class NoMarkdown(Rule):
    """Plain sentences: no list items, headings, bold/italics, tables or code fences."""

    kind, order = "no_markdown", 0

    def check(self, reply: str) -> bool:
        for line in reply.splitlines():
            if _LIST_LINE.match(line) or _HEADING.match(line) or _TABLE.match(line) or "```" in line:
                return False
        return not _EMPHASIS.search(reply)

    def fix(self, reply: str) -> str:
        """What a person does: drop the markers, turn each item into a sentence, one paragraph."""
        sentences = []
        for line in reply.splitlines():
            line = _HEADING.sub("", _LIST_LINE.sub("", line)).replace("```", "").strip(" |")
            line = re.sub(r"\*\*|__|(?<!\w)\*|\*(?!\w)", "", line).strip()
            if not line:
                continue
            if line[-1] not in ".!?:":
                line += "."
            sentences.append(line[0].upper() + line[1:])
        return " ".join(sentences)


class MaxWords(Rule):
    """At most ``n`` words."""

    kind, order = "max_words", 1

    @property
    def n(self) -> int:
        return int(self.params.get("n", 30))

    def check(self, reply: str) -> bool:
        return len(words(reply)) <= self.n

    def fix(self, reply: str) -> str:
        """Keep whole sentences while they fit; if that leaves less than half the budget, fill it
        with the start of the next sentence. Bare enumerators ("1.") are not sentences."""
        if self.check(reply):
            return reply
        sentences = [re.sub(r"[:\s]+\d+[.)]$", ".", s)  # "... as follows: 1." → "... as follows."
                     for s in re.split(r"(?<=[.!?])\s+", " ".join(reply.split())) if not re.fullmatch(r"\d+[.)]", s)]
        kept: list[str] = []
        for s in sentences:
            if len(words(" ".join(kept + [s]))) > self.n:
                if len(words(" ".join(kept))) < self.n // 2:
                    room = self.n - len(" ".join(kept).split())
                    kept.append(" ".join(s.split()[:room]).rstrip(",;:-") + ".")
                break
            kept.append(s)
        return " ".join(kept)


class StartsWith(Rule):
    """Begins with ``text`` (e.g. "Hi Sam"), ignoring case and leading whitespace."""

    kind, order = "starts_with", 2

    @property
    def text(self) -> str:
        return str(self.params["text"])

    def check(self, reply: str) -> bool:
        return reply.lstrip().lower().startswith(self.text.lower())

    def fix(self, reply: str) -> str:
        if self.check(reply):
            return reply
        greeting = self.params.get("fix_with", self.text + "!")
        return f"{greeting} {reply.lstrip()}"

    def phrases(self) -> list[str]:
        return [self.text]


class EndsWithSummary(Rule):
    """The last line starts with ``label`` (e.g. "In short:") and is one short line."""

    kind, order = "ends_with_summary", 3

    @property
    def label(self) -> str:
        return str(self.params.get("label", "In short:"))

    @property
    def max_words(self) -> int:
        return int(self.params.get("max_words", 25))

    def check(self, reply: str) -> bool:
        """The label's last occurrence follows some answer, and what comes after it is one line
        of 1..max_words words with nothing below it."""
        text = reply.strip()
        at = text.lower().rfind(self.label.lower())
        if at <= 0:
            return False
        tail = text[at + len(self.label):].strip()
        return "\n" not in tail and 1 <= len(words(tail)) <= self.max_words

    def fix(self, reply: str) -> str:
        """Append a summary: the label and the reply's first sentence, cut to the word limit."""
        if self.check(reply):
            return reply
        body = reply.strip()
        first = re.split(r"(?<=[.!?])\s+", " ".join(NoMarkdown().fix(body).split()))[0]
        first = " ".join(first.split()[: self.max_words]).rstrip(",;:")
        first = first if first.endswith((".", "!", "?")) else first + "."
        return f"{body}\n{self.label} {first}"

    def phrases(self) -> list[str]:
        return [self.label]


RULE_KINDS: dict[str, type[Rule]] = {r.kind: r for r in (NoMarkdown, MaxWords, StartsWith, EndsWithSummary)}


def make_rule(spec: dict[str, Any]) -> Rule:
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in RULE_KINDS:
        raise ValueError(f"unknown rule kind {kind!r}; known: {', '.join(sorted(RULE_KINDS))}")
    return RULE_KINDS[kind](**spec)


# --- scenarios ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prompt:
    text: str
    keywords: tuple[str, ...] = ()
    reference: str = ""  # optional: an answer the simulated user can correct from


@dataclass
class Score:
    score: float  # compliance if the reply answers, else 0
    compliance: float  # fraction of rules followed
    answers: bool
    why_not: str = ""  # '' or why the reply does not answer
    failed_rules: list[str] = field(default_factory=list)


@dataclass
class Scenario:
    name: str
    preference: str
    rules: list[Rule]
    complaints: list[str]
    train: list[Prompt]
    heldout: list[Prompt]
    thumbs_down_reason: str = "other"
    min_answer_words: int = 5
    description: str = ""

    def set_aside(self) -> list[str]:
        return [p for r in self.rules for p in r.phrases()]

    def score(self, reply: str, prompt: Prompt) -> Score:
        failed = [r.kind for r in self.rules if not r.check(reply)]
        compliance = 1.0 - len(failed) / len(self.rules)
        a = answers(reply, prompt.text, prompt.keywords, self.set_aside(), self.min_answer_words)
        return Score(compliance if a.ok else 0.0, compliance, a.ok, a.reason, failed)

    def correct(self, reply: str, prompt: Prompt) -> str | None:
        """The corrected reply the simulated user writes: the reply (or, if the reply does not
        answer and the prompt has one, the reference answer) with every rule's fix applied.
        None when the person could not write a correction that answers and follows the wish."""
        candidates = [reply] + ([prompt.reference] if prompt.reference else [])
        for text in candidates:
            fixed = text
            for rule in sorted(self.rules, key=lambda r: r.order):
                fixed = rule.fix(fixed)
            s = self.score(fixed, prompt)
            if s.score == 1.0:
                return fixed
        return None


def _prompt(entry: str | dict[str, Any]) -> Prompt:
    if isinstance(entry, str):
        return Prompt(entry)
    return Prompt(entry["prompt"], tuple(entry.get("keywords", ())), entry.get("reference", ""))


def load_scenario(path: Path) -> Scenario:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    rules = [make_rule(spec) for spec in data["rules"]]
    if not rules:
        raise ValueError(f"{path}: a scenario needs at least one rule")
    train = [_prompt(e) for e in data["train"]]
    heldout = [_prompt(e) for e in data["heldout"]]
    overlap = {p.text for p in train} & {p.text for p in heldout}
    if overlap:
        raise ValueError(f"{path}: training and held-out prompts overlap: {sorted(overlap)}")
    return Scenario(name=data.get("name", path.stem), preference=data["preference"], rules=rules,
                    complaints=list(data["complaints"]), train=train, heldout=heldout,
                    thumbs_down_reason=data.get("thumbs_down_reason", "other"),
                    min_answer_words=int(data.get("min_answer_words", 5)),
                    description=data.get("description", ""))


def load_scenarios(names: list[str] | None = None, folder: Path = SCENARIO_DIR) -> list[Scenario]:
    """All scenarios in ``folder`` (sorted by name), or the named ones in the order given."""
    found = {p.stem: p for p in sorted(folder.glob("*.toml"))}
    if names:
        unknown = [n for n in names if n not in found]
        if unknown:
            raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(found)}")
        return [load_scenario(found[n]) for n in names]
    return [load_scenario(p) for p in found.values()]
