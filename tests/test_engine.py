"""The llama.cpp engine on the real bundled model: token ids, streaming, truncation, bad files."""

from __future__ import annotations

import shutil
import threading

import pytest

from clawdesk.engine import Engine
from clawdesk.errors import ModelCorrupt, ModelNotFound

Q = [{"role": "user", "content": "What is the capital of France?"}]


def test_generate_returns_exact_ids_and_streams_the_same_text(engine):
    pieces: list[str] = []
    g = engine.generate(Q, temperature=0, max_tokens=40, on_text=pieces.append)
    assert g.prompt_token_ids == engine.render(Q)
    assert g.response_token_ids, "no tokens sampled"
    assert "".join(pieces) == g.text
    # decoding the stored response ids gives the shown text (the end-of-turn token decodes to "")
    assert engine.detokenize(g.response_token_ids) == g.text
    if g.finish_reason == "stop":
        assert engine._eog(g.response_token_ids[-1])
    assert "Paris" in g.text


def test_greedy_is_deterministic_and_seed_is_recorded(engine):
    a = engine.generate(Q, temperature=0, max_tokens=16)
    b = engine.generate(Q, temperature=0, max_tokens=16)
    assert a.response_token_ids == b.response_token_ids
    c = engine.generate(Q, temperature=0.8, max_tokens=16, seed=7)
    d = engine.generate(Q, temperature=0.8, max_tokens=16, seed=7)
    assert c.response_token_ids == d.response_token_ids and c.sampling["seed"] == 7


def test_cancel_keeps_the_partial_answer(engine):
    cancel = threading.Event()
    seen: list[str] = []

    def on_text(piece: str) -> None:
        seen.append(piece)
        if len(seen) >= 3:
            cancel.set()

    g = engine.generate([{"role": "user", "content": "Write a long story about a dragon."}],
                        temperature=0, max_tokens=200, on_text=on_text, cancel=cancel)
    assert g.finish_reason == "cancelled"
    assert 3 <= len(g.response_token_ids) < 20
    assert g.text == "".join(seen)


def test_prompt_longer_than_context_is_truncated_with_a_count(engine):
    long_history = []
    for i in range(60):
        long_history += [{"role": "user", "content": f"Tell me fact number {i} about the sea, in detail please."},
                         {"role": "assistant", "content": "The sea is large and salty. " * 8}]
    msgs = long_history + [{"role": "user", "content": "Summarise."}]
    g = engine.generate(msgs, temperature=0, max_tokens=8)
    assert g.truncated_tokens > 0
    assert len(g.prompt_token_ids) + 8 <= engine.n_ctx
    assert engine.detokenize(g.prompt_token_ids).rstrip().endswith("assistant")


def test_single_huge_message_is_cut_from_the_left(engine):
    msgs = [{"role": "user", "content": "word " * 5000 + "THE END"}]
    ids, dropped = engine.fit(msgs, reserve=64)
    assert dropped > 0 and len(ids) <= engine.n_ctx - 64
    assert "THE END" in engine.detokenize(ids)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFound, match="No model file"):
        Engine(tmp_path / "nope.gguf")


def test_corrupt_and_truncated_models_are_clear_errors(tmp_path, model_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model at all" * 100)
    with pytest.raises(ModelCorrupt, match="not a GGUF"):
        Engine(junk)
    truncated = tmp_path / "truncated.gguf"
    with open(model_path, "rb") as src, open(truncated, "wb") as dst:
        dst.write(src.read(20_000_000))
    with pytest.raises(ModelCorrupt, match="damaged or truncated"):
        Engine(truncated)


def test_a_copy_of_the_model_loads(tmp_path, model_path):
    copy = tmp_path / "copy.gguf"
    shutil.copy(model_path, copy)
    e = Engine(copy, n_ctx=512)
    try:
        assert e.generate(Q, temperature=0, max_tokens=4).response_token_ids
    finally:
        e.close()


def test_plain_text_keeps_every_markdown_marker_out(engine):
    """The question invites a numbered, bold list; with ``plain`` none of its markers can appear,
    and the ids are still exactly the text (nothing was rewritten after sampling)."""
    import re

    messages = [{"role": "user", "content": "What are some tips for cooking rice? Use a numbered list with bold titles."}]
    free = engine.generate(messages, temperature=0.0, max_tokens=120, seed=0)
    assert re.search(r"^\s*(?:\d+[.)]|[-*+])\s|\*\*", free.text, re.M)  # the model's habit, without it
    plain = engine.generate(messages, temperature=0.0, max_tokens=120, seed=0, plain=True)
    assert not re.search(r"^\s*(?:\d+[.)]|[-*+•>#|])|\*\*|__|```", plain.text, re.M)
    assert engine.detokenize(plain.response_token_ids) == plain.text and plain.sampling["plain"] is True
    from clawdesk.engine.plain import PlainText

    mask = PlainText(engine._loop.token_texts())
    after_break = engine.tokenize("Steps:\n\n")
    assert mask.at_line_start(after_break) and mask.at_line_start(after_break + engine.tokenize(" "))
    assert not mask.at_line_start(engine.tokenize("Steps: one"))  # "2 * 3" inside a line stays possible
