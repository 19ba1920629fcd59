"""Reading judge votes: the last ``\\boxed{}`` value, the hint between tags, the majority.

Pure functions on text, kept apart from the model so they can be tested on hand-made cases.
A vote that does not end in a parsable ``\\boxed{-1|0|1}`` is a *failed* vote (``None``): it is
stored and counted, never turned into a reward (docs/method.md §2).
"""

from __future__ import annotations

from collections import Counter

HINT_START, HINT_END = "[HINT_START]", "[HINT_END]"
_BOX = "\\boxed{"
MIN_HINT_CHARS = 10  # docs/method.md §3: keep hints *longer* than 10 characters
MAX_HINTS = 3


def boxed_contents(text: str) -> list[str]:
    """Every ``\\boxed{...}`` body in order, with nested braces balanced (``\\boxed{\\text{1}}``
    yields ``\\text{1}``); an unclosed box at the end is ignored."""
    out = []
    start = text.find(_BOX)
    while start >= 0:
        i, depth = start + len(_BOX), 1
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth:
            break
        out.append(text[start + len(_BOX): i - 1])
        start = text.find(_BOX, i)
    return out


def parse_boxed(text: str, allowed: tuple[int, ...] = (-1, 0, 1)) -> int | None:
    """The value of the *last* ``\\boxed{}`` if it is one of ``allowed``, else ``None``.

    Only the last box counts (the judge may quote the scale while reasoning). Tolerated inside
    the box: spaces, a leading '+', and one ``\\text{}``/``\\mathbf{}`` wrapper; anything else
    (``\\boxed{good}``, ``\\boxed{1/2}``) is a failed vote rather than a guess."""
    boxes = boxed_contents(text)
    if not boxes:
        return None
    body = boxes[-1].strip()
    for wrapper in ("\\text{", "\\mathbf{", "\\textbf{"):
        if body.startswith(wrapper) and body.endswith("}"):
            body = body[len(wrapper):-1].strip()
    body = body.replace("\u2212", "-").lstrip("+").strip()
    try:
        value = int(body)
    except ValueError:
        return None
    return value if value in allowed else None


def parse_hint(text: str) -> str:
    """The text between the last ``[HINT_START]`` and the ``[HINT_END]`` after it, stripped;
    empty if there is no complete pair."""
    start = text.rfind(HINT_START)
    if start < 0:
        return ""
    end = text.find(HINT_END, start)
    if end < 0:
        return ""
    return " ".join(text[start + len(HINT_START): end].split())


def majority(values: list[int | None]) -> int:
    """The most common valid value; a tie at the top, or no valid value at all, gives 0."""
    counts = Counter(v for v in values if v is not None).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return 0
    return counts[0][0]


def select_hints(candidates: list[str], explicit: list[str] = ()) -> list[str]:
    """Judge hints → at most ``MAX_HINTS`` candidates (docs/method.md §3).

    Judge hints must be longer than 10 characters; duplicates (case and spacing ignored) are
    dropped; the rest sorted shortest first. The user's own corrections and comments are always
    kept and come first (the most direct hint there is); judge hints fill the remaining places
    up to three."""
    seen: set[str] = set()
    keep_explicit = []
    for h in explicit:
        key = " ".join(h.lower().split())
        if key and key not in seen:
            seen.add(key)
            keep_explicit.append(h.strip())
    judged = []
    for h in sorted((c.strip() for c in candidates), key=len):
        key = " ".join(h.lower().split())
        if len(h) > MIN_HINT_CHARS and key not in seen:
            seen.add(key)
            judged.append(h)
    return keep_explicit + judged[: max(0, MAX_HINTS - len(keep_explicit))]
