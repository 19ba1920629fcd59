"""Check (d)'s replies on the real bundled model in torch: the greedy one and the sampled ones,
drawn from fixed seeds so that the served version and the candidate are compared on the same
draws (the whole gate runs in test_lifecycle.py)."""

from __future__ import annotations

import pytest

from clawdesk.settings import Settings
from clawdesk.train.gate import REPLY_TOKENS, greedy, own_replies
from clawdesk.train.scoring import end_of_turn_ids, render_prompt

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def torch_model(shared_hf):
    import torch

    from clawdesk.engine.torch_model import load_model

    torch.set_num_threads(1)
    model, tokenizer = load_model(shared_hf)
    model.eval()
    return model, tokenizer


def test_check_d_reads_the_greedy_reply_and_paired_samples(torch_model):
    model, tokenizer = torch_model
    eos = end_of_turn_ids(tokenizer)
    prompt = render_prompt(tokenizer, [{"role": "user", "content": "How do bees make honey? (Keep it short.)"}])
    settings = Settings(gate_own_samples=2)

    replies = own_replies(model, prompt, eos, settings, draws=2, seed=3)
    assert len(replies) == 3
    assert replies[0] == greedy(model, prompt, REPLY_TOKENS, eos)  # the greedy reply first, as before
    assert all(0 < len(r) <= REPLY_TOKENS for r in replies)
    # sampled at the chat's temperature: not the greedy reply, and not each other
    assert replies[1] != replies[0] and replies[2] != replies[1]
    # the same seed draws the same replies: served and candidate are compared on the same draws
    assert own_replies(model, prompt, eos, settings, draws=2, seed=3) == replies
    assert own_replies(model, prompt, eos, settings, draws=2, seed=4)[1:] != replies[1:]
    assert own_replies(model, prompt, eos, settings, draws=0, seed=3) == replies[:1]


def test_drawing_them_leaves_the_callers_random_state_alone(torch_model):
    import torch

    model, tokenizer = torch_model
    eos = end_of_turn_ids(tokenizer)
    prompt = render_prompt(tokenizer, [{"role": "user", "content": "What is rain?"}])
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    own_replies(model, prompt, eos, Settings(), draws=1, seed=0)
    assert torch.equal(torch.rand(3), expected)
