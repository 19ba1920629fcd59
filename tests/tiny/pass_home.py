"""A ClawDesk home with a tiny llama chat model and rated turns, ready for a whole training pass
(judge → train → gate → promote), for tests/tiny/test_accelerate_ddp.py and the adapter-import
tests. Real store, real catalog; the turns' tokens come from the tiny model's own tokenizer.
Run as a script with CLAWDESK_HOME set: ``python pass_home.py WORKDIR``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import TINY, build  # noqa: E402

TURNS = [("What is the capital of France?", "Paris is the capital.", "thumbs_up"),
         ("How do I boil an egg?", "Put it in water.", "thumbs_down"),
         ("Explain why the sky is blue.", "Sunlight scatters off air.", "thumbs_up"),
         ("Keep it short please.", "The quick brown fox jumps over the lazy dog.", "thumbs_down"),
         ("Hi Sam!", "Here is a tip for sleeping better.", "thumbs_up"),
         ("What is the capital of France?", "The lazy dog.", "thumbs_down")]


def make_home(work: Path, name: str = "tiny-chat", seed: int = 0) -> Path:
    """Build the tiny GGUF under ``work``, register and select it, log the rated turns. Returns
    the GGUF. Uses the store under the current CLAWDESK_HOME."""
    from transformers import PreTrainedTokenizerFast

    from clawdesk import catalog, locations
    from clawdesk.store import open_store
    from clawdesk.train.scoring import render_prompt

    spec = TINY["llama"]
    gguf, _ = build(spec, work / name, seed=seed)
    tok = PreTrainedTokenizerFast(tokenizer_file=str(work / name / "bpe" / "tokenizer.json"),
                                  bos_token=spec.bos, eos_token=spec.eos)
    tok.chat_template = spec.template
    eot = tok.convert_tokens_to_ids(spec.eos)
    store = open_store(locations.db_path())
    try:
        catalog.add_model(store, gguf, name)
        catalog.use_model(store, name)
        for question, answer, kind in TURNS:
            conv = store.new_conversation(question[:20], model=name)
            user = store.add_message(conv.id, "user", question)
            messages = [{"role": "user", "content": question}]
            reply = store.add_message(conv.id, "assistant", answer, parent_id=user.id,
                                      prompt_token_ids=render_prompt(tok, messages),
                                      response_token_ids=tok.encode(answer, add_special_tokens=False) + [eot])
            store.add_feedback(reply.id, kind)
    finally:
        store.close()
    return gguf


if __name__ == "__main__":
    make_home(Path(sys.argv[1]))
