"""Edit transfer: one correction's mechanical edit, repeated on the model's own other replies.

Why (docs/how-it-learns.md, "Endings and the literal words"): from a dozen demonstrations the
small model learns the *form* of a wish ("open with a name", "close with a summary line") but
not its literal words ("Hi Sam", "In short:") — a few demonstrations and a weak hinted teacher do
not move the exact tokens far enough. And a wish about the end of a reply is never seen at all
when replies run into the reply limit before they end.

So when a correction is one mechanical edit (``judge/edits.py``: a prefix, a suffix, a case
change, removed characters, a cut), the nightly pass repeats it on the model's replies to other
logged prompts, up to ``judge_transfer_per_correction`` of them. Each becomes a sample with source
``transfer``, trained like a demonstration (docs/method.md §7.1). Its tokens are the logged reply's
own ids — on-policy text — with only the edit in new tokens: the inserted words, plus one seam
token re-tokenised where a prefix joins the reply. For an ending the reply is cut at a sentence
boundary early enough that reply + ending fit ``judge_transfer_tokens``, which also teaches the
model to stop there.

Never from an excluded message or conversation (neither as the correction nor as the reply it is
repeated on); a target that has its own correction keeps its own demonstration instead. The set
is rebuilt every pass from the corrections that exist now: withdrawing or deleting the source
correction removes its not-yet-trained transfers, as with demonstrations. A transfer already
trained on ('used') is kept and its reply never gets another one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..engine import Engine, Vocab
from ..records import Message, Sample
from ..settings import Settings
from ..signals import find_next_state, turn_messages
from ..store import Store
from .edits import Edit, detect_edit

SOURCE = "transfer"
# the text up to a token ends a sentence: a word (not a list number "1.") then . ! or ?
_SENTENCE_END = re.compile(r"[A-Za-z)\]\"'”*][.!?][\"'”)]*$")


@dataclass
class TransferReport:
    """What one transfer pass did (or, dry run, would do)."""

    corrections: int = 0  # corrections read
    transferable: int = 0  # of them, a mechanical edit
    samples: list[Sample] = field(default_factory=list)  # transfers written (or that would be)
    removed: int = 0  # ready transfers whose source correction or target reply is gone


def transfer_edits(store: Store, settings: Settings, vocab_for: Callable[[Message], Vocab | Engine],
                   dry_run: bool = False) -> TransferReport:
    """Rebuild the ready transfer samples from the current corrections (module docstring)."""
    report = TransferReport()
    per_correction = settings.judge_transfer_per_correction
    messages = [m for m in store.assistant_messages() if m.response_token_ids and m.prompt_token_ids]
    corrected = {s.message_id for s in store.samples() if s.source == "demo"}
    existing = {s.message_id: s for s in store.samples() if s.source == SOURCE}
    taken = {mid for mid, s in existing.items() if s.status == "used"}  # trained on: never again
    wanted: dict[int, Sample] = {}
    if per_correction > 0:
        sources = [(m, find_next_state(store, m).correction.strip()) for m in reversed(messages) if m.id in corrected]
        for src, correction in sources:  # newest correction first: it claims targets first
            if not correction:
                continue
            report.corrections += 1
            edit = detect_edit(src.content, correction)
            if edit is None:
                continue
            report.transferable += 1
            vocab = vocab_for(src)
            n = 0
            for target in reversed(messages):  # the newest replies: closest to the model now
                if n >= per_correction:
                    break
                if target.id in corrected or target.id in taken or target.id in wanted or target.model != src.model:
                    continue
                if not edit.changes(target.content):
                    continue
                sample = transfer_sample(store, edit, src, target, vocab, settings.judge_transfer_tokens)
                if sample is not None:
                    wanted[target.id] = sample
                    n += 1
    for mid, old in existing.items():
        if old.status != "used" and mid not in wanted:
            report.removed += 1
            if not dry_run:
                store.delete_samples(mid, [SOURCE])
    for sample in wanted.values():
        report.samples.append(sample if dry_run else store.upsert_sample(sample))
    return report


def transfer_sample(store: Store, edit: Edit, source: Message, target: Message, vocab: Vocab | Engine,
                    budget: int) -> Sample | None:
    """The transferred demonstration on ``target``, or None when the edit does not fit its budget."""
    ids = transfer_ids(edit, list(target.response_token_ids or []), target.finish_reason == "stop", vocab, budget)
    if ids is None:
        return None
    what = edit.describe()
    return Sample(id=0, message_id=target.id, conversation_id=target.conversation_id,
                  prompt_token_ids=list(target.prompt_token_ids or []), response_token_ids=ids, reward=None,
                  source=SOURCE, status="ready", next_state=f"message {source.id}'s correction ({what}) repeated",
                  prompt_messages=turn_messages(store, target),
                  votes=[{"kind": SOURCE, "text": what, "value": None, "hint": "", "from": source.id}])


def transfer_ids(edit: Edit, reply_ids: list[int], finished: bool, vocab: Vocab | Engine, budget: int) -> list[int] | None:
    """The edited reply in token ids, ending with the end-of-turn token; None if it cannot fit.

    ``reply_ids`` are the logged ids (ending with the end-of-turn token when ``finished``). A reply
    that ran into the reply limit, or would not fit ``budget`` with the edit, is cut at its last
    sentence boundary that fits — a demonstration must never teach stopping mid-sentence."""
    eot = reply_ids[-1] if finished and reply_ids else _eos(vocab)
    body = reply_ids[:-1] if finished else list(reply_ids)
    if not body:
        return None
    ends = sentence_ends(vocab, body)
    if edit.kind in ("case", "remove"):
        k = len(body) if finished else (ends[-1] if ends else 0)
        new = vocab.tokenize(edit.apply(vocab.detokenize(body[:k]))) if k else []
        return new + [eot] if new and len(new) < budget else None
    if edit.kind == "cut":
        fits = [k for k in ends if len(vocab.detokenize(body[:k]).split()) <= edit.words]
        return body[:fits[-1]] + [eot] if fits else None
    text = vocab.detokenize(body)
    head: list[int] = []
    seam = 0
    if edit.prefix is not None:
        seam = _whole_chars(vocab, body)  # the first token(s) re-tokenised with the prefix
        head = vocab.tokenize(edit.prefix.render(text) + vocab.detokenize(body[:seam]))
    tail = vocab.tokenize(edit.suffix.render(text)) if edit.suffix is not None else []
    room = budget - len(head) - len(tail) - 1
    if finished and len(body) - seam <= room:
        return head + body[seam:] + tail + [eot]
    fits = [k for k in ends if seam < k and k - seam <= room]
    if not fits:
        return None
    k = fits[-1]
    if edit.suffix is not None:  # the ending's slot is refilled from what is left of the reply
        tail = vocab.tokenize(edit.suffix.render(vocab.detokenize(body[:k])))
        if k - seam + len(head) + len(tail) + 1 > budget:
            return None
    return head + body[seam:k] + tail + [eot]


def sentence_ends(vocab: Vocab | Engine, ids: list[int]) -> list[int]:
    """Every k such that ``ids[:k]`` ends a sentence and the next token (if any) starts a new word."""
    pieces = [vocab.detokenize([t]) for t in ids]
    out, text = [], ""
    for k, piece in enumerate(pieces, start=1):
        text += piece
        if _SENTENCE_END.search(text) and (k == len(ids) or pieces[k][:1].isspace()):
            out.append(k)
    return out


def _whole_chars(vocab: Vocab | Engine, ids: list[int]) -> int:
    """The fewest leading tokens that decode to whole characters (a multi-byte character may span two)."""
    for n in range(1, min(len(ids), 4) + 1):
        if "\ufffd" not in vocab.detokenize(ids[:n]):
            return n
    return 1


def _eos(vocab: Vocab | Engine) -> int:
    return vocab.eos_id() if isinstance(vocab, Vocab) else vocab._llm.token_eos()
