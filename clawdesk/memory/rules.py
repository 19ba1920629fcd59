"""Explicit wishes read out of what a person wrote, by rules — no model, so it runs at once.

``extract(text, channel)`` returns the wishes a text states, each in the words the memory will
put into the prompt: an instruction in the user's own voice ("Keep every answer under 30
words.", "Call me Dana."), because the note is appended to the user's message.

The channel decides how sure we must be that a wish is *lasting*:

- ``correction``, ``comment``, ``thumbs_down`` (the 👎 comment), ``reason`` (the 👎 reason):
  the person is telling us what was wrong with a reply, so a stated wish counts;
- ``message``: the person's next message in the conversation. "Write a haiku in 30 words" is a
  request, not a wish about every answer — a message counts only when it says so ("always",
  "from now on", "call me …"), complains about the last reply ("too long", "again", "I said"),
  or is nothing but the wish ("Under 30 words please."), and then only after a reply.

A correction that rewrites the answer is not read here (it is a demonstration for training):
neither a long one nor a short one made mostly of the reply's own words. Only an instruction
typed into the correction box ("Please always begin with 'Hi Sam!'") is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CHANNELS = ("correction", "comment", "thumbs_down", "reason", "message")


@dataclass(frozen=True)
class Candidate:
    """A wish found in a text: the sentence for the prompt, its slot, the words it came from."""

    text: str
    slot: str
    quote: str


_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
            "ten": 10, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
            "hundred": 100, "a hundred": 100, "a single": 1, "a": 1}
_NUM = r"(\d{1,4}|one|two|three|four|five|six|seven|eight|nine|ten|fifteen|twenty|thirty|forty|fifty|sixty|(?:a )?hundred|a single|a)"
_I = re.IGNORECASE

_WORDS_BEFORE = re.compile(rf"\b(under|below|less than|fewer than|at most|no more than|not more than|max(?:imum)?|"
                           rf"within|up to|in|to)\s+{_NUM}\s+words?\b", _I)
_WORDS_AFTER = re.compile(rf"\b{_NUM}\s+words?\s+(max(?:imum)?|or less|or fewer|at most|tops|limit)\b", _I)
_SENTENCES = re.compile(rf"\b(?:in|at most|no more than|max(?:imum)?|under|within|to|just)\s+{_NUM}\s+sentences?\b|"
                        r"\bone[- ]liners?\b", _I)
_BRIEF = re.compile(r"\b(?:be|keep (?:it|them|this|answers|replies|your answers|your replies|things)|make (?:it|them))"
                    r"\s+(?:(?:more|very|really|a bit)\s+)?(?:short|brief|concise|shorter|briefer|succinct)\b|"
                    r"\btoo (?:long|wordy|verbose)\b|\bway too much\b|\bshorter\b|\bmore concise\b|\bless text\b|"
                    r"\bshort version\b|\bget to the point\b|\bbrief(?:er)? please\b", _I)
_FULLER = re.compile(r"\btoo (?:short|brief|terse)\b|\bmore detail(?:s|ed)?\b|\blonger answers?\b|\belaborate more\b", _I)
_NAME = re.compile(r"\b(?:call me|my name is|my name's|address me as|refer to me as)\s+([A-Za-z][\w'-]{1,30})", _I)
_NOT_NAMES = {"back", "later", "tomorrow", "now", "when", "if", "again", "after", "before", "soon", "sometime", "not",
              "a", "an", "the", "that", "it", "crazy", "old", "and", "but", "please"}
_OPEN = re.compile(r"\b(?:start|begin|open)(?: (?:every|each|all|your|the))?(?: (?:answers?|repl(?:y|ies)|responses?|"
                   r"messages?))? (with|by) (.{2,80}?)(?=$|[.!?;](?:\s|$)|,? (?:and|then) (?:then )?(?:answer|reply|give)\b)", _I)
_END = re.compile(r"\b(?:end|finish|close|conclude|sign off|wrap up)(?: (?:every|each|all|your|the))?(?: (?:answers?|"
                  r"repl(?:y|ies)|responses?|messages?))? (with|by) (.{2,80}?)(?=$|[.!?;](?:\s|$))", _I)
_GREET = re.compile(r"\b(?:greet me|say hi(?: to me)?|say hello(?: to me)?)\b", _I)
_MARKDOWN = re.compile(r"\bno (?:more )?(?:markdown|formatting|bold|headings?|headers?|asterisks)\b|"
                       r"\bplain (?:text|sentences|words|prose)\b|\bwithout (?:any )?(?:markdown|formatting)\b|"
                       r"\b(?:drop|stop using|don't use|do not use) (?:the )?(?:markdown|formatting|bold)\b", _I)
_LISTS = re.compile(r"\bno (?:more )?(?:bullet(?:ed)?(?: points| lists)?|bullets|(?:numbered )?lists?)\b|"
                    r"\b(?:without|drop|stop using|don't use|do not use) (?:the |any )?(?:bullet|list|numbered)", _I)
_LANGUAGES = ("English", "French", "German", "Spanish", "Italian", "Portuguese", "Dutch", "Chinese", "Japanese",
              "Korean", "Russian", "Arabic", "Hindi", "Polish", "Swedish", "Danish", "Norwegian", "Finnish",
              "Greek", "Turkish", "Czech", "Ukrainian", "Hebrew", "Vietnamese", "Indonesian")
_LANGUAGE = re.compile(r"\b(?:answer|reply|respond|speak|write|talk)(?: to me)?(?: only)? in (" + "|".join(_LANGUAGES) + r")\b", _I)
_EMOJI = re.compile(r"\bno (?:more )?emojis?\b|\b(?:stop|don't|do not) (?:using |use )?emojis?\b", _I)
_TONE = re.compile(r"\b(?:be|sound|more|use a|in a)\s+(?:more\s+)?(formal|casual|friendly|polite|professional|"
                   r"informal|warm|neutral)\b(?: tone)?", _I)
# A lasting wish said outright, at the start of a sentence: "Always cite sources." "From now on, …"
_DURABLE = re.compile(r"(?:^|[.!?;]\s+|,\s*)(?:please\s+)?(always|never|from now on|in (?:the )?future|every time|"
                      r"each time|whenever you answer|going forward)\b[,:]?\s*(\w.{2,119}?)(?=$|[.!?](?:\s|$))", _I)
_DONT = re.compile(r"(?:^|[.!?;]\s+)(?:please\s+)?((?:don't|do not|stop) \w.{2,100}?)(?=$|[.!?](?:\s|$))", _I)
# Signs that a message is about the last reply (a complaint), or that it asks for something lasting.
_BACKREF = re.compile(r"\b(?:again|i said|i asked|you forgot|you didn't|you did not|that's|that is|that was|this is|"
                      r"where's|where is|instead|next time|not like that)\b", _I)
_COMPLAINT = re.compile(r"\b(?:too (?:long|short|much|wordy|verbose)|shorter|longer|please stop|stop)\b|^\s*no\b", _I)
# A message that opens with a task ("Write a haiku in 30 words") asks for one reply, not for every one.
_TASK = re.compile(r"^\s*(?:please\s+|can you\s+|could you\s+)?(?:write|compose|draft|tell|explain|describe|give me (?:a|an|some|\d)|"
                   r"list|make|create|summari[sz]e|translate|generate|show|find|name|suggest|recommend|what|how|why|who|when|where)\b", _I)
# A message that is one question — "Do you always answer in English?" — asks about the assistant;
# "Can you always answer in French?" asks for something.
_QUESTION = re.compile(r"^\s*(?:do|does|did|is|are|was|were|have|has|why|what|how|when|where|who|which)\b[^.!?]*\?\s*$", _I)
_LASTING = re.compile(r"\b(?:always|never|from now on|in (?:the )?future|every (?:time|answer|reply)|each time|"
                      r"all (?:your )?(?:answers|replies)|going forward|call me|my name is|remember)\b", _I)

REASON_WISHES = {
    "too long": Candidate("Keep answers short and to the point.", "length", "too long"),
    "too short": Candidate("Give fuller, more detailed answers.", "length", "too short"),
}


def _number(word: str) -> int | None:
    word = word.lower().strip()
    if word.isdigit():
        return int(word)
    return _NUMBERS.get(word)


def _clean_phrase(phrase: str) -> str:
    phrase = re.sub(r"^(?:please\s+)|,?\s*please$", "", phrase.strip(), flags=_I)
    return phrase.strip().strip(",;:").strip()


def _length(text: str) -> list[Candidate]:
    for m in _WORDS_BEFORE.finditer(text):
        n = _number(m.group(2))
        if n and n >= 3:
            bound = "under" if m.group(1).lower() in ("under", "below", "less than", "fewer than") else "at most"
            return [Candidate(f"Keep every answer {bound} {n} words.", "length", m.group(0))]
    m = _WORDS_AFTER.search(text)
    if m and (n := _number(m.group(1))) and n >= 3:
        return [Candidate(f"Keep every answer to at most {n} words.", "length", m.group(0))]
    m = _SENTENCES.search(text)
    if m:
        n = _number(m.group(1)) if m.group(1) else 1
        if n:
            unit = "sentence" if n == 1 else f"{n} sentences"
            return [Candidate(f"Answer in {'one ' if n == 1 else ''}{unit}{'' if n == 1 else ' at most'}.", "length",
                              m.group(0))]
    m = _BRIEF.search(text)
    if m:
        return [Candidate("Keep answers short and to the point.", "length", m.group(0))]
    m = _FULLER.search(text)
    if m:
        return [Candidate("Give fuller, more detailed answers.", "length", m.group(0))]
    return []


def _format(text: str) -> list[Candidate]:
    md, lists = _MARKDOWN.search(text), _LISTS.search(text)
    if md:
        return [Candidate("Write plain sentences: no Markdown, no lists, no bold, no headings.", "format", md.group(0))]
    if lists:
        return [Candidate("Write plain sentences, no lists.", "format", lists.group(0))]
    return []


def _edges(text: str) -> tuple[list[Candidate], str]:
    """How replies should open and end, and the text with those phrases taken out: "begin with
    'TL;DR:' and the short version" asks for an opening, not for short answers."""
    out = []
    m = _OPEN.search(text)
    if m:
        out.append(Candidate(f"Start every answer {m.group(1).lower()} {_clean_phrase(m.group(2))}.", "opening", m.group(0)))
    elif (m := _GREET.search(text)) is not None:
        out.append(Candidate("Greet me at the start of every answer.", "opening", m.group(0)))
    if m:
        text = text.replace(m.group(0), " ")
    m = _END.search(text)
    if m:
        out.append(Candidate(f"End every answer {m.group(1).lower()} {_clean_phrase(m.group(2))}.", "ending", m.group(0)))
        text = text.replace(m.group(0), " ")
    return out, text


def _person(text: str) -> list[Candidate]:
    out = []
    m = _NAME.search(text)
    if m and m.group(1).lower() not in _NOT_NAMES:
        name = m.group(1)
        out.append(Candidate(f"Call me {name[0].upper()}{name[1:]}.", "name", m.group(0)))
    m = _LANGUAGE.search(text)
    if m:
        out.append(Candidate(f"Answer in {m.group(1).capitalize()}.", "language", m.group(0)))
    m = _EMOJI.search(text)
    if m:
        out.append(Candidate("No emojis.", "emoji", m.group(0)))
    m = _TONE.search(text)
    if m:
        out.append(Candidate(f"Use a {m.group(1).lower()} tone.", "tone", m.group(0)))
    return out


def _free(text: str, channel: str) -> list[Candidate]:
    """A lasting wish no specific rule knows: the clause after "always"/"from now on" (or, when
    the person is explaining what was wrong, a "don't …"), in their own words."""
    m = _DURABLE.search(text)
    if m:
        marker, clause = m.group(1).lower(), _clean_phrase(m.group(2))
        if len(clause.split()) >= 2:
            keep = marker in ("always", "never")
            return [Candidate(f"{marker.capitalize()} {clause}." if keep else f"{clause[0].upper()}{clause[1:]}.", "",
                              m.group(0).strip(" ,.;"))]
    if channel != "message":
        m = _DONT.search(text)
        if m and len(m.group(1).split()) >= 2:
            clause = _clean_phrase(m.group(1))
            return [Candidate(f"{clause[0].upper()}{clause[1:]}.", "", m.group(0).strip(" ,.;"))]
    return []


def _qualifies(text: str, channel: str, after_reply: bool) -> bool:
    """Is a wish in this text meant to last? (See the module docstring.)"""
    if channel != "message":
        return True
    if _QUESTION.search(text):
        return False
    if _LASTING.search(text):
        return True
    if not after_reply:
        return False
    if _BACKREF.search(text):
        return True
    if "?" in text:  # "Is there a shorter route?" asks something; it does not complain
        return False
    return bool(_COMPLAINT.search(text)) or (len(text.split()) <= 15 and not _TASK.search(text))


_CONTENT = re.compile(r"[a-z][a-z']{3,}")


def rewrites(correction: str, reply: str) -> bool:
    """Does a correction read as the reply rewritten — most of its longer words are the reply's —
    rather than an instruction about it? A person who wants short answers writes short corrections:
    "To stop procrastinating, start with small steps…" is a demonstration, and read as an
    instruction it became the wish "Start every answer with small, manageable steps"."""
    mine = set(_CONTENT.findall(correction.lower()))
    return bool(mine) and len(mine & set(_CONTENT.findall(reply.lower()))) >= 0.5 * len(mine)


def extract(text: str, channel: str, after_reply: bool = True, reply: str = "") -> list[Candidate]:
    """The wishes ``text`` states, at most one per slot, in the order found. ``after_reply``:
    for a message, whether it follows an assistant reply (only then can it complain). ``reply``:
    for a correction, the reply it replaces (a rewrite of it states no wish)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    text = " ".join((text or "").split())
    if channel == "reason":
        wish = REASON_WISHES.get(text.lower())
        return [wish] if wish else []
    if not text or not _qualifies(text, channel, after_reply):
        return []
    if channel == "correction" and (len(text.split()) > 40 or (reply and rewrites(text, reply))):
        return []  # a rewritten answer, not an instruction
    edges, rest = _edges(text)
    found = edges + _length(rest) + _format(rest) + _person(rest)
    if not found:
        found = _free(text, channel)
    out: list[Candidate] = []
    for c in found:
        if not (c.slot and any(o.slot == c.slot for o in out)):
            out.append(c)
    return out
