"""Engine implementation on llama-cpp-python (see the package docstring for the design)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelCorrupt, ModelNotFound
from ..records import Generation
from .gguf_check import ensure_gguf
from .sampling import Run, TokenLoop
from .shape import (APART_GLUE, ELLIPSIS, GreetingHold, SentenceHold, after_greeting, bare_ending, clause_cut,
                    ends_sentence, has_ending, own_greeting, sentence_cut, stands_apart, word_count)
from .stops import StopScanner

Messages = list[dict[str, str]]
_SENTENCE_ENDS = (". ", "! ", "? ", "\n")  # where a closing line ends (``Engine._shaped``)
_CLOSING_MIN_TOKENS = 4  # a closing line has words after the fixed ones
_CLOSING_WORDS = 8  # what a word limit leaves a closing line beyond its fixed words


@dataclass
class EngineStats:
    model_path: str
    adapter_path: str | None
    adapter_version: int | None
    load_s: float


@dataclass
class TokenScores:
    """Teacher-forced scores of a fixed continuation under one served model (Engine.score).

    Position i is the model's distribution over the i-th continuation token given the prompt
    and the continuation before it."""

    logprobs: list[float]  # log p(continuation[i])
    top_ids: list[int]  # the model's own top-1 token there (what greedy decoding would pick)
    top_logprobs: list[float]  # its log-prob

    @property
    def total(self) -> float:
        return float(sum(self.logprobs))


@contextlib.contextmanager
def _quiet_stderr():
    """llama.cpp prints its load log on fd 2 even with verbose=False; keep the terminal clean."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)
        os.close(devnull)


class Engine:
    """Owns one ``llama_cpp.Llama`` and serialises turns on it."""

    def __init__(self, model_path: str | Path, n_ctx: int = 2048, n_threads: int = 0,
                 adapter_path: str | Path | None = None, adapter_version: int | None = None,
                 verbose: bool = False) -> None:
        self.model_path = str(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or (os.cpu_count() or 2)
        self.verbose = verbose
        self._turn_lock = threading.RLock()
        self._pending: tuple[str | None, int | None, str | None] | None = None
        self._pending_lock = threading.Lock()
        self._adapter = None  # llama_adapter_lora_p
        self.adapter_path: str | None = None
        self.adapter_version: int | None = None
        self.on_swap: Callable[[int | None], None] | None = None
        # Set by whoever opened it (``chat.open_engine``, the judge): the registry name the file
        # was resolved from, which the path alone does not say and every logged turn records;
        # and, when the served adapter could not be loaded, what is served instead and why.
        self.model_name: str = ""
        self.fallback_note: str = ""
        start = time.perf_counter()
        self._llm = self._load_model(self.model_path)
        self._init_template()
        if adapter_path:
            self._apply_adapter(str(adapter_path), adapter_version)
        self.load_s = time.perf_counter() - start

    # --- loading --------------------------------------------------------------------------------
    def _load_model(self, path: str):
        from llama_cpp import Llama

        if not Path(path).exists():
            raise ModelNotFound(f"No model file at {path}; `clawdesk models list` shows what is registered.")
        ensure_gguf(path)
        try:
            with _quiet_stderr() if not self.verbose else contextlib.nullcontext():
                return Llama(model_path=path, n_ctx=self.n_ctx, n_threads=self.n_threads,
                             n_threads_batch=self.n_threads, verbose=self.verbose, seed=0)
        except (ValueError, RuntimeError) as e:
            raise ModelCorrupt(f"llama.cpp could not load {path} ({e}); the file may be damaged or of an "
                               f"unsupported architecture.") from None

    def _init_template(self) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        meta = self._llm.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise ModelCorrupt(f"{self.model_path} has no chat template in its metadata; ClawDesk needs an "
                               f"instruct model with a chat template.")
        vocab = self._llm._model.vocab
        self._eog = lambda tok: bool(_llama_cpp().llama_vocab_is_eog(vocab, tok))
        self._eog_token = int(self._llm.token_eos())
        self._loop = TokenLoop(self._llm, self._eog)
        eos = self._llm.detokenize([self._llm.token_eos()], special=True).decode("utf-8", "replace")
        bos_id = self._llm.token_bos()
        bos = self._llm.detokenize([bos_id], special=True).decode("utf-8", "replace") if bos_id >= 0 else ""
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                                              add_generation_prompt=True)

    @property
    def supports_tools(self) -> bool:
        """Whether the model's chat template renders a ``tools`` list (OpenAI function tools)."""
        return "tools" in self._formatter.template

    def stats(self) -> EngineStats:
        return EngineStats(self.model_path, self.adapter_path, self.adapter_version, self.load_s)

    # --- adapters and swaps ---------------------------------------------------------------------
    def _apply_adapter(self, path: str | None, version: int | None) -> None:
        """Swap the LoRA in the running model (~0.03 s). Called with the turn lock held."""
        lib = _llama_cpp()
        new = None
        if path:
            if not Path(path).exists():
                raise ModelNotFound(f"No adapter file at {path}.")
            ensure_gguf(path)
            new = lib.llama_adapter_lora_init(self._llm._model.model, path.encode("utf-8"))
            if not new:
                raise ModelCorrupt(f"llama.cpp refused the adapter {path}; it does not match this model.")
            adapters = (lib.llama_adapter_lora_p_ctypes * 1)(new)
            scales = (ctypes.c_float * 1)(1.0)
            if lib.llama_set_adapters_lora(self._llm._ctx.ctx, adapters, 1, scales):
                lib.llama_adapter_lora_free(new)
                raise ModelCorrupt(f"llama.cpp could not apply the adapter {path}.")
        else:
            lib.llama_set_adapters_lora(self._llm._ctx.ctx, None, 0, None)
        if self._adapter is not None:
            lib.llama_adapter_lora_free(self._adapter)
        self._adapter = new
        self.adapter_path, self.adapter_version = path, version
        # The KV cache holds activations computed with the old weights: drop it.
        self._llm.reset()
        self._llm._ctx.kv_cache_clear()

    def request_swap(self, adapter_path: str | None, version: int | None, model_path: str | None = None) -> None:
        """Ask for new weights; applied now if idle, else right after the current turn.

        ``model_path`` switches the whole model (a merged GGUF or another registered model); it is
        loaded in the caller's thread before taking the lock, so a turn is never blocked by a load.
        """
        loaded = None
        if model_path and model_path != self.model_path:
            loaded = (model_path, self._load_model(model_path))
        with self._pending_lock:
            self._pending = (adapter_path, version, loaded)  # type: ignore[assignment]
        if self._turn_lock.acquire(blocking=False):
            try:
                self._apply_pending()
            finally:
                self._turn_lock.release()

    def _apply_pending(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        adapter_path, version, loaded = pending
        if loaded:
            if self._adapter is not None:
                _llama_cpp().llama_adapter_lora_free(self._adapter)
                self._adapter = None
            old = self._llm
            self.model_path, self._llm = loaded
            self._init_template()
            old.close()
        self._apply_adapter(adapter_path, version)
        if self.on_swap:
            self.on_swap(version)

    # --- rendering ------------------------------------------------------------------------------
    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def detokenize(self, ids: list[int]) -> str:
        return self._llm.detokenize(list(ids)).decode("utf-8", errors="replace")

    def render(self, messages: Messages, tools: list[dict[str, Any]] | None = None) -> list[int]:
        """The model's own chat template → prompt token ids (special tokens parsed). ``tools``
        reaches the template only when given (a template without tool support ignores it)."""
        extra = {"tools": tools} if tools else {}
        text = self._formatter(messages=messages, **extra).prompt
        ids = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        bos = self._llm.token_bos()
        if self._llm._model.add_bos_token() and bos >= 0 and (not ids or ids[0] != bos):
            ids = [bos] + ids
        return ids

    def fit(self, messages: Messages, reserve: int,
            tools: list[dict[str, Any]] | None = None) -> tuple[list[int], int]:
        """Render, dropping the oldest turns (then the head of the last message) until the prompt
        leaves ``reserve`` tokens for the reply. Returns (ids, tokens dropped)."""
        budget = max(64, self.n_ctx - reserve)
        full = self.render(messages, tools)
        ids, msgs = full, list(messages)
        while len(ids) > budget:
            first = 1 if msgs and msgs[0]["role"] == "system" else 0
            if len(msgs) - first > 1:
                del msgs[first]
            else:
                last = dict(msgs[-1])
                content_ids = self.tokenize(last["content"])
                keep = max(1, len(content_ids) - (len(ids) - budget) - 8)
                last["content"] = self.detokenize(content_ids[-keep:])
                msgs[-1] = last
                ids = self.render(msgs, tools)
                if len(ids) > budget:  # a system prompt alone overflows: cut it too
                    ids = ids[-budget:]
                break
            ids = self.render(msgs, tools)
        return ids, len(full) - len(ids)

    # --- generation -----------------------------------------------------------------------------
    def generate(self, messages: Messages | None = None, *, prompt_ids: list[int] | None = None,
                 temperature: float = 0.7, top_p: float = 0.95, top_k: int = 40, repeat_penalty: float = 1.1,
                 max_tokens: int = 512, seed: int = -1, grammar: Any = None,
                 on_text: Callable[[str], None] | None = None,
                 cancel: threading.Event | None = None, stop: Sequence[str] = (),
                 tools: list[dict[str, Any]] | None = None,
                 opening: str = "", ending: str = "", ending_tokens: int = 48, max_words: int = 0,
                 plain: bool = False) -> Generation:
        """Sample one reply. ``on_text`` receives decoded text pieces as they arrive (valid UTF-8
        only: a character split across tokens is emitted once complete). ``cancel`` stops early
        and keeps what was produced (finish_reason 'cancelled'). ``stop`` strings end the reply
        before them (finish_reason 'stop'; see ``stops.py``); ``tools`` go to the chat template.

        ``opening``: the reply starts with exactly these words and the model goes on from them —
        or, when they are a sentence of their own ("Hi Sam!"), writes its reply as if they were
        not there, and it follows them (``shape.stands_apart``).
        ``ending``: the reply's last line starts with exactly these words, written after the body
        unless the model wrote such a line itself, and given ``ending_tokens`` of the budget
        (``shape.py``). Both are the preference memory's quoted words (docs/memory.md).
        ``max_words``: the reply ends at its last sentence end within that many words (a closing
        line, if any, comes after a body held to fewer words, so the whole reply fits).
        ``plain``: no Markdown — the sampler is kept off its markers (``plain.py``)."""
        with self._turn_lock:
            self._apply_pending()
            truncated = 0
            if prompt_ids is None:
                assert messages is not None
                reserve = min(max_tokens, self.n_ctx // 2)
                prompt_ids, truncated = self.fit(messages, reserve, tools)
            max_tokens = max(1, min(max_tokens, self.n_ctx - len(prompt_ids)))
            seed = seed if seed >= 0 else random.randrange(2**31)
            self._llm.set_seed(seed)
            sampling: dict[str, Any] = {"temperature": temperature, "top_p": top_p, "top_k": top_k,
                                        "repeat_penalty": repeat_penalty, "max_tokens": max_tokens, "seed": seed}
            if stop:
                sampling["stop"] = list(stop)
            knobs = {"temperature": temperature, "top_p": top_p, "top_k": top_k,
                     "repeat_penalty": repeat_penalty, "grammar": grammar, "cancel": cancel, "plain": plain}
            if plain:
                sampling["plain"] = True
            start = time.perf_counter()
            if not opening and not ending and not max_words:
                run = self._loop.sample(prompt_ids, max_tokens, stop=stop, on_text=on_text, **knobs)
                text, out = run.text, run.ids
            else:
                sampling.update({k: v for k, v in (("opening", opening), ("ending", ending), ("max_words", max_words))
                                 if v})
                run, text, out, forced = self._shaped(prompt_ids, max_tokens, opening, ending, ending_tokens,
                                                      max_words, stop, on_text, knobs)
                sampling["forced"] = forced  # kept with the reply: training leaves these ids out
            return Generation(text=text, prompt_token_ids=list(prompt_ids), response_token_ids=out,
                              finish_reason=run.finish, ttft_s=run.first - start if run.first else 0.0,
                              duration_s=time.perf_counter() - start, truncated_tokens=truncated,
                              sampling=sampling)

    def _shaped(self, prompt_ids: list[int], max_tokens: int, opening: str, ending: str, ending_tokens: int,
                max_words: int, stop: Sequence[str], on_text: Callable[[str], None] | None,
                knobs: dict[str, Any]) -> tuple[Run, str, list[int], list[list[int]]]:
        """A reply with fixed words at its start and/or its last line (see ``generate``).

        Returns the last stretch of sampling, the text, the response ids — the sequence the model
        was run on, so training scores what it saw — and the ``forced`` spans of those ids
        ([start, end) positions the engine wrote, not the model: training leaves them out of the
        on-policy terms, docs/memory.md)."""
        head, head_ids = opening, self.tokenize(opening) if opening else []
        forced = [[0, len(head_ids)]] if head_ids else []
        # a greeting ("Hi Sam!") stands apart: the body is sampled without it, then written after it
        # with a space (shape.py), its ids re-read after that space; the head's are still forced.
        # A body that opens with the greeting itself is served as the model wrote it (GreetingHold).
        apart = bool(head_ids) and stands_apart(opening)
        glue = APART_GLUE if apart else ""
        greeting = GreetingHold(opening, glue) if apart else None

        def show(piece: str) -> None:
            if greeting is not None:
                piece = greeting.feed(piece)
            if piece and on_text:
                on_text(piece)

        def joined(text: str) -> list[int]:
            return head_ids + (self.tokenize(glue + text) if text else [])

        if not apart:
            show(head)
        tail_budget = min(ending_tokens, max_tokens // 2) if ending else 0
        budget = max(1, max_tokens - len(head_ids) - tail_budget)
        hold = SentenceHold() if ending or max_words else None
        sink = (lambda piece: show(hold.feed(piece))) if hold is not None else show
        limit = max(max_words // 2, max_words - word_count(ending) - _CLOSING_WORDS) if ending else max_words
        # while the body may still be the greeting itself, its words are the greeting's, not more
        until = (lambda text: word_count(("" if greeting and own_greeting(text, opening) else head) + text) > limit) \
            if max_words else None
        run = self._loop.sample(prompt_ids + ([] if apart else head_ids), budget, stop=stop, on_text=sink,
                                until=until, **knobs)
        if greeting is not None:
            held = greeting.decide(own_greeting(run.text, opening, final=True))
            if held and on_text:
                on_text(held)
            if greeting.kind == "same":  # the model greeted by itself: its reply as sampled, nothing forced
                head, head_ids, glue, forced, apart = "", [], "", [], False
            elif greeting.kind == "like":  # the space after the model's own greeting is the glue
                glue = ""

        def trim(text: str) -> str:  # "Hi Sam," of the model's own: the opening is written in its place
            return after_greeting(text, opening) if greeting is not None and greeting.kind == "like" else text

        body = head + glue + trim(run.text)
        over = run.finish == "words"
        # the model wrote the fixed words as its last line but nothing after them: it goes on there
        bare = bool(ending) and not over and bool(run.ids) and self._eog(run.ids[-1]) and bare_ending(body, ending)
        if hold is None or run.finish == "cancelled" or (not over and not bare and (not ending or has_ending(body, ending))):
            if hold is not None:
                show(hold.flush())
            if apart:
                return run, body, joined(trim(run.text)) + [i for i in run.ids[-1:] if self._eog(i)], forced
            return run, body, head_ids + run.ids, forced
        if bare:
            show(hold.flush())
            body_ids = joined(trim(run.text)) if apart else head_ids + run.ids[:-1]  # its end of turn dropped
            closing, text, ids = self._closing(prompt_ids, body_ids, tail_budget, stop, show, forced, run, knobs,
                                               done=ends_sentence(body))
            return closing, body + text, body_ids + ids, forced
        cut = sentence_cut(run.text) if run.finish in ("length", "words") else 0
        room = limit - word_count(head)
        marked = 0  # ids of an ellipsis the engine wrote at the end of ``kept``
        if over and room > 0 and word_count(run.text[:cut]) * 2 < room:
            # the finished sentences are under half the limit: end at the limit, and show the cut
            kept = run.text[:clause_cut(run.text, room)].rstrip().rstrip(",;:-\u2013\u2014").rstrip()
            show(kept[len(hold.shown):] + ELLIPSIS)
            marked = len(self.tokenize(kept + ELLIPSIS)) - len(self.tokenize(kept))
            kept += ELLIPSIS
        elif cut:  # the budget or the word limit cut it mid-sentence: drop that sentence (never shown)
            kept = run.text[:cut]
        else:
            show(hold.flush(before_more=True))
            kept = run.text
        kept = trim(kept.rstrip())
        kept_ids = joined(kept)
        if marked > 0:
            forced.append([len(kept_ids) - marked, len(kept_ids)])
        if not ending:  # the word limit ended it: the engine ends the turn there
            run.finish = "stop"
            forced.append([len(kept_ids), len(kept_ids) + 1])
            return run, head + (glue if kept else "") + kept, kept_ids + [self._eog_token], forced
        lead = ("\n\n" if head or kept else "") + ending
        lead_ids = self.tokenize(lead)
        forced.append([len(kept_ids), len(kept_ids) + len(lead_ids)])
        show(lead)
        closing, text, closing_ids = self._closing(prompt_ids, kept_ids + lead_ids, tail_budget, stop, show,
                                                   forced, run, knobs, done=ends_sentence(ending))
        return closing, head + (glue if kept else "") + kept + lead + text, kept_ids + lead_ids + closing_ids, forced

    def _closing(self, prompt_ids: list[int], before: list[int], budget: int, stop: Sequence[str],
                 show: Callable[[str], None], forced: list[list[int]], body: Run,
                 knobs: dict[str, Any], done: bool) -> tuple[Run, str, list[int]]:
        """The rest of a closing line after its fixed words (``before`` ends with them): at least a
        few tokens (not the words alone: "In short:" then nothing, "Hope this helps" then "!"),
        ending at its first sentence end after those — a closing line, not a second answer. An end
        of turn the engine adds there is appended to ``forced``. The reply's first token is the body's.

        A line that runs out of budget before such an end ("Hope this helps! Remember, the best way
        to avoid … and avoiding"), or that ends in a colon at a line break ("In short: a credit
        score is based on:"), ends at its last sentence end instead — at the fixed words, when they
        are a sentence (``done``) — else at a clause break with an ellipsis; the unfinished tail is
        held back while streaming, so it is never shown."""
        scanner: list[StopScanner] = []
        hold = SentenceHold(full_stop=True)
        closing = self._loop.sample(prompt_ids + before, max(1, budget), stop=(*_SENTENCE_ENDS, *stop),
                                    on_text=lambda piece: show(hold.feed(piece)),
                                    min_tokens=_CLOSING_MIN_TOKENS, scanner=scanner, **knobs)
        closing.first = body.first or closing.first
        marked = 0
        hit = bool(scanner and scanner[0].hit)
        # a line that ends in a colon at its line break introduces a list that is not coming
        dangling = hit and not scanner[0].which.strip() and closing.text.rstrip().endswith(":")
        if hit and not dangling:  # ended at the line or sentence end, which the ids overshoot
            show(hold.flush())
            closing.text += scanner[0].which.strip()  # keep the stop's punctuation
            show(scanner[0].which.strip())
        elif dangling or closing.finish == "length":  # out of budget mid-sentence, or dangling
            kept = hold.shown.rstrip()
            if not kept and not done:
                cut = closing.text[:clause_cut(closing.text, word_count(closing.text))].rstrip(" ,;:-\u2013\u2014")
                if word_count(cut):
                    kept = cut + ELLIPSIS
                    marked = len(self.tokenize(kept)) - len(self.tokenize(cut))
            show(kept[len(hold.shown):])
            closing.text, closing.finish = kept, "stop"
        else:
            show(hold.flush())
            return closing, closing.text, closing.ids
        ids = (self.tokenize(closing.text) if closing.text else []) + [self._eog_token]
        if marked > 0:  # the engine's ellipsis
            forced.append([len(before) + len(ids) - 1 - marked, len(before) + len(ids) - 1])
        forced.append([len(before) + len(ids) - 1, len(before) + len(ids)])  # the engine ended the reply there
        return closing, closing.text, ids

    def score(self, prompt_ids: list[int], continuation_ids: list[int]) -> TokenScores:
        """Teacher-forced log-probs of ``continuation_ids`` after ``prompt_ids`` on the served
        weights (adapter included), decoded token by token exactly as ``generate`` does — so
        ``top_ids`` is what greedy decoding would emit while it follows the continuation."""
        import numpy as np

        with self._turn_lock:
            self._apply_pending()
            llm = self._llm
            llm.reset()  # n_tokens = 0: eval() drops whatever the KV cache held
            scores = TokenScores([], [], [])
            feed = list(prompt_ids)
            for tok in continuation_ids:
                llm.eval(feed)
                # Without logits_all llama.cpp keeps only the last position's logits.
                logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)
                top = int(logits.argmax())
                log_z = logits[top] + np.log(np.exp(logits - logits[top]).sum())  # stable log-sum-exp
                scores.logprobs.append(float(logits[tok] - log_z))
                scores.top_ids.append(top)
                scores.top_logprobs.append(float(logits[top] - log_z))
                feed = [int(tok)]
            return scores

    def close(self) -> None:
        with self._turn_lock:
            if self._adapter is not None:
                _llama_cpp().llama_adapter_lora_free(self._adapter)
                self._adapter = None
            self._llm.close()


def _llama_cpp():
    import llama_cpp

    return llama_cpp
