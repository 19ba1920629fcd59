"""Does a reply still answer the question? One check, used by the promotion gate and the benchmarks.

A model pushed by negative rewards can collapse into short gibberish that "complies" with a wish
like "be brief" (docs/platform.md, prototype experiment); this check is what tells such a reply
from an answer. A reply answers when:

- it has enough words once the preference's own phrases (a greeting, a summary label) are set
  aside — those are not an answer;
- it is not degenerate: mostly plausible words (letters with a vowel, or numbers), not a loop of
  the same few words, or the same four-word span three times;
- it shares a content word (crudely stemmed, stop words left out) with the prompt or with the
  prompt's keyword list.

Two false verdicts found by reading the headline grid's failed replies (docs/choosing-defaults.md,
session 16), both fixed for base and trained replies alike: naming the subject three times in a
long reply ("the stock market", "the greenhouse effect") is not a loop, so a span made of the
prompt's topic words and stop words does not count towards the loop rule; and "magnetism"
answers "How do magnets work?", so a stem also matches a longer word it begins (five letters at
least: ``related``).

A third, from the same kind of reading (session 21), decided before the grid that measures with it
and applied to base and trained replies alike: a loop was "a trigram three times", and ordinary
replies of 120 words repeat a noun phrase that often ("the Earth's crust", "the front camera") or
open list items alike ("- You'll need …", where the lone "-" counted as a word). A loop repeats a
clause, so the rule now asks for a span of four words three times, and a token with no letter or
digit is not a word. A model that collapses into a loop repeats whole sentences and is still caught.
The non-word ratio follows (session 22, decided before any grid measured with it): a list marker
or a dash is left out of it, so a list of two-word items is not "non-words"; symbols that mark
nothing (";;;", "%%%") still count against a reply.

The gate once had a looser copy (no non-word test), so a candidate answering in non-words could
pass it while the benchmark scored the same replies 0; now both call ``answers``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has
have having he her here hers herself him himself his how i if in into is it its itself just let me
more most my myself no nor not now of off on once only or other our ours ourselves out over own same
she should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves get got make made use used one two many much way thing things
well really tell give good best like need want know think explain describe please simple simply
""".split())

LOOP_SPAN = 4  # words: a loop repeats a clause; prose repeats a noun phrase ("the Earth's crust")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+(?:[.,]\d+)?")
_VOWEL = re.compile(r"[aeiouyAEIOUY]")
# A list item's or heading's marker, a dash between clauses: neither a word nor a non-word. Counted
# as a non-word, a list of two-word items ("- warm socks") read as gibberish (session 22).
_MARKER = re.compile(r"[-–—•*+#>|]+")


def words(text: str) -> list[str]:
    """Whitespace-separated words with their surrounding punctuation stripped. A token with no letter
    or digit is not a word: counting a list's "-" or a dash between clauses made a bulleted list
    read as a loop ("- You'll need" three times) and as longer than it is."""
    out = []
    for raw in text.split():
        w = raw.strip("\"'“”‘’()[]{}<>.,;:!?*_#`~|")
        if any(c.isalnum() for c in w):
            out.append(w)
    return out


def stem(word: str) -> str:
    """A crude suffix stripper: enough to match 'plants'/'plant', 'boiling'/'boil' and
    'hobbies'/'hobby' (a greet reply about hobbies was once called off topic for "a hobby")."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if w.endswith("ies") and len(w) >= 6:
        return w[:-3] + "y"
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)]
    return w


def content_stems(text: str) -> set[str]:
    """The stems of the words that carry meaning: no stop words, numbers or words under 3 letters."""
    return {stem(w) for w in _WORD.findall(text) if w.lower() not in STOPWORDS and len(w) >= 3
            and not w[0].isdigit()}


@dataclass
class Answering:
    """The verdict, with the reason a benchmark reports next to a score of 0."""

    ok: bool
    reason: str  # '' when ok, else why not: too short | off topic | repetitive | non-words


def related(a: str, b: str) -> bool:
    """Two stems of one word family: equal, or one (of five letters at least) begins the other."""
    short, long = sorted((a, b), key=len)
    return short == long or (len(short) >= 5 and long.startswith(short))


def on_topic(stems: set[str], topic: set[str]) -> bool:
    return any(related(s, t) for s in stems for t in topic)


def _names_the_topic(span: tuple[str, ...], topic: set[str]) -> bool:
    """A span of topic words and stop words with one topic word at least: the subject named."""
    content = [w for w in span if w not in STOPWORDS]
    return bool(content) and all(on_topic({stem(w)}, topic) for w in content)


def degenerate(text: str, topic: Iterable[str] = ()) -> str:
    """'' for ordinary text; 'repetitive' or 'non-words' for what a collapsed model emits.
    ``topic``: the prompt's stems; a span that only names them is not a loop (module docstring)."""
    toks = [t for t in text.split() if not _MARKER.fullmatch(t)]
    if not toks:
        return "non-words"
    plausible = sum(1 for t in toks if _WORD.search(t) and (_VOWEL.search(t) or t.strip(".,;:!?").isdigit())
                    and len(t.strip(".,;:!?\"'()")) <= 24)
    if plausible / len(toks) < 0.7:
        return "non-words"
    lower = [w.lower() for w in words(text)]
    if len(lower) >= 10 and len(set(lower)) / len(lower) < 0.35:
        return "repetitive"
    if len(lower) >= 12:
        topic = set(topic)
        spans = Counter(t for t in zip(*(lower[i:] for i in range(LOOP_SPAN))) if not _names_the_topic(t, topic))
        if spans and spans.most_common(1)[0][1] >= 3:
            return "repetitive"
    return ""


def answers(reply: str, prompt: str, keywords: Iterable[str] = (), set_aside: Iterable[str] = (),
            min_words: int = 5) -> Answering:
    """Does ``reply`` still answer ``prompt`` (see the module docstring)? ``keywords`` widen what
    counts as on topic; ``set_aside`` are phrases a wish asks for, removed before counting."""
    body = reply
    for phrase in set_aside:  # a greeting or a summary label is not an answer
        body = re.sub(re.escape(phrase), " ", body, flags=re.IGNORECASE)
    if len(words(body)) < min_words:
        return Answering(False, "too short")
    topic = content_stems(prompt) | {stem(k) for k in keywords}
    why = degenerate(body, topic)
    if why:
        return Answering(False, why)
    if not on_topic(content_stems(body), topic):
        return Answering(False, "off topic")
    return Answering(True, "")
