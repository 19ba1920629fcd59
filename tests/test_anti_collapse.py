"""Anti-collapse on a one-sided batch (issue #9, docs/method.md §7.4), on the real model.

The platform notes' prototype: with every reward −1 (every reply too long), the RL term only
pushes probability *down*; nothing says where it should go, and the model drifts into short
gibberish that a compliance-only score counts as success. PPO's ratio clip did not stop it.

Here: a user who liked four earlier answers (a pass already trained on them) thumbs down eight new
ones without saying why — no hint, no correction, so no OPD term and no demonstration. The same
training schedule runs twice from the same samples:

- **reference** anchors (docs/method.md §4 as written: no KL, no positive mixing);
- **ClawDesk's default** anchors (``train_kl_coef``, ``train_mix_positives``).

The regression NLL (the base model's own greedy replies to general prompts, per token, in torch)
must stay within the benchmark's bound (+0.10 nats) with the defaults, and must not with the
reference anchors — otherwise this test shows nothing about the anchors.
"""

from __future__ import annotations

import pytest
from train_samples import add_sample, chat, one_torch_thread, tiny  # noqa: F401 (fixtures)

from clawdesk.settings import Settings
from clawdesk.train.run import train_pass

pytestmark = pytest.mark.slow

LIKED = ["Name a fruit.", "What is rain?", "Say something about dogs.", "What is the sun?"]
DISLIKED = ["Explain how a bicycle works.", "How do I boil an egg?", "Why do cats sleep so much?",
            "What is photosynthesis?", "How does a refrigerator keep food cold?", "Why is the sky blue?",
            "What is a volcano?", "How do magnets work?"]
GENERAL = ["What is the capital of France?", "Give me a tip for sleeping better.", "What does a CPU do?",
           "How can I save money on groceries?"]
BOUND = 0.10  # nats per token: the personalisation benchmark's regression bound
# A schedule strong enough to show the collapse on 8 samples (the prototype's: several epochs of
# small batches), shared by both runs so that only the anchors differ. Both train the −1s' RL term
# (train_w_unguided_negative = 1): by default a 👎 without a correction has none at all
# (tests/test_train_context.py), and these anchors are what holds when one does.
SCHEDULE = dict(train_lr=1e-3, train_batch_size=4, train_epochs=3, train_heldout_fraction=0.0,
                train_w_unguided_negative=1.0)
REFERENCE = dict(train_kl_coef=0.0, train_mix_positives=0, train_w_demo=0.0, train_w_rl=1.0)


def _regression_nll(candidate_dir: str | None, shared_hf, pairs) -> float:
    from bench.evaluate import adapter_nll  # the personalisation benchmark's regression check

    return adapter_nll(str(shared_hf), candidate_dir, pairs)


@pytest.fixture(scope="module")
def one_sided(tmp_path_factory, model_path, shared_hf):
    """Two homes with the same logged turns; each trains once (reference vs default anchors)."""
    from clawdesk import locations
    from clawdesk.chat import ChatService
    from clawdesk.engine import Engine
    from clawdesk.settings import load_settings
    from clawdesk.store import open_store

    engine = Engine(model_path, n_ctx=1024, n_threads=1)
    pairs = []
    for text in GENERAL:
        gen = engine.generate([{"role": "user", "content": text}], temperature=0.0, max_tokens=32, seed=0)
        pairs.append((gen.prompt_token_ids, gen.response_token_ids))
    out = {"base": _regression_nll(None, shared_hf, pairs)}
    for name in ("reference", "defaults"):
        with pytest.MonkeyPatch.context() as mp:
            home = tmp_path_factory.mktemp(name) / "home"
            mp.setenv("CLAWDESK_HOME", str(home))
            (locations.cache_dir() / "hf").mkdir(parents=True, exist_ok=True)
            (locations.cache_dir() / "hf" / shared_hf.name).symlink_to(shared_hf, target_is_directory=True)
            defaults = load_settings(env={})
            settings = tiny(defaults, **SCHEDULE, **(REFERENCE if name == "reference" else {}))
            store = open_store(locations.db_path())
            chat = ChatService(store, engine, settings)
            liked = [add_sample(chat, q, reward=1.0, seed=i, max_tokens=32) for i, q in enumerate(LIKED)]
            store.set_sample_status([s.id for s in liked], "used")  # an earlier pass trained on them
            for i, q in enumerate(DISLIKED):
                add_sample(chat, q, reward=-1.0, seed=100 + i, max_tokens=32)
            result = train_pass(store, settings)
            out[name] = {"settings": settings, "result": result,
                         "nll": _regression_nll(result.candidate_path, shared_hf, pairs)}
            store.close()
    engine.close()
    return out


def test_default_anchors_keep_a_one_sided_batch_from_collapsing(one_sided):
    base, ref, default = one_sided["base"], one_sided["reference"], one_sided["defaults"]
    print(f"regression NLL: base {base:.3f}, reference {ref['nll']:.3f} ({ref['nll'] - base:+.3f}), "
          f"defaults {default['nll']:.3f} ({default['nll'] - base:+.3f}); mixed in "
          f"{default['result'].summary.get('n_mixed_positives')}")
    assert ref["result"].summary["rewarded_samples"] == 8 and ref["result"].summary["hinted_samples"] == 0
    assert ref["nll"] - base > BOUND, "the reference anchors did not collapse: this schedule shows nothing"
    assert default["nll"] - base <= BOUND


def test_the_defaults_are_what_was_tested(one_sided):
    """The anchors this test credits are the shipped defaults, not something set here."""
    shipped = Settings()
    used = one_sided["defaults"]["settings"]
    assert (used.train_kl_coef, used.train_mix_positives) == (shipped.train_kl_coef, shipped.train_mix_positives)
    assert shipped.train_kl_coef > 0 or shipped.train_mix_positives > 0
